//! The daemon's cache against the real Gitea: job 1 of a workflow saves with the real
//! `@actions/cache`, job 2 (`needs` job 1) restores it through a restore key. In daemon mode
//! the jobs carry Gitea's runtime token (registered with our cache server for the task's
//! lifetime) and `GITHUB_SERVER_URL` is Gitea's, so the client speaks cache v1 to our
//! `ACTIONS_CACHE_URL`. Afterwards `runnel cache ls -c config.yaml` shows the entry under the
//! Gitea repository. Slow: a real Gitea (see `daemon_gitea`) plus node and npm.

use serde_json::Value;

use crate::cache::node_packages;
use crate::daemon_gitea::{completed_jobs, gitea, register, workflow};
use crate::support::{run_expecting, runnel};

const SCRIPT: &str = r#"'use strict';
const fs = require('fs');
const cache = require('@actions/cache');
const [mode, key] = process.argv.slice(2);
async function main() {
  console.log('CACHE_URL ' + (process.env.ACTIONS_CACHE_URL ? 'set' : 'unset'));
  if (mode === 'save') {
    fs.mkdirSync('payload', { recursive: true });
    fs.writeFileSync('payload/a.txt', 'saved-by-' + key);
    const id = await cache.saveCache(['payload'], key);
    console.log('SAVED ' + (id > 0 ? 'ok' : 'skipped'));
  } else {
    fs.rmSync('payload', { recursive: true, force: true });
    const hit = await cache.restoreCache(['payload'], key, ['daemon-e2e-']);
    const text = fs.existsSync('payload/a.txt') ? fs.readFileSync('payload/a.txt', 'utf8') : 'none';
    console.log('RESTORED ' + hit + ' ' + text);
  }
}
main().catch((e) => { console.error('FAILED', e); process.exit(1); });
"#;

#[test]
fn a_job_saves_with_actions_cache_and_the_next_job_restores_in_daemon_mode() {
    let test = "a_job_saves_with_actions_cache_and_the_next_job_restores_in_daemon_mode";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let modules = node_packages("node", "@actions/cache");
    let runner = register(gitea, "cache");
    let label = &runner.label;
    let script = runner.dir.path().join("cache_job.js");
    std::fs::write(&script, SCRIPT).unwrap_or_else(|e| panic!("write script: {e}"));
    let store = runner.dir.path().join("cache");
    runner.write_config(&format!("cache:\n  dir: {}\n", store.display()));
    let (script, modules) = (script.display(), modules.display());
    let jobs = format!(
        "  save:\n    runs-on: {label}\n    steps:\n      - run: node {script} save daemon-e2e-1\n        env:\n          NODE_PATH: {modules}\n  restore:\n    needs: save\n    runs-on: {label}\n    steps:\n      - run: node {script} restore daemon-e2e-missing\n        env:\n          NODE_PATH: {modules}\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&["-c", "config.yaml"]);
    let jobs = completed_jobs(gitea, &runner, 2);
    runner.terminate(&child);
    let status = runner.wait(child);
    assert!(
        status.success(),
        "daemon: {status}\n{}",
        runner.daemon_log()
    );
    let log_of = |name: &str| -> (Value, String) {
        let job = jobs
            .iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in {jobs:?}"))
            .clone();
        let lines = gitea
            .log_lines(job["id"].as_i64().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        (job, lines.join("\n"))
    };
    let (save, save_log) = log_of("save");
    let (restore, restore_log) = log_of("restore");
    let daemon_log = runner.daemon_log();
    assert_eq!(save["conclusion"], "success", "{save_log}\n{daemon_log}");
    assert!(save_log.contains("CACHE_URL set"), "{save_log}");
    assert!(save_log.contains("SAVED ok"), "{save_log}\n{daemon_log}");
    assert_eq!(restore["conclusion"], "success", "{restore_log}");
    // A restore-key hit: job 2 asked for a missing key and got job 1's entry by prefix.
    assert!(
        restore_log.contains("RESTORED daemon-e2e-1 saved-by-daemon-e2e-1"),
        "{restore_log}\n{daemon_log}"
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
