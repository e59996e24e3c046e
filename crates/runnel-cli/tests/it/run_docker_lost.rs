//! A job container that goes away mid-job (removed or killed by someone else, as an operator's
//! `docker rm -f` or the OOM killer would): the job fails naming the container and why, the
//! rest of it (`always()` steps too) is skipped instead of failing one by one against a
//! missing container, and nothing is left. The Kubernetes twin (a pod evicted) is in
//! `run_kubernetes_failures`.

use std::time::Duration;

use crate::run::{docker_or_skip, write_workflow};
use crate::support::{runnel, spawn_with_lines};

const WORKFLOW: &str = r#"on: push
jobs:
  lost:
    runs-on: linux
    steps:
      - run: echo "started $((6 * 7))"; sleep 120; echo "reached $((6 * 7))"
      - run: echo "second step ran $((6 * 7))"
      - if: always()
        run: echo "always step ran $((6 * 7))"
"#;

/// Runs the workflow, does `docker ACTION` to the job container once the first step has
/// started, and returns the run's output and exit code.
fn lose_the_job_container(action: &[&str]) -> (String, Option<i32>, u32) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(dir.path(), WORKFLOW);
    let mut command = runnel();
    command
        .current_dir(dir.path())
        .args(["run", "-P", "linux=runnel-test/debian:bookworm"])
        .env("NO_COLOR", "1");
    let (mut child, lines) = spawn_with_lines(command);
    let pid = child.id();
    let mut output = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                let started = line.contains("started 42");
                output.push(line);
                if started {
                    break;
                }
            }
            Err(error) => {
                let _ = child.kill();
                panic!("the step did not start ({error}):\n{}", output.join("\n"));
            }
        }
    }
    let container = format!("runnel-{pid}-1-job");
    let mut args = action.to_vec();
    args.push(&container);
    let done = std::process::Command::new("docker")
        .args(&args)
        .output()
        .expect("run docker");
    assert!(done.status.success(), "docker {args:?}: {done:?}");
    output.extend(lines.iter());
    let status = child.wait().expect("wait for runnel");
    (output.join("\n"), status.code(), pid)
}

fn containers_left(pid: u32) -> String {
    let listed = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=runnel.pid={pid}")])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&listed.stdout).trim().to_owned()
}

fn assert_lost(output: &str, code: Option<i32>, pid: u32, reason: &str) {
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "job container `runnel-{pid}-1-job` is no longer running: {reason}"
        )),
        "{output}"
    );
    assert!(output.contains("The job's environment is gone"), "{output}");
    for not_run in ["reached 42", "second step ran 42", "always step ran 42"] {
        assert!(!output.contains(not_run), "{not_run}:\n{output}");
    }
    // No step failed on its own against the missing container (no "bash was not found").
    assert_eq!(output.matches("error:").count(), 2, "{output}");
    assert_eq!(containers_left(pid), "", "{output}");
}

#[test]
fn a_job_container_removed_mid_step_fails_the_job_naming_it_and_skips_the_rest() {
    if !docker_or_skip(
        "a_job_container_removed_mid_step_fails_the_job_naming_it_and_skips_the_rest",
    ) {
        return;
    }
    let (output, code, pid) = lose_the_job_container(&["rm", "-f"]);
    assert_lost(&output, code, pid, "it was removed");
}

#[test]
fn a_job_container_killed_mid_step_fails_the_job_with_its_exit_code() {
    if !docker_or_skip("a_job_container_killed_mid_step_fails_the_job_with_its_exit_code") {
        return;
    }
    let (output, code, pid) = lose_the_job_container(&["kill"]);
    assert_lost(&output, code, pid, "it stopped with exit code 137");
}
