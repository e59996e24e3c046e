//! Reusable workflows (job-level `uses:`) through the real binary on the host backend: local
//! calls with inputs, defaults, mapped and inherited secrets and outputs read by a later job,
//! a matrix over a call, two levels of nesting, a call fetched from a git mirror
//! (`--actions-url file:///…`), the errors a call can have, and `--matrix`. One test runs a
//! called workflow in Docker (with `RUN_SLOW_TESTS`). Workflows are under
//! `tests/fixtures/reusable/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{copy_tree, publish_to_mirror, run_expecting, runnel};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reusable")
        .join(name)
}

/// A fresh copy of the fixture directory `name`, to run in.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture(name), dir.path());
    dir
}

/// Runs `runnel run` in `dir` with a cache directory of its own (tests run in parallel, and
/// the fetched-actions and cache stores are per user).
fn run_in(dir: &Path, args: &[&str], code: i32) -> (String, String) {
    let cache = tempfile::tempdir().expect("cache dir");
    let mut command = runnel();
    command
        .current_dir(dir)
        .arg("run")
        .args(args)
        .env("XDG_CACHE_HOME", cache.path())
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[code]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (stdout, stderr)
}

fn assert_lines(stdout: &str, expected: &[&str]) {
    for line in expected {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

/// The summary table's line for `job`, e.g. `mapped / make  ✓ success  0.08s`.
fn summary_line<'a>(stdout: &'a str, job: &str) -> &'a str {
    let summary = stdout.rsplit("JOB ").next().unwrap_or_default();
    summary
        .lines()
        .find(|line| {
            line.strip_prefix(job)
                .is_some_and(|rest| rest.starts_with("  "))
        })
        .unwrap_or_else(|| panic!("no summary line for {job:?} in:\n{stdout}"))
}

#[test]
fn local_calls_pass_inputs_secrets_and_outputs() {
    let dir = copy_fixture("local");
    let (stdout, _) = run_in(dir.path(), &["-s", "TOKEN=hunter2-secret"], 0);
    assert_lines(
        &stdout,
        &[
            // Mapped secret, number input, boolean default, the caller's `github`, and no
            // workflow `env` of the caller inside the called workflow.
            "[mapped / make]   who=world count=3 flag=false workflow=Caller event=push token=*** TOKEN=*** env=[]",
            // `secrets: inherit`, an input from an expression, a boolean given.
            "[inherited / make]   who=push count=1 flag=true workflow=Caller event=push token=*** TOKEN=*** env=[]",
            // A matrix over a call: each leg calls; no secrets passed, none seen.
            "[legs (alpha) / make]   who=leg-alpha count=1 flag=false workflow=Caller event=push token= TOKEN= env=[]",
            "[legs (beta) / make]   who=leg-beta count=1",
            // Two levels of nesting, `.github/workflows` also accepted.
            "[nested / down / bottom]   bottom from outer-two",
            // Outputs from `on.workflow_call.outputs` (default inputs evaluated, `jobs.*.result`).
            "[report]   mapped=hello world/3 inherited=hello push/1 result=success",
            " nested=outer-two-success",
            // `env` names are case-sensitive, as on GitHub's Linux runners.
            "[report]   env lower-m upper-m [] lower-m upper-m",
            "✓ workflow success",
        ],
    );
    assert!(!stdout.contains("hunter2-secret"), "{stdout}");
    for job in [
        "mapped",
        "mapped / make",
        "legs (alpha) / make",
        "nested / down / bottom",
        "report",
    ] {
        assert!(summary_line(&stdout, job).contains("success"), "{job}");
    }
}

#[test]
fn matrix_flag_runs_only_the_matching_legs() {
    let dir = copy_fixture("local");
    let (stdout, _) = run_in(dir.path(), &["--matrix", "os:beta", "-j", "legs"], 0);
    assert!(
        stdout.contains("[legs (beta) / make]   who=leg-beta"),
        "{stdout}"
    );
    assert!(!stdout.contains("alpha"), "{stdout}");

    let (stdout, _) = run_in(
        dir.path(),
        &["--matrix", "os:beta", "--matrix", "os:alpha", "-j", "legs"],
        0,
    );
    assert!(stdout.contains("who=leg-alpha") && stdout.contains("who=leg-beta"));

    let (_, stderr) = run_in(dir.path(), &["--matrix", "os"], 2);
    assert!(stderr.contains("KEY:VALUE"), "{stderr}");
}

#[test]
fn bad_calls_fail_their_job_with_a_position() {
    let dir = copy_fixture("errors");
    let (stdout, _) = run_in(dir.path(), &[], 1);
    assert_lines(
        &stdout,
        &[
            "[no-trigger]   error: .gitea/workflows/ci.yml:4:11: `./.gitea/workflows/plain.yml` is not a reusable workflow: .gitea/workflows/plain.yml has no `on: workflow_call` trigger",
            "[unknown-input]   error: .gitea/workflows/ci.yml:9:14: invalid input, `bogus` is not defined in the referenced workflow",
            "[missing-input]   error: .gitea/workflows/ci.yml:11:11: input `who` is required, but not provided while calling",
            "[cycle / a / b]   error: .gitea/workflows/loop-b.yml:4:11: reusable workflows call each other in a cycle: .gitea/workflows/ci.yml -> .gitea/workflows/loop-a.yml -> .gitea/workflows/loop-b.yml -> .gitea/workflows/loop-a.yml",
            "[fine / j]   lib for still runs",
            "✗ workflow failure",
        ],
    );
    for job in [
        "no-trigger",
        "unknown-input",
        "missing-input",
        "cycle",
        "cycle / a",
    ] {
        assert!(summary_line(&stdout, job).contains("failure"), "{job}");
    }
    assert!(summary_line(&stdout, "fine").contains("success"));
}

#[test]
fn validate_checks_local_calls_at_the_call_site() {
    let dir = copy_fixture("errors");
    let mut command = runnel();
    command
        .current_dir(dir.path())
        .args(["validate", ".gitea/workflows/ci.yml"]);
    let output = run_expecting(command, None, &[1]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_lines(
        &stdout,
        &[
            ".gitea/workflows/ci.yml:4:11: error: `./.gitea/workflows/plain.yml` is not a reusable workflow",
            ".gitea/workflows/ci.yml:9:14: error: invalid input, `bogus` is not defined in the referenced workflow",
            ".gitea/workflows/ci.yml:11:11: error: input `who` is required, but not provided while calling",
            "reusable workflows call each other in a cycle",
        ],
    );
    // The called files themselves are fine on their own.
    let mut command = runnel();
    command
        .current_dir(dir.path())
        .args(["validate", ".gitea/workflows/lib.yml"]);
    run_expecting(command, None, &[0]);
}

#[test]
fn remote_calls_come_from_the_actions_url() {
    let mirror = tempfile::tempdir().expect("mirror");
    let library = copy_fixture("remote/library");
    publish_to_mirror(mirror.path(), "acme/workflows", library.path(), "v1");

    let caller = copy_fixture("remote/caller");
    let cache = tempfile::tempdir().expect("cache");
    let actions_url = format!("file://{}", mirror.path().display());
    let mut command = runnel();
    command
        .current_dir(caller.path())
        .args(["run", "--actions-url", &actions_url])
        .env("XDG_CACHE_HOME", cache.path())
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[1]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_lines(
        &stdout,
        &[
            "[shared]   Calling reusable workflow 'acme/workflows/.gitea/workflows/shared.yml@v1' (SHA:",
            // `./` inside the fetched workflow resolves in the fetched repository.
            "[shared / speak / say]   helper in the library for remote",
            "[after]   shared said hi-remote",
            "[failing / check]   fail=true",
        ],
    );
    assert!(summary_line(&stdout, "shared").contains("success"));
    assert!(summary_line(&stdout, "failing / check").contains("failure"));
    assert!(summary_line(&stdout, "failing").contains("failure"));
    assert!(summary_line(&stdout, "after").contains("success"));
}

#[test]
fn a_called_workflow_runs_in_docker() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!(
            "note: skipping a_called_workflow_runs_in_docker: needs Docker; set RUN_SLOW_TESTS=1"
        );
        return;
    }
    let image = Command::new("docker")
        .args(["image", "inspect", "runnel-test/busybox"])
        .output();
    assert!(
        image.is_ok_and(|o| o.status.success()),
        "Docker or the test image runnel-test/busybox is missing: run tests/docker/ensure-dockerd.sh and tests/images/build.sh"
    );
    let dir = copy_fixture("local");
    let (stdout, _) = run_in(
        dir.path(),
        &["-j", "nested", "-P", "ubuntu-latest=runnel-test/busybox"],
        0,
    );
    assert_lines(
        &stdout,
        &[
            "[nested / down / bottom]   bottom from outer-two",
            "[nested / down / bottom]   bottom in a container",
            "✓ workflow success",
        ],
    );
    let leftovers = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=runnel.job=nested/down/bottom",
        ])
        .output()
        .expect("docker ps");
    assert!(
        String::from_utf8_lossy(&leftovers.stdout).trim().is_empty(),
        "containers left behind"
    );
}

/// Gitea up to 1.26 hands a call job to a runner as one task (the called workflow's jobs run
/// inside it, as act_runner does); the daemon runs it through `run_job` like any job. Its own
/// Gitea instance: a call job has no `runs-on`, so any runner registered there may take it.
#[test]
fn the_daemon_runs_a_call_job_with_the_called_jobs_inside() {
    use crate::daemon_gitea::{obtain_named, register, workflow};
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!(
            "note: skipping the_daemon_runs_a_call_job_with_the_called_jobs_inside: needs a real Gitea; set RUN_SLOW_TESTS=1"
        );
        return;
    }
    let gitea = obtain_named("reusable-it")
        .unwrap_or_else(|e| panic!("RUN_SLOW_TESTS is set but no Gitea is available: {e}"));
    let runner = register(&gitea, "call");
    let label = &runner.label;
    let library = format!(
        "on:\n  workflow_call:\n    inputs:\n      who:\n        type: string\n        required: true\n    outputs:\n      said:\n        value: ${{{{ jobs.say.outputs.said }}}}\njobs:\n  say:\n    runs-on: {label}\n    outputs:\n      said: ${{{{ steps.s.outputs.said }}}}\n    steps:\n      - id: s\n        run: |\n          echo \"called for ${{{{ inputs.who }}}} by ${{{{ github.workflow }}}}\"\n          echo \"said=hi-${{{{ inputs.who }}}}\" >> \"$GITHUB_OUTPUT\"\n"
    );
    gitea.push_workflow(&format!("{label}-lib"), &library);
    let jobs = format!(
        "  call:\n    uses: ./.gitea/workflows/{label}-lib.yml\n    with:\n      who: gitea\n  after:\n    needs: call\n    runs-on: {label}\n    steps:\n      - run: echo \"after got ${{{{ needs.call.outputs.said }}}}\"\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&[]);
    // Two quick contents-API commits sometimes make Gitea start the workflow twice: wait for
    // an `after` job to finish and read the call job of the same run.
    let mut finished = None;
    for _ in 0..600 {
        let jobs = gitea.jobs_of(runner.id);
        if let Some(after) = jobs
            .iter()
            .find(|j| j["name"] == "after" && j["status"] == "completed")
        {
            finished = Some((after["run_id"].clone(), jobs.clone()));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    runner.stop(child);
    let (run_id, jobs) = finished.unwrap_or_else(|| {
        panic!(
            "no `after` job finished; daemon log:\n{}",
            runner.daemon_log()
        )
    });
    let by_name = |name: &str| {
        jobs.iter()
            .find(|j| j["name"] == name && j["run_id"] == run_id)
            .unwrap_or_else(|| panic!("no job {name} in {jobs:?}"))
    };
    let log = |job: &serde_json::Value| {
        gitea
            .log_lines(job["id"].as_i64().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
            .join("\n")
    };
    let call = by_name("call");
    let call_log = log(call);
    assert_eq!(call["conclusion"], "success", "{call}\n{call_log}");
    assert!(
        call_log.contains(&format!("called for gitea by {label}")),
        "{call_log}"
    );
    let after = by_name("after");
    let after_log = log(after);
    assert_eq!(after["conclusion"], "success", "{after}\n{after_log}");
    assert!(after_log.contains("after got hi-gitea"), "{after_log}");
}
