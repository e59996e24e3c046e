//! The cache service wired into `runnel run` through the real binary: a step of job 1 saves
//! with the real `@actions/cache` (the npm package inside `actions/cache`), a step of job 2 of
//! the same run restores it, on the host and in Docker. Job 1 speaks cache v2 (what `runnel
//! run` offers: github.com server URL, `ACTIONS_CACHE_SERVICE_V2`), job 2 v1 (its `env:` empties
//! the switch), so both protocols and their shared store are exercised. The runtime token is
//! masked in the log. Slow: needs node and npm (`npm ci` in `crates/runnel-cache/tests/node`);
//! the Docker variant also Docker and `runnel-test/debian:bookworm`. The job token's lifetime
//! and scope are checked with the binary alone.

use std::path::Path;
use std::process::Command;

use crate::cache_support::{
    node_packages, require_debian_image, slow_or_skip, token_claims, write_cache_job,
    write_workflow,
};
use crate::support::{run_expecting, runnel};

const NEEDS: &str = "node and npm";

/// `save_env`: extra `env:` lines of the saving step (indented for it).
fn workflow(runs_on: &str, node_path: &str, script: &str, save_env: &str) -> String {
    format!(
        r#"on: push
jobs:
  save:
    runs-on: {runs_on}
    steps:
      - run: echo "v2=$ACTIONS_CACHE_SERVICE_V2 token=$ACTIONS_RUNTIME_TOKEN"
      - run: node {script} save runnel-e2e-1
        env:
          NODE_PATH: {node_path}{save_env}
  restore:
    needs: save
    runs-on: {runs_on}
    env:
      ACTIONS_CACHE_SERVICE_V2: ""
    steps:
      - run: node {script} restore runnel-e2e-missing runnel-e2e-
        env:
          NODE_PATH: {node_path}
"#
    )
}

fn run_workflow(dir: &Path, text: &str, extra: &[&str]) -> String {
    write_workflow(dir, text);
    let store = tempfile::tempdir().expect("cache dir");
    let mut command = runnel();
    command
        .current_dir(dir)
        .arg("run")
        .arg("--cache-server-path")
        .arg(store.path())
        .args(extra)
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[0]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn check(stdout: &str) {
    assert!(stdout.contains("v2=true token=***"), "{stdout}");
    assert!(stdout.contains("SAVED ok"), "{stdout}");
    // A restore-key hit: job 2 asked for a missing key and got job 1's entry by prefix.
    assert!(
        stdout.contains("RESTORED runnel-e2e-1 saved-by-runnel-e2e-1"),
        "{stdout}"
    );
}

#[test]
fn actions_cache_saves_in_one_job_and_restores_in_the_next_on_the_host() {
    if !slow_or_skip(
        "actions_cache_saves_in_one_job_and_restores_in_the_next_on_the_host",
        NEEDS,
    ) {
        return;
    }
    let modules = node_packages("node", "@actions/cache");
    let dir = tempfile::tempdir().expect("workspace");
    let script = write_cache_job(dir.path());
    let text = workflow(
        "ubuntu-latest",
        &modules.display().to_string(),
        &script.display().to_string(),
        "",
    );
    check(&run_workflow(dir.path(), &text, &[]));
}

/// A workflow cannot stretch its cache token: `timeout-minutes` of ten years still gets a
/// token that expires with the runner's job timeout (`runnel run`: GitHub's 360 minutes) plus
/// a short margin for post steps. The token is scoped to the run's ref. Needs only the binary.
#[test]
fn a_cache_token_expires_with_the_runners_job_timeout() {
    let dir = tempfile::tempdir().expect("workspace");
    let out = tempfile::tempdir().expect("output dir");
    let file = out.path().join("token");
    let text = format!(
        "on: push\njobs:\n  long:\n    runs-on: ubuntu-latest\n    timeout-minutes: 5256000\n    steps:\n      - run: printf %s \"$ACTIONS_RUNTIME_TOKEN\" > {}\n",
        file.display()
    );
    run_workflow(dir.path(), &text, &["--ref", "refs/heads/dev"]);
    let token = std::fs::read_to_string(&file).expect("the step wrote the token");
    let claims = token_claims(&token);
    let lifetime = claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat");
    assert_eq!(lifetime, (360 + 15) * 60, "{claims}");
    assert_eq!(claims["ref"], "refs/heads/dev", "{claims}");
    assert_eq!(
        claims["restore_refs"],
        serde_json::json!(["refs/heads/main"]),
        "{claims}"
    );
}

#[test]
fn actions_cache_saves_in_one_job_and_restores_in_the_next_in_docker() {
    if !slow_or_skip(
        "actions_cache_saves_in_one_job_and_restores_in_the_next_in_docker",
        NEEDS,
    ) {
        return;
    }
    require_debian_image();
    let modules = node_packages("node", "@actions/cache");
    let dir = tempfile::tempdir().expect("workspace");
    // The workspace is bind-mounted into the job container: bring the packages along.
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&modules)
        .arg(dir.path().join("node_modules"))
        .status()
        .expect("run cp");
    assert!(copied.success(), "copying node_modules failed");
    write_cache_job(dir.path());
    let text = workflow(
        "ubuntu-latest",
        "/__w/workspace/node_modules",
        "/__w/workspace/cache_job.js",
        // Node 18 has no global `crypto` by default, which the Azure SDK of the v2 upload
        // needs (actions/cache itself runs on node 20).
        "\n          NODE_OPTIONS: --experimental-global-webcrypto",
    );
    check(&run_workflow(
        dir.path(),
        &text,
        &["-P", "ubuntu-latest=runnel-test/debian:bookworm"],
    ));
}

#[test]
fn artifacts_uploaded_in_one_job_are_downloaded_in_the_next() {
    if !slow_or_skip(
        "artifacts_uploaded_in_one_job_are_downloaded_in_the_next",
        NEEDS,
    ) {
        return;
    }
    let modules = node_packages("node-artifact", "@actions/artifact");
    let script = modules
        .parent()
        .map(|dir| dir.join("artifact_client.js"))
        .expect("node-artifact dir");
    let dir = tempfile::tempdir().expect("workspace");
    let text = format!(
        r#"on: push
jobs:
  upload:
    runs-on: ubuntu-latest
    steps:
      - run: node {script} upload
        env:
          NODE_PATH: {modules}
  download:
    needs: upload
    runs-on: ubuntu-latest
    steps:
      - run: node {script} download
        env:
          NODE_PATH: {modules}
"#,
        script = script.display(),
        modules = modules.display(),
    );
    let stdout = run_workflow(dir.path(), &text, &[]);
    assert!(
        stdout.contains(r#""names":["report"]"#) && stdout.contains(r#""text":"hello artifact""#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""binSize":20971520"#), "{stdout}");
}
