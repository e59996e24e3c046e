//! The user's chain (see `chain`) through `runnel daemon` against the real Gitea: a repository
//! of its own holding `lockfile`, `note.txt` and the workflow; the push of the workflow starts
//! run 1, a commit changing only `note.txt` run 2. Gitea serves the stand-in actions under
//! `actions/*` (`DEFAULT_ACTIONS_URL = self`), checkout included, and the artifacts (the jobs
//! carry Gitea's runtime token); the cache is the daemon's own. Modes: a host label, and a
//! Docker label with `container.network` empty (a network per job), `bridge` and `host`.
//!
//! Job containers on a Docker network cannot reach a Gitea listening on 127.0.0.1 (nor could
//! the Gitea runner's), so the empty and `bridge` modes use a second instance, `chain-it`,
//! listening on the address of Docker's default bridge: an address of this machine that every
//! bridge network's containers reach through their gateway. The host label and the `host`
//! network use the shared instance on 127.0.0.1, as an operator with Gitea on the same machine
//! would.
//!
//! Slow: a real Gitea, node, npm and git; Docker and `runnel-test/debian:bookworm` for the
//! Docker modes.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::chain::{LOCKFILE, NODE18_ENV, build_actions, check_run, leftovers_of, workflow};
use crate::daemon_gitea::{Gitea, Runner, base64, gitea, read_env, register_with, slow_instance};
use crate::support::repo_root;

static BRIDGED: OnceLock<Result<Gitea, String>> = OnceLock::new();

/// The instance `chain-it` on Docker's bridge address, or `None` when slow tests are off.
fn bridged_gitea(test: &str) -> Option<&'static Gitea> {
    slow_instance(&BRIDGED, test, obtain_bridged)
}

/// The IPv4 address of Docker's default bridge on this machine: the gateway Docker lists, or
/// the `docker0` interface's address where its IPAM lists none (Debian's docker.io 20.10).
fn bridge_address() -> Result<String, String> {
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let gateway = output(
        "docker",
        &[
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        ],
    );
    if !gateway.is_empty() {
        return Ok(gateway);
    }
    let interface = output("ip", &["-4", "-o", "addr", "show", "docker0"]);
    interface
        .split_whitespace()
        .skip_while(|word| *word != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .map(str::to_owned)
        .ok_or_else(|| format!("no address of Docker's bridge (docker0: {interface:?})"))
}

/// The running `chain-it` when it answers on the bridge's current address, else a fresh one.
fn obtain_bridged() -> Result<Gitea, String> {
    let address = bridge_address()?;
    let cache = std::env::var_os("RUNNEL_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/runnel")))
        .ok_or("neither RUNNEL_CACHE nor HOME is set")?;
    let env_file = cache.join("gitea/instances/chain-it.env");
    if let Ok(gitea) = read_env(&env_file)
        && gitea.url.contains(&format!("//{address}:"))
        && gitea.api("GET", "/version", None).is_ok()
    {
        return Ok(gitea);
    }
    let script = repo_root().join("tests/gitea/start.sh");
    let output = Command::new(&script)
        .arg("chain-it")
        .env("GITEA_HTTP_ADDR", &address)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "GITEA_HTTP_ADDR={address} {} chain-it failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    read_env(&env_file)
}

/// A new public repository `<admin>/<name>` (branch `main`, a first commit) and the same
/// instance seen through it.
fn own_repository(gitea: &Gitea, name: &str) -> Gitea {
    gitea
        .api(
            "POST",
            "/user/repos",
            Some(&json!({
                "name": name,
                "auto_init": true,
                "default_branch": "main",
                "private": false,
            })),
        )
        .unwrap_or_else(|e| panic!("create repository {name}: {e}"));
    Gitea {
        url: gitea.url.clone(),
        admin_user: gitea.admin_user.clone(),
        admin_password: gitea.admin_password.clone(),
        admin_token: gitea.admin_token.clone(),
        registration_token: gitea.registration_token.clone(),
        repo: format!("{}/{name}", gitea.admin_user),
        pid: gitea.pid,
    }
}

/// Commits `text` as `path` on `main` of `gitea.repo` (created or replaced); returns the
/// commit's SHA.
fn put_file(gitea: &Gitea, path: &str, text: &str) -> String {
    let route = format!("/repos/{}/contents/{path}", gitea.repo);
    let mut body = json!({
        "content": base64(text.as_bytes()),
        "message": format!("chain: {path}"),
        "branch": "main",
    });
    let method = match gitea.api("GET", &route, None) {
        Ok(existing) => {
            body["sha"] = existing["sha"].clone();
            "PUT"
        }
        Err(_) => "POST",
    };
    let answer = gitea
        .api(method, &route, Some(&body))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    answer["commit"]["sha"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path}: no commit in {answer}"))
        .to_owned()
}

/// One run of the chain: its `build` and `test` jobs as the REST API lists them.
struct ChainRun {
    build: Value,
    test: Value,
}

/// Waits until a run of the runner's jobs at commit `sha` has both jobs completed; returns
/// the first such run. By commit, not by order: Gitea 1.26 now and then starts a pushed
/// workflow twice (see `completed_jobs`), and a duplicate of run 1 is not run 2.
fn completed_run(gitea: &Gitea, runner: &Runner, sha: &str) -> ChainRun {
    for _ in 0..900 {
        let jobs = gitea.jobs_of(runner.id);
        let mut run_ids: Vec<i64> = jobs
            .iter()
            .filter(|j| j["head_sha"] == sha)
            .filter_map(|j| j["run_id"].as_i64())
            .collect();
        run_ids.sort_unstable();
        let found = run_ids.iter().find_map(|run_id| {
            let job = |name: &str| {
                jobs.iter()
                    .find(|j| {
                        j["run_id"].as_i64() == Some(*run_id)
                            && j["name"] == name
                            && j["status"] == "completed"
                    })
                    .cloned()
            };
            Some(ChainRun {
                build: job("build")?,
                test: job("test")?,
            })
        });
        if let Some(run) = found {
            return run;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "the run of {} at {sha} did not complete; daemon log:\n{}",
        runner.label,
        runner.daemon_log()
    );
}

/// Checks one run: both jobs succeeded, the build job checked out this repository at the
/// run's commit, and [`check_run`]'s cache and artifact lines (`first`: the cache was empty).
fn check(
    gitea: &Gitea,
    run: &ChainRun,
    sha: &str,
    note: &str,
    first: bool,
    runner: &Runner,
) -> String {
    let (build, test) = (gitea.log_text(&run.build), gitea.log_text(&run.test));
    let context = format!("test job:\n{test}\ndaemon log:\n{}", runner.daemon_log());
    assert_eq!(run.build["conclusion"], "success", "{build}\n{context}");
    assert_eq!(run.test["conclusion"], "success", "{test}\n{context}");
    let checked_out = format!("checked out {} at {sha}", gitea.repo);
    assert!(
        build.contains(&checked_out),
        "{checked_out}: {build}\n{context}"
    );
    check_run(&build, &test, note, first, &context)
}

/// Runs the chain twice through a daemon whose one label is `label_spec(name)` and whose
/// `config.yaml` adds `config`; `env` is extra workflow `env:`. Docker labels also check that
/// the daemon left no container, network or volume behind.
fn chain_through_the_daemon(
    gitea: &Gitea,
    label_spec: impl Fn(&str) -> String,
    config: &str,
    env: &str,
) {
    let built = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for (name, dir) in build_actions(built.path()) {
        crate::artifacts_gitea::publish(gitea, name, &dir);
    }
    let docker = label_spec("probe").contains("docker://");
    let runner = register_with(gitea, "chain", label_spec, &[]);
    let label = &runner.label;
    let repository = own_repository(gitea, label);
    put_file(&repository, "lockfile", LOCKFILE);
    put_file(&repository, "note.txt", "first\n");
    let store = runner.dir.path().join("cache");
    runner.write_config(&format!("cache:\n  dir: {}\n{config}", store.display()));
    let mut daemon = Stopped(Some(runner.daemon(&["-c", "config.yaml"])));
    let pid = daemon.0.as_ref().map_or(0, std::process::Child::id);
    let sha = put_file(
        &repository,
        ".gitea/workflows/chain.yml",
        &workflow(label, label, env),
    );
    let first = completed_run(&repository, &runner, &sha);
    let key = check(&repository, &first, &sha, "first", true, &runner);
    // A commit that leaves `lockfile` alone: the same key, so the cache hits.
    let sha = put_file(&repository, "note.txt", "second\n");
    let second = completed_run(&repository, &runner, &sha);
    assert_eq!(
        check(&repository, &second, &sha, "second", false, &runner),
        key
    );
    if let Some(child) = daemon.0.take() {
        runner.stop(child);
    }
    if docker {
        assert_eq!(leftovers_of(pid), "", "objects left behind by the daemon");
    }
}

/// The daemon, killed on drop when the test fails before stopping it: it would otherwise
/// outlive the test and go on taking the repository's jobs in a deleted directory.
struct Stopped(Option<std::process::Child>);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn docker_label(label: &str) -> String {
    format!("{label}:docker://runnel-test/debian:bookworm")
}

/// Docker and the image are there (slow tests fail loudly when not).
fn require_docker(test: &str) {
    if std::env::var_os("RUN_SLOW_TESTS").is_some() {
        crate::run::docker_or_skip(test);
        crate::cache_support::require_debian_image();
    }
}

#[test]
fn the_chain_misses_then_hits_and_passes_its_artifact_through_the_daemon_on_a_host_label() {
    let test =
        "the_chain_misses_then_hits_and_passes_its_artifact_through_the_daemon_on_a_host_label";
    let Some(gitea) = gitea(test) else {
        return;
    };
    chain_through_the_daemon(gitea, |l| format!("{l}:host"), "", "");
}

#[test]
fn the_chain_misses_then_hits_and_passes_its_artifact_through_the_daemon_in_docker() {
    let test = "the_chain_misses_then_hits_and_passes_its_artifact_through_the_daemon_in_docker";
    require_docker(test);
    let Some(gitea) = bridged_gitea(test) else {
        return;
    };
    chain_through_the_daemon(gitea, docker_label, "", NODE18_ENV);
}

#[test]
fn the_chain_misses_then_hits_and_passes_its_artifact_through_the_daemon_on_the_bridge() {
    let test =
        "the_chain_misses_then_hits_and_passes_its_artifact_through_the_daemon_on_the_bridge";
    require_docker(test);
    let Some(gitea) = bridged_gitea(test) else {
        return;
    };
    let config = "container:\n  network: bridge\n";
    chain_through_the_daemon(gitea, docker_label, config, NODE18_ENV);
}

#[test]
fn the_chain_misses_then_hits_and_passes_its_artifact_through_the_daemon_on_the_host_network() {
    let test =
        "the_chain_misses_then_hits_and_passes_its_artifact_through_the_daemon_on_the_host_network";
    require_docker(test);
    let Some(gitea) = gitea(test) else {
        return;
    };
    let config = "container:\n  network: host\n";
    chain_through_the_daemon(gitea, docker_label, config, NODE18_ENV);
}
