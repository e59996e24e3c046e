//! The daemon's cache against the real Gitea, with the real `@actions/cache`: job 1 of a
//! workflow saves, job 2 (`needs` job 1) restores through a restore key. In daemon mode the
//! jobs carry Gitea's runtime token (Gitea serves their artifacts) and `GITHUB_SERVER_URL` is
//! Gitea's, so the client speaks cache v1 to `ACTIONS_CACHE_URL`, whose last segment is the
//! job's cache token.
//!
//! - One daemon with its built-in cache; afterwards `runnel cache ls -c config.yaml` shows the
//!   entry under the Gitea repository.
//! - A fleet: two daemons whose `cache.external_server` names one `runnel cache-server`, all
//!   three sharing `cache.shared_secret_file`; job 1 runs on daemon A, job 2 on daemon B.
//!
//! Slow: a real Gitea (see `daemon_gitea`) plus node and npm.

use serde_json::Value;

use crate::cache_support::{CacheServerProcess, node_packages, write_cache_job};
use crate::daemon_gitea::{Gitea, Runner, completed_jobs, gitea, register, workflow};
use crate::support::{run_expecting, runnel};

/// The two jobs: `save` on `save_label`, `restore` (after it) on `restore_label`.
fn jobs(save_label: &str, restore_label: &str, runner: &Runner) -> String {
    let modules = node_packages("node", "@actions/cache");
    let script = write_cache_job(runner.dir.path());
    let (script, modules) = (script.display(), modules.display());
    format!(
        "  save:\n    runs-on: {save_label}\n    steps:\n      - run: node {script} save daemon-e2e-1\n        env:\n          NODE_PATH: {modules}\n  restore:\n    needs: save\n    runs-on: {restore_label}\n    steps:\n      - run: node {script} restore daemon-e2e-missing daemon-e2e-\n        env:\n          NODE_PATH: {modules}\n"
    )
}

fn log_of(gitea: &Gitea, jobs: &[Value], name: &str) -> (Value, String) {
    let job = jobs
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name} in {jobs:?}"))
        .clone();
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    (job, lines.join("\n"))
}

/// Job `save` saved and job `restore` got its entry through the restore key.
fn check(save: &(Value, String), restore: &(Value, String), context: &str) {
    let (save, save_log) = save;
    let (restore, restore_log) = restore;
    assert_eq!(save["conclusion"], "success", "{save_log}\n{context}");
    assert!(save_log.contains("CACHE_URL set"), "{save_log}");
    assert!(save_log.contains("SAVED ok"), "{save_log}\n{context}");
    assert_eq!(restore["conclusion"], "success", "{restore_log}");
    assert!(
        restore_log.contains("RESTORED daemon-e2e-1 saved-by-daemon-e2e-1"),
        "{restore_log}\n{context}"
    );
}

#[test]
fn a_job_saves_with_actions_cache_and_the_next_job_restores_in_daemon_mode() {
    let test = "a_job_saves_with_actions_cache_and_the_next_job_restores_in_daemon_mode";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let runner = register(gitea, "cache");
    let label = &runner.label;
    let store = runner.dir.path().join("cache");
    runner.write_config(&format!("cache:\n  dir: {}\n", store.display()));
    gitea.push_workflow(label, &workflow(label, &jobs(label, label, &runner)));
    let child = runner.daemon(&["-c", "config.yaml"]);
    let jobs = completed_jobs(gitea, &runner, 2);
    runner.terminate(&child);
    let status = runner.wait(child);
    let daemon_log = runner.daemon_log();
    assert!(status.success(), "daemon: {status}\n{daemon_log}");
    check(
        &log_of(gitea, &jobs, "save"),
        &log_of(gitea, &jobs, "restore"),
        &daemon_log,
    );

    let mut command = runnel();
    command.current_dir(runner.dir.path()).args([
        "cache",
        "ls",
        "-c",
        "config.yaml",
        "--format",
        "json",
    ]);
    let listing = String::from_utf8_lossy(&run_expecting(command, None, &[0]).stdout).into_owned();
    let entry: Value = serde_json::from_str(listing.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {listing}"));
    assert_eq!(entry["key"], "daemon-e2e-1", "{listing}");
    assert_eq!(entry["repository"], gitea.repo.as_str(), "{listing}");
}

#[test]
fn two_daemons_share_one_cache_server() {
    let Some(gitea) = gitea("two_daemons_share_one_cache_server") else {
        return;
    };
    let server_dir = tempfile::tempdir().expect("server dir");
    let secret = server_dir.path().join("cache-secret");
    std::fs::write(&secret, "fleet-secret-0123456789abcdef\n").expect("write the secret");
    let mut server = CacheServerProcess::start(
        server_dir.path(),
        &["--dir", "store", "--secret-file", "cache-secret"],
    );
    let (a, b) = (register(gitea, "fleet-a"), register(gitea, "fleet-b"));
    let config = format!(
        "cache:\n  dir: {}\n  external_server: {}\n  shared_secret_file: {}\n",
        server_dir.path().join("unused").display(),
        server.url,
        secret.display()
    );
    a.write_config(&config);
    b.write_config(&config);
    gitea.push_workflow(&a.label, &workflow(&a.label, &jobs(&a.label, &b.label, &a)));
    let daemons = [
        a.daemon(&["-c", "config.yaml"]),
        b.daemon(&["-c", "config.yaml"]),
    ];
    let saved = completed_jobs(gitea, &a, 1);
    let restored = completed_jobs(gitea, &b, 1);
    for (runner, child) in [&a, &b].into_iter().zip(daemons) {
        runner.terminate(&child);
        let status = runner.wait(child);
        assert!(
            status.success(),
            "daemon: {status}\n{}",
            runner.daemon_log()
        );
    }
    let context = format!(
        "daemon A:\n{}\ndaemon B:\n{}\ncache server:\n{}",
        a.daemon_log(),
        b.daemon_log(),
        server.log()
    );
    check(
        &log_of(gitea, &saved, "save"),
        &log_of(gitea, &restored, "restore"),
        &context,
    );
    // The entry is on the server, under the Gitea repository; the daemons kept nothing.
    let mut ls = runnel();
    ls.args(["cache", "ls", "--format", "json", "--dir"])
        .arg(server_dir.path().join("store"));
    let listing = String::from_utf8_lossy(&run_expecting(ls, None, &[0]).stdout).into_owned();
    assert!(
        listing.contains(&format!(r#""repository":"{}""#, gitea.repo))
            && listing.contains(r#""key":"daemon-e2e-1""#),
        "{listing}"
    );
    assert!(!server_dir.path().join("unused").join("index.json").exists());
    let status = server.stop();
    assert!(status.success(), "cache-server: {status}\n{}", server.log());
}
