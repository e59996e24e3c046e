//! The operator's `container.options` through the real binary and Docker (`runnel exec
//! --container-opts` sets that key, on the same job assembly as the daemon): options a
//! workflow may not use reach the job container as written, while the same kind of option in
//! a workflow's `options:` is refused, naming it.

use std::path::Path;

use crate::run::docker_or_skip;
use crate::support::{run_expecting, runnel};

fn repo(workflow: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), workflow).expect("write workflow");
    dir
}

fn exec(repo: &Path, args: &[&str], codes: &[i32]) -> String {
    let mut command = runnel();
    command
        .arg("exec")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, codes);
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_operators_options_reach_the_job_container_as_written() {
    if !docker_or_skip("the_operators_options_reach_the_job_container_as_written") {
        return;
    }
    let repo = repo(
        "on: push\njobs:\n  operator:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - run: getent hosts runnel-test\n      - run: df -k /dev/shm\n",
    );
    let output = exec(
        repo.path(),
        &[
            "-i",
            "runnel-test/debian:bookworm",
            "--container-opts=--add-host runnel-test:10.9.8.7 --shm-size 256m",
        ],
        &[0],
    );
    assert!(output.contains("10.9.8.7        runnel-test"), "{output}");
    assert!(output.contains("262144"), "256 MiB of /dev/shm: {output}");
}

#[test]
fn workflow_options_outside_the_allow_list_are_refused_the_operators_apply() {
    if !docker_or_skip("a_workflow_option_outside_the_allow_list_is_refused") {
        return;
    }
    let repo = repo(
        "on: push\njobs:\n  grouped:\n    runs-on: ubuntu-latest\n    container:\n      \
         image: runnel-test/debian:bookworm\n      options: --group-add 1234\n    steps:\n      \
         - run: id -G\n",
    );
    let output = exec(repo.path(), &["-i", "runnel-test/debian:bookworm"], &[1]);
    assert!(
        output.contains("option `--group-add` is not allowed"),
        "{output}"
    );
    // The same option from the operator applies.
    let repo = repo_plain();
    let image = ["-i", "runnel-test/debian:bookworm"];
    let output = exec(
        repo.path(),
        &[&image[..], &["--container-opts=--group-add 4321"]].concat(),
        &[0],
    );
    assert!(output.contains("4321"), "{output}");
    // An option that cannot apply to a job container at all is named.
    let output = exec(
        repo.path(),
        &[&image[..], &["--container-opts=--name fixed"]].concat(),
        &[1, 2],
    );
    assert!(
        output.contains(
            "option `--name` is not allowed: runnel creates, names and removes job containers itself"
        ),
        "{output}"
    );
}

fn repo_plain() -> tempfile::TempDir {
    repo("on: push\njobs:\n  plain:\n    runs-on: ubuntu-latest\n    steps:\n      - run: id -G\n")
}

/// As the Gitea runner (v3.3) applies them to action containers: the operator's options reach
/// a `docker://` step too; the network-namespace ones (`--add-host`) take effect through the
/// job container whose namespace (and /etc/hosts) the step shares, and do not stop it.
#[test]
fn the_operators_options_reach_step_containers() {
    if !docker_or_skip("the_operators_options_reach_step_containers") {
        return;
    }
    let repo = repo(
        "on: push\njobs:\n  step:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - uses: docker://runnel-test/busybox\n        with:\n          entrypoint: sh\n          \
         args: -c \"echo op=$RUNNEL_OPERATOR; df -k /dev/shm; grep runnel-test /etc/hosts\"\n",
    );
    let output = exec(
        repo.path(),
        &[
            "-i",
            "runnel-test/debian:bookworm",
            "--container-opts=--env RUNNEL_OPERATOR=set --shm-size 256m --add-host runnel-test:10.9.8.7",
        ],
        &[0],
    );
    assert!(output.contains("op=set"), "{output}");
    assert!(output.contains("262144"), "256 MiB of /dev/shm: {output}");
    assert!(output.contains("10.9.8.7"), "{output}");
}
