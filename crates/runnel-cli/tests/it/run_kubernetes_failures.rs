//! The Kubernetes backend when things go wrong, through the real binary on the test cluster
//! (slow; see `run_kubernetes` for the cluster): a pod evicted mid-step fails the job with the
//! API's reason and the next job runs (`runnel run` and the daemon against the real Gitea); an
//! image the node cannot pull and a pod no node can take fail the job naming why; Ctrl-C kills
//! the step, runs `always()` steps and deletes the pod. No pod is left after any of them.

use std::path::Path;
use std::process::Command;

use crate::run::write_workflow;
use crate::run_kubernetes::{
    IMAGE, admin_kubectl, cluster_or_skip, hold_cluster, kubectl, pods_left, run_in_cluster,
    run_in_cluster_on, run_in_cluster_with,
};

/// A step that sleeps while the test evicts its pod through the API.
const LOST_WORKFLOW: &str = r#"on: push
jobs:
  lost:
    runs-on: linux
    steps:
      - run: echo "started"; sleep 120; echo "reached $((6 * 7))"
      - run: echo "second step ran $((6 * 7))"
      - if: always()
        run: echo "always step ran $((6 * 7))"
"#;

/// Waits until the one job pod runs the step's `sleep 120`, then evicts the pod through the
/// API (as a drain does); returns its name.
fn evict_when_sleeping(kubeconfig: &Path) -> String {
    let mut pod = String::new();
    for _ in 0..480 {
        std::thread::sleep(std::time::Duration::from_millis(250));
        pod = pods_left(kubeconfig);
        let Some(name) = pod.strip_prefix("pod/").filter(|_| !pod.contains('\n')) else {
            continue;
        };
        let sleeping = admin_kubectl(
            kubeconfig,
            &[
                "exec",
                "-n",
                "runnel-jobs",
                name,
                "-c",
                "job",
                "--",
                "sh",
                "-c",
                "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep '^sleep 120'",
            ],
        );
        if sleeping.is_some_and(|out| !out.is_empty()) {
            break;
        }
    }
    let name = pod.strip_prefix("pod/").expect("the job's pod").to_owned();
    let eviction = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{name}","namespace":"runnel-jobs"}}}}"#
    );
    let body = tempfile::NamedTempFile::new().expect("eviction file");
    std::fs::write(body.path(), eviction).expect("write eviction");
    let url = format!("/api/v1/namespaces/runnel-jobs/pods/{name}/eviction");
    let path = body.path().to_str().expect("utf-8 path");
    kubectl(kubeconfig, &["create", "--raw", &url, "-f", path]);
    name
}

/// Waits (bounded) until no job pod is left; returns what is left.
fn pods_gone(kubeconfig: &Path) -> String {
    for _ in 0..120 {
        let left = pods_left(kubeconfig);
        if left.is_empty() {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    pods_left(kubeconfig)
}

#[test]
fn a_pod_evicted_mid_step_fails_the_job_and_the_next_job_runs() {
    let test = "a_pod_evicted_mid_step_fails_the_job_and_the_next_job_runs";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(dir.path(), LOST_WORKFLOW);
    let started = std::time::Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["run", "--no-cache-server", "-P"])
        .arg(format!("linux=kubernetes://{IMAGE}"))
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".xdg-cache"))
        .env("KUBECONFIG", &kubeconfig)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run runnel");
    let name = evict_when_sleeping(&kubeconfig);
    let output = child.wait_with_output().expect("wait for runnel");
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(100),
        "the job waited for the step's sleep instead of ending with its pod:\n{all}"
    );
    for expected in [
        "started",
        &format!("pod `{name}` is no longer running: it is being deleted (EvictionByEvictionAPI"),
        "The job's environment is gone: the remaining steps and post steps are skipped.",
    ] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
    for unexpected in [
        "reached 42",
        "second step ran 42",
        "always step ran 42",
        "Process completed with exit code",
        "Unable to process file command",
    ] {
        assert!(!all.contains(unexpected), "{unexpected:?} in:\n{all}");
    }
    // The runner goes on: the next job runs in a pod of its own.
    let (next, stdout, stderr) = run_in_cluster(
        &kubeconfig,
        "on: push\njobs:\n  next:\n    runs-on: linux\n    steps:\n      - run: echo \"next job ran\"\n",
    );
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(next.status.code(), Some(0), "{all}");
    assert!(all.contains("next job ran"), "{all}");
    assert_eq!(pods_gone(&kubeconfig), "", "pods left after the jobs");
}

/// The daemon: a job whose pod is evicted mid-step fails with the API's reason in its Gitea
/// log, and the same daemon runs the next job.
#[test]
fn the_daemon_goes_on_after_a_job_pod_is_evicted() {
    let test = "the_daemon_goes_on_after_a_job_pod_is_evicted";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let Some(gitea) = crate::daemon_gitea::gitea(test) else {
        return;
    };
    let runner = crate::daemon_gitea::register_with(
        gitea,
        "k8s-lost",
        |l| format!("{l}:kubernetes://{IMAGE}"),
        &[],
    );
    runner.write_config(&format!(
        "kubernetes:\n  kubeconfig: {}\n",
        kubeconfig.display()
    ));
    let label = &runner.label;
    let jobs = format!(
        r#"  lost:
    runs-on: {label}
    steps:
      - run: echo "started"; sleep 120
  next:
    needs: lost
    if: always()
    runs-on: {label}
    steps:
      - run: echo "next job ran"
"#
    );
    gitea.push_workflow(label, &crate::daemon_gitea::workflow(label, &jobs));
    let daemon = runner.daemon(&["-c", "config.yaml"]);
    let name = evict_when_sleeping(&kubeconfig);
    let jobs = crate::daemon_gitea::completed_jobs(gitea, &runner, 2);
    runner.stop(daemon);
    let by_name = |wanted: &str| {
        jobs.iter()
            .find(|job| job["name"] == wanted)
            .unwrap_or_else(|| panic!("no job {wanted}: {jobs:#?}"))
    };
    let (lost, next) = (by_name("lost"), by_name("next"));
    let log = |job: &serde_json::Value| {
        gitea
            .log_lines(job["id"].as_i64().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let lost_lines = log(lost).join("\n");
    assert_eq!(lost["conclusion"], "failure", "{lost}\n{lost_lines}");
    assert!(
        lost_lines.contains(&format!(
            "pod `{name}` is no longer running: it is being deleted (EvictionByEvictionAPI"
        )),
        "{lost_lines}\n{}",
        runner.daemon_log()
    );
    let next_lines = log(next);
    assert_eq!(next["conclusion"], "success", "{next}\n{next_lines:#?}");
    assert!(
        next_lines.iter().any(|l| l == "next job ran"),
        "{next_lines:#?}"
    );
    assert_eq!(
        pods_gone(&kubeconfig),
        "",
        "pods left after the daemon's jobs"
    );
}

/// A job image the node cannot pull (no registry here, nothing of that name imported) fails
/// the job with the pod, the image and the kubelet's reason, without waiting out the start
/// timeout, and leaves no pod.
#[test]
fn an_image_the_node_cannot_pull_fails_the_job_naming_it() {
    let test = "an_image_the_node_cannot_pull_fails_the_job_naming_it";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let image = "runnel-test/no-such-image:1";
    let workflow =
        "on: push\njobs:\n  one:\n    runs-on: linux\n    steps:\n      - run: echo never\n";
    let clock = std::time::Instant::now();
    let (output, stdout, stderr) = run_in_cluster_on(&kubeconfig, image, workflow);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("image `{image}` cannot be used (")),
        "{all}"
    );
    assert!(!all.contains("never\n"), "{all}");
    eprintln!("failed after {:.1} s", clock.elapsed().as_secs_f64());
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the job");
}

/// Ctrl-C on `runnel run` while a step runs in the pod: the step's exec is killed, an
/// `always()` step still runs, the run fails, and the pod is deleted.
#[test]
fn a_cancelled_run_kills_the_step_runs_always_steps_and_deletes_the_pod() {
    let test = "a_cancelled_run_kills_the_step_runs_always_steps_and_deletes_the_pod";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  one:\n    runs-on: linux\n    steps:\n      \
         - run: echo started-in-pod; sleep 300; echo sleep-survived\n      \
         - if: always()\n        run: echo cleanup-step-ran\n",
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    command
        .args(["run", "--no-cache-server", "-P"])
        .arg(format!("linux=kubernetes://{IMAGE}"))
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".xdg-cache"))
        .env("KUBECONFIG", &kubeconfig)
        .env("NO_COLOR", "1");
    let (mut child, received) = crate::support::spawn_with_lines(command);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok(line) if line.ends_with("started-in-pod") && !line.contains("echo ") => break,
            Ok(line) => eprintln!("{line}"),
            Err(error) => {
                let _ = child.kill();
                panic!("the step never started in the pod: {error}");
            }
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let code = child.wait().expect("wait for runnel");
    let rest: Vec<String> = received.iter().collect();
    assert_ne!(code.code(), Some(0), "{rest:#?}");
    assert!(
        rest.iter().any(|line| line.ends_with("cleanup-step-ran")),
        "{rest:#?}"
    );
    assert!(
        !rest.iter().any(|line| line.ends_with("sleep-survived")),
        "{rest:#?}"
    );
    let mut left = pods_left(&kubeconfig);
    for _ in 0..30 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        left = pods_left(&kubeconfig);
    }
    assert_eq!(left, "", "pods left after the cancelled run");
}

/// A node selector no node matches (from the `kubernetes:` section of `runnel run -c FILE`):
/// the job fails once the start timeout has passed, with the scheduler's reason, and no pod
/// is left.
#[test]
fn a_pod_no_node_can_take_fails_the_job_with_the_schedulers_reason() {
    let test = "a_pod_no_node_can_take_fails_the_job_with_the_schedulers_reason";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "kubernetes:\n  pod_start_timeout: 5s\n  node_selector:\n    runnel-test/no-such-node: \"yes\"\n",
    )
    .expect("write config");
    let config = config.display().to_string();
    let (output, stdout, stderr) = run_in_cluster_with(
        &kubeconfig,
        IMAGE,
        "on: push\njobs:\n  one:\n    runs-on: linux\n    steps:\n      - run: echo never\n",
        &["--no-cache-server", "-c", &config],
    );
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(1), "{all}");
    for expected in ["cannot be scheduled within 5s", "node(s) didn't match"] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the job");
}
