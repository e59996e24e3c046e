//! The Kubernetes backend through the real binary on a real single-node cluster (slow:
//! `RUN_SLOW_TESTS=1`; `tests/k8s/start.sh` builds Kubernetes from the Go module proxy the first
//! time, about 8 minutes on 2 cores, and starts it in about 10 s). Without a cluster the tests
//! are skipped saying why, unless `RUNNEL_REQUIRE_K8S=1` makes that a failure.
//!
//! `runnel run -P linux=kubernetes://IMAGE` runs a job as one pod: output streamed from exec,
//! env files and outputs carried between steps, per-step env and the workspace copied in, a
//! failing step's exit code, a step timeout that kills the process; the pod is gone afterwards,
//! and so is a pod a dead runner of this host left.
//! A namespace the runner's account may not use fails the job naming the verb and resource.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::repo_root;

const IMAGE: &str = "runnel-test/debian:bookworm";

const WORKFLOW: &str = r#"on: push
jobs:
  pod:
    runs-on: linux
    steps:
      - run: |
          echo "FROM_ENV_FILE=carried over" >> "$GITHUB_ENV"
          echo "first step in $(cat /etc/debian_version >/dev/null && echo debian)"
      - id: produce
        run: echo "value=from-step-one" >> "$GITHUB_OUTPUT"
      - run: |
          echo "env: $FROM_ENV_FILE"
          echo "got ${{ steps.produce.outputs.value }}"
          echo "workdir: $(pwd)"
          echo "step env: $STEP_VAR"
          test -f tree-file.txt && echo "workspace copied: $(cat tree-file.txt)"
        env:
          STEP_VAR: per-step
      - run: echo to-stderr >&2; exit 3
        continue-on-error: true
      - timeout-minutes: 0.05
        run: echo "sleeping"; sleep 300
      - if: always()
        run: |
          for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f"; echo; done > /tmp/procs 2>/dev/null
          if grep -q '^sleep 300' /tmp/procs; then echo "sleep survived"; else echo "sleep killed"; fi
"#;

/// The cluster's kubeconfig for the runner (least rights in `runnel-jobs`), or `None` when
/// the test is skipped.
fn cluster_or_skip(test: &str) -> Option<PathBuf> {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping {test}: needs a Kubernetes cluster; set RUN_SLOW_TESTS=1");
        return None;
    }
    let images = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output();
    assert!(
        images.is_ok_and(|o| o.status.success()),
        "{test}: Docker or the test images are missing: run tests/docker/ensure-dockerd.sh and \
         tests/images/build.sh"
    );
    let start = Command::new(repo_root().join("tests/k8s/start.sh"))
        .output()
        .expect("run tests/k8s/start.sh");
    let stdout = String::from_utf8_lossy(&start.stdout);
    let kubeconfig = stdout.lines().last().map(PathBuf::from);
    match kubeconfig {
        Some(path) if start.status.success() && path.is_file() => Some(path),
        _ => {
            let why = format!(
                "{test}: the test cluster could not be built or started (tests/k8s/start.sh):\n{}",
                String::from_utf8_lossy(&start.stderr)
            );
            assert!(std::env::var_os("RUNNEL_REQUIRE_K8S").is_none(), "{why}");
            eprintln!("note: skipping {why}");
            None
        }
    }
}

/// `kubectl` as the cluster's admin.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let state = kubeconfig.parent().expect("state directory");
    let output = Command::new(state.join("bin/kubectl"))
        .arg("--kubeconfig")
        .arg(state.join("admin.kubeconfig"))
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Runs `runnel run` over a tree holding `workflow`, with `kubeconfig`.
fn run_in_cluster(kubeconfig: &Path, workflow: &str) -> (Output, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), workflow).expect("write workflow");
    std::fs::write(dir.path().join("tree-file.txt"), "from the tree").expect("write tree file");
    let output = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["run", "--no-cache-server", "-P"])
        .arg(format!("linux=kubernetes://{IMAGE}"))
        .current_dir(dir.path())
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .output()
        .expect("run runnel");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

fn pods_left(kubeconfig: &Path) -> String {
    kubectl(
        kubeconfig,
        &[
            "get",
            "pods",
            "-n",
            "runnel-jobs",
            "-l",
            "app.kubernetes.io/managed-by=runnel",
            "-o",
            "name",
        ],
    )
}

#[test]
fn a_job_runs_as_a_pod_with_env_files_outputs_failures_and_timeouts() {
    let test = "a_job_runs_as_a_pod_with_env_files_outputs_failures_and_timeouts";
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    // A pod a dead runner of this host left behind (pid 999999 runs nothing) goes at start.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
    let leftover = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: runnel-leftover\n  namespace: runnel-jobs\n  \
         labels:\n    app.kubernetes.io/managed-by: runnel\n    runnel.host: \"{}\"\n    \
         runnel.pid: \"999999\"\nspec:\n  containers:\n  - name: job\n    image: {IMAGE}\n    \
         command: [sleep, \"3600\"]\n",
        host.trim()
    );
    let manifest = tempfile::NamedTempFile::new().expect("manifest file");
    std::fs::write(manifest.path(), leftover).expect("write manifest");
    let path = manifest.path().to_str().expect("utf-8 path");
    kubectl(&kubeconfig, &["apply", "-f", path]);
    let (output, stdout, stderr) = run_in_cluster(&kubeconfig, WORKFLOW);
    let all = format!("{stdout}\n{stderr}");
    // The timed-out step fails the job.
    assert_eq!(output.status.code(), Some(1), "{all}");
    for expected in [
        "first step in debian",
        "env: carried over",
        "got from-step-one",
        "workdir: /__w/workspace",
        "step env: per-step",
        "workspace copied: from the tree",
        "to-stderr",
        "sleeping",
        "sleep killed",
    ] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
    assert!(!all.contains("sleep survived"), "{all}");
    assert!(
        all.contains("exit code 3") || all.contains("exited with 3"),
        "{all}"
    );
    assert!(
        all.to_lowercase().contains("timed out") || all.contains("timeout"),
        "{all}"
    );
    assert_eq!(
        pods_left(&kubeconfig),
        "",
        "pods left after the job (the dead runner's included)"
    );
}

#[test]
fn a_namespace_the_runner_may_not_use_fails_the_job_naming_the_verb() {
    let test = "a_namespace_the_runner_may_not_use_fails_the_job_naming_the_verb";
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let text = std::fs::read_to_string(&kubeconfig).expect("read kubeconfig");
    let dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = dir.path().join("kubeconfig");
    std::fs::write(
        &elsewhere,
        text.replace("namespace: runnel-jobs", "namespace: default"),
    )
    .expect("write kubeconfig");
    let (output, stdout, stderr) = run_in_cluster(
        &elsewhere,
        "on: push\njobs:\n  pod:\n    runs-on: linux\n    steps:\n      - run: echo never\n",
    );
    let all = format!("{stdout}\n{stderr}");
    assert_ne!(output.status.code(), Some(0), "{all}");
    assert!(!all.contains("\n  never"), "{all}");
    for expected in [
        "refused to create pods in namespace `default`",
        "needs `create` on `pods`",
    ] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
}
