//! JavaScript actions and the runtimes they declare, through `runnel run` on the host: every
//! `runs.using` from `node12` to `node24` runs with the `node` on the job's `PATH` (as act and
//! the Gitea runner do), and without one the step fails with an error naming the declared
//! runtime and the `PATH` searched.

use std::path::Path;

use crate::cache_support::slow_or_skip;
use crate::support::{run_expecting, runnel};

/// A workspace with one local action per runtime in `usings` (`./act-<using>`, printing
/// `<using> ran on <node version>`) and a workflow using each; `job_env` is extra job-level
/// `env:` lines (indented for it).
fn project(usings: &[&str], job_env: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut steps = String::new();
    for using in usings {
        let action = dir.path().join(format!("act-{using}"));
        std::fs::create_dir_all(&action).unwrap_or_else(|e| panic!("mkdir: {e}"));
        let metadata = format!("name: {using}\nruns:\n  using: {using}\n  main: main.js\n");
        std::fs::write(action.join("action.yml"), metadata)
            .unwrap_or_else(|e| panic!("write action.yml: {e}"));
        let script = format!("console.log(`{using} ran on ${{process.version}}`);\n");
        std::fs::write(action.join("main.js"), script)
            .unwrap_or_else(|e| panic!("write main.js: {e}"));
        steps.push_str(&format!("      - uses: ./act-{using}\n"));
    }
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let workflow = format!(
        "on: push\njobs:\n  js:\n    runs-on: ubuntu-latest\n    env:\n      NODE_TEST: yes{job_env}\n    steps:\n{steps}"
    );
    std::fs::write(workflows.join("ci.yml"), workflow)
        .unwrap_or_else(|e| panic!("write workflow: {e}"));
    dir
}

fn run_in(dir: &Path, code: i32) -> String {
    let mut command = runnel();
    command
        .current_dir(dir)
        .args(["run", "--no-cache-server"])
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[code]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_node20_action_without_node_on_path_names_its_runtime_and_the_path() {
    let dir = project(&["node20"], "\n      PATH: /nonexistent-runnel-bin");
    let stdout = run_in(dir.path(), 1);
    assert!(
        stdout.contains(
            "`uses: ./act-node20` is a JavaScript action (`runs.using: node20`), which runs \
             with the job environment's `node`, but no `node` was found on PATH \
             (/nonexistent-runnel-bin); install Node.js 20 or newer there"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("ran on"), "{stdout}");
}

#[test]
fn every_node_runtime_runs_with_the_node_on_path() {
    let test = "every_node_runtime_runs_with_the_node_on_path";
    if !slow_or_skip(test, "node") {
        return;
    }
    let usings = ["node12", "node16", "node20", "node24"];
    let dir = project(&usings, "");
    let stdout = run_in(dir.path(), 0);
    for using in usings {
        assert!(stdout.contains(&format!("{using} ran on v")), "{stdout}");
    }
}
