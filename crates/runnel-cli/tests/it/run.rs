//! `runnel run` through the real binary on the host backend: the README's example, a failing
//! job (exit 1, summary), secrets masked, `--plan`, `-j`, and a workflow the event does not
//! trigger.

use std::path::Path;

use crate::support::{repo_root, run_expecting, runnel};

fn write_workflow(dir: &Path, text: &str) {
    let workflows = dir.join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), text).expect("write workflow");
}

fn run_in(dir: &Path, args: &[&str], code: i32) -> (String, String) {
    let mut command = runnel();
    command
        .current_dir(dir)
        .arg("run")
        .args(args)
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[code]);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_readme_example_runs_every_job() {
    let (stdout, _) = run_in(&repo_root(), &["-W", "examples/hello/.gitea/workflows"], 0);
    for expected in [
        "[lint]   hello from lint",
        "[test (debian, 1)]   testing debian 1",
        "[test (alpine, 2)]   testing alpine 2",
        "[test (debian, 3, true)]   testing debian 3",
        "✓ workflow success",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("alpine, 1"), "excluded leg ran:\n{stdout}");
}

#[test]
fn a_failing_job_exits_1_and_skips_its_dependents() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo building; exit 3\n  deploy:\n    needs: build\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo deploying\n  report:\n    needs: build\n    if: failure()\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"build was ${{ needs.build.result }}\"\n",
    );
    let (stdout, _) = run_in(dir.path(), &[], 1);
    assert!(stdout.contains("[build]   building"), "{stdout}");
    assert!(!stdout.contains("deploying"), "{stdout}");
    assert!(stdout.contains("[report]   build was failure"), "{stdout}");
    let summary = stdout.split("JOB ").nth(1).unwrap_or_default();
    assert!(
        summary.contains("build") && summary.contains("failure"),
        "{summary}"
    );
    assert!(
        summary.contains("deploy") && summary.contains("skipped"),
        "{summary}"
    );
    assert!(stdout.contains("✗ workflow failure"), "{stdout}");
}

#[test]
fn secrets_are_masked_and_plan_runs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"token=${{ secrets.TOKEN }}\"\n",
    );
    let (stdout, _) = run_in(dir.path(), &["-s", "TOKEN=hunter2-secret"], 0);
    assert!(stdout.contains("token=***"), "{stdout}");
    assert!(!stdout.contains("hunter2-secret"), "{stdout}");

    let (stdout, _) = run_in(dir.path(), &["--plan"], 0);
    assert!(stdout.contains("triggered"), "{stdout}");
    assert!(!stdout.contains("token="), "{stdout}");
}

#[test]
fn job_filter_and_untriggered_workflows() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo job-a\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo job-b\n",
    );
    let (stdout, stderr) = run_in(dir.path(), &["push"], 0);
    assert!(stdout.contains("not triggered"), "{stdout}");
    assert!(stderr.contains("no workflow is triggered"), "{stderr}");

    let (stdout, _) = run_in(dir.path(), &["pull_request", "-j", "b"], 0);
    assert!(
        stdout.contains("job-b") && !stdout.contains("job-a"),
        "{stdout}"
    );
}
