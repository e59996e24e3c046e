//! `runnel exec`: the Gitea runner's `exec` command line through the real binary — every job in
//! `--image` whatever its `runs-on`, `-i -self-hosted` on this machine, `-C`, `-E`, `-j`, `-s`,
//! `--env`, `--detect-event`, `-n`, and the flags left out on purpose refused with a reason.

use std::path::Path;

use crate::run::docker_or_skip;
use crate::support::{run_expecting, runnel};

const WORKFLOW: &str = r#"on:
  workflow_dispatch:
  push:
jobs:
  where:
    runs-on: some-label-no-runner-has
    steps:
      - run: |
          case "$GITHUB_WORKSPACE" in /__w/*) echo "in a container" ;; *) echo "on this machine" ;; esac
          echo "event=${{ github.event_name }} secret=${{ secrets.TOKEN }} env=$FROM_ENV"
          echo "skip-checkout=${ACT_SKIP_CHECKOUT:-unset}"
  other:
    runs-on: ubuntu-latest
    steps:
      - run: echo "the other job ran"
"#;

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), WORKFLOW).expect("write workflow");
    dir
}

/// Runs `runnel exec ARGS` from a directory that is not the repository (`-C` names it).
fn exec(repo: &Path, args: &[&str], code: i32) -> (String, String) {
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let mut command = runnel();
    command
        .current_dir(elsewhere.path())
        .arg("exec")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("NO_COLOR", "1")
        .env("FROM_ENV_SOURCE", "from-the-caller");
    let output = run_expecting(command, None, &[code]);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn self_hosted_runs_every_job_here_with_the_gitea_runners_flags() {
    let repo = repo();
    let (stdout, _) = exec(
        repo.path(),
        &[
            "-i",
            "-self-hosted",
            "-E",
            "workflow_dispatch",
            "-j",
            "where",
            "-s",
            "TOKEN=hunter2-secret",
            "--env",
            "FROM_ENV=set-by-flag",
        ],
        0,
    );
    for expected in [
        "[where]   on this machine",
        "[where]   event=workflow_dispatch secret=*** env=set-by-flag",
        // As v3.3's exec: the local checkout is skipped, and jobs are told so.
        "[where]   skip-checkout=true",
        "✓ workflow success",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("the other job ran"), "-j: {stdout}");
    assert!(!stdout.contains("hunter2-secret"), "{stdout}");
}

#[test]
fn detect_event_takes_the_first_trigger_and_dryrun_runs_nothing() {
    let repo = repo();
    let (stdout, _) = exec(
        repo.path(),
        &["-i", "-self-hosted", "--detect-event", "-n"],
        0,
    );
    assert!(stdout.contains("where"), "{stdout}");
    assert!(
        !stdout.contains("on this machine"),
        "-n ran a step: {stdout}"
    );
    let (stdout, _) = exec(repo.path(), &["-i", "-self-hosted", "--detect-event"], 0);
    assert!(
        stdout.contains("event=workflow_dispatch"),
        "the first trigger is workflow_dispatch:\n{stdout}"
    );
}

#[test]
fn flags_left_out_on_purpose_say_so() {
    let repo = repo();
    let (_, stderr) = exec(repo.path(), &["--json"], 2);
    assert!(stderr.contains("--json is not supported"), "{stderr}");
    let (_, stderr) = exec(repo.path(), &["--tool-cache-mode", "everywhere"], 2);
    assert!(
        stderr.contains("--tool-cache-mode everywhere: expected `none` or `shared`"),
        "{stderr}"
    );
    for (flags, said) in [
        (
            &["--insecure-secrets"][..],
            "--insecure-secrets is not supported",
        ),
        (&["-d"][..], "-d/--debug is not supported"),
        (
            &["--use-gitignore=false"][..],
            "--use-gitignore=false is not supported",
        ),
    ] {
        let (_, stderr) = exec(repo.path(), flags, 2);
        assert!(stderr.contains(said), "{flags:?}: {stderr}");
    }
}

/// The Gitea runner v3.3's other `exec` flags are taken: `-p`, `--rebuild`, `--userns`,
/// `--no-recurse`, `--use-gitignore` (its default), `--tool-cache-mode`, `--no-skip-checkout`.
#[test]
fn the_gitea_runners_other_exec_flags_are_taken() {
    let repo = repo();
    let (stdout, _) = exec(
        repo.path(),
        &[
            "-i",
            "-self-hosted",
            "-j",
            "where",
            "-p",
            "--rebuild",
            "--no-recurse",
            "--use-gitignore",
            "--userns",
            "host",
            "--tool-cache-mode",
            "none",
            "--no-skip-checkout",
        ],
        0,
    );
    assert!(stdout.contains("✓ workflow success"), "{stdout}");
    assert!(
        stdout.contains("[where]   skip-checkout=unset"),
        "--no-skip-checkout: {stdout}"
    );
}

#[test]
fn every_job_runs_in_the_image_whatever_its_runs_on() {
    if !docker_or_skip("every_job_runs_in_the_image_whatever_its_runs_on") {
        return;
    }
    let repo = repo();
    let (stdout, stderr) = exec(
        repo.path(),
        &["-i", "runnel-test/debian:bookworm", "-s", "TOKEN=x"],
        0,
    );
    assert!(
        stdout.contains("[where]   in a container"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("[other]   the other job ran"), "{stdout}");
}
