//! Container steps on the Kubernetes backend, through the real binary on the test cluster
//! (slow; see `run_kubernetes` for the cluster): `uses: docker://IMAGE` steps and a local
//! `runs.using: docker` action with a prebuilt image run as ephemeral containers of the job's
//! pod. They see the workspace an earlier script step wrote at `/github/workspace` (their
//! working directory) and write `$GITHUB_OUTPUT` and `$GITHUB_ENV` that later steps see; the
//! action gets its inputs as `INPUT_*` and in its `runs.args`, and its `runs.env`; another's
//! `post-entrypoint` runs after the job's steps with the state its main part saved. A failing
//! container step's exit code fails the job; a timed-out one is killed (its `sleep` is gone
//! from the pod's process namespace) and, with `continue-on-error`, the job goes on; so is one
//! running when the run is cancelled (Ctrl-C), before an `always()` step. A service answers a
//! container step by name and on localhost. An image the node cannot have fails the step
//! naming it, so does an entrypoint the image lacks, and a `Dockerfile` action fails saying the
//! cluster cannot build it. No pod is left after any.

use std::path::Path;
use std::process::{Command, Output};

use crate::run::write_workflow;
use crate::run_kubernetes::{IMAGE, cluster_or_skip, hold_cluster, pods_left};

/// The busybox test image as the cluster has it without pulling (see tests/k8s/README.md).
const BUSYBOX: &str = "runnel-test/busybox:local";

const WORKFLOW: &str = r#"on: push
jobs:
  pod:
    runs-on: linux
    services:
      web:
        image: runnel-test/busybox:local
        entrypoint: sh
        command: -c "mkdir -p /www && echo served-by-sidecar > /www/index.html && exec httpd -f -p 8080 -h /www"
        options: --health-cmd "wget -q -O- http://localhost:8080/ >/dev/null" --health-interval 1s --health-retries 30
    steps:
      - run: echo "written by a script step" > from-script.txt
      - id: box
        uses: docker://runnel-test/busybox:local
        with:
          entrypoint: sh
          args: -c "echo read=$(cat from-script.txt); echo cwd=$(pwd) ws=$GITHUB_WORKSPACE home=$HOME; echo value=from-container >> $GITHUB_OUTPUT; echo FROM_CONTAINER=carried >> $GITHUB_ENV; echo to-stderr-$((6*7)) >&2; echo 'kept=$(HOME) $$'; echo by-name=$(wget -q -O- http://web:8080/) on-localhost=$(wget -q -O- http://localhost:8080/)"
      - run: |
          echo "output: ${{ steps.box.outputs.value }}"
          echo "env: $FROM_CONTAINER"
      - id: greet
        uses: ./.github/actions/greet
        with:
          who: world
      - run: echo "action said ${{ steps.greet.outputs.greeting }}"
      - uses: ./.github/actions/hooks
      - uses: docker://runnel-test/busybox:local
        timeout-minutes: 0.05
        continue-on-error: true
        with:
          entrypoint: sh
          args: -c "echo sleeping-in-container; sleep 300"
      - run: |
          for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f"; echo; done > /tmp/procs 2>/dev/null
          if grep -q '^sleep 300' /tmp/procs; then echo "container sleep survived"; else echo "container sleep killed"; fi
"#;

const GREET_ACTION: &str = r#"name: greet
inputs:
  who:
    required: true
outputs:
  greeting:
    description: the greeting
runs:
  using: docker
  image: docker://runnel-test/busybox:local
  entrypoint: sh
  args:
    - -c
    - 'echo "hello $INPUT_WHO via ${{ inputs.who }}, extra=$EXTRA"; echo "greeting=hi-$INPUT_WHO" >> "$GITHUB_OUTPUT"'
  env:
    EXTRA: from-runs-env
"#;

/// A docker action with a post hook: the main part saves state the post part reads.
const HOOKS_ACTION: &str = r#"name: hooks
runs:
  using: docker
  image: docker://runnel-test/busybox:local
  entrypoint: sh
  post-entrypoint: sh
  args:
    - -c
    - 'echo "phase-${STATE_next:-main} in $(pwd)"; echo next=post >> "$GITHUB_STATE"'
"#;

const FAILING_WORKFLOW: &str = r#"on: push
jobs:
  fails:
    runs-on: linux
    steps:
      - uses: docker://runnel-test/busybox:local
        with:
          entrypoint: sh
          args: -c "echo about-to-fail; exit 7"
      - run: echo "never-$((6*7))"
  builds:
    runs-on: linux
    steps:
      - uses: ./.github/actions/built
  pulls:
    runs-on: linux
    steps:
      - uses: docker://runnel-test/no-such-image:1
      - run: echo "never-$((6*7))"
  starts:
    runs-on: linux
    steps:
      - uses: docker://runnel-test/busybox:local
        with:
          entrypoint: /no-such-program
"#;

const BUILT_ACTION: &str = r#"name: built
runs:
  using: docker
  image: Dockerfile
"#;

/// `runnel run` over a tree holding `workflow` and `files` (path, contents).
fn run_tree(kubeconfig: &Path, workflow: &str, files: &[(&str, &str)]) -> (Output, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all_files = vec![(".gitea/workflows/ci.yml", workflow)];
    all_files.extend_from_slice(files);
    for (path, contents) in all_files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
        std::fs::write(path, contents).expect("write a file");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["run", "--no-cache-server", "-P"])
        .arg(format!("linux=kubernetes://{IMAGE}"))
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".xdg-cache"))
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .output()
        .expect("run runnel");
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, all)
}

#[test]
fn container_steps_run_as_ephemeral_containers_of_the_job_pod() {
    let test = "container_steps_run_as_ephemeral_containers_of_the_job_pod";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    assert!(WORKFLOW.contains(BUSYBOX) && GREET_ACTION.contains(BUSYBOX));
    let (output, all) = run_tree(
        &kubeconfig,
        WORKFLOW,
        &[
            (".github/actions/greet/action.yml", GREET_ACTION),
            (".github/actions/hooks/action.yml", HOOKS_ACTION),
        ],
    );
    // The timed-out step has continue-on-error: the job succeeds.
    assert_eq!(output.status.code(), Some(0), "{all}");
    for expected in [
        "read=written by a script step",
        "cwd=/github/workspace ws=/github/workspace home=/github/home",
        "to-stderr-42",
        // Not expanded by Kubernetes (`$(NAME)` and `$$` in a container's args).
        "kept=$(HOME) $$",
        "by-name=served-by-sidecar on-localhost=served-by-sidecar",
        "output: from-container",
        "env: carried",
        "hello world via world, extra=from-runs-env",
        "action said hi-world",
        "phase-main in /github/workspace",
        "phase-post in /github/workspace",
        "sleeping-in-container",
        "container sleep killed",
    ] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
    assert!(!all.contains("container sleep survived"), "{all}");
    assert!(
        all.to_lowercase().contains("timed out") || all.contains("timeout"),
        "{all}"
    );
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the job");
}

#[test]
fn failing_container_steps_fail_their_jobs_saying_why() {
    let test = "failing_container_steps_fail_their_jobs_saying_why";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let (output, all) = run_tree(
        &kubeconfig,
        FAILING_WORKFLOW,
        &[
            (".github/actions/built/action.yml", BUILT_ACTION),
            (
                ".github/actions/built/Dockerfile",
                "FROM runnel-test/busybox:local\n",
            ),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("about-to-fail"), "{all}");
    assert!(
        all.contains("exit code 7") || all.contains("exited with 7"),
        "{all}"
    );
    assert!(
        !all.contains("never-42"),
        "a step after the failure ran:\n{all}"
    );
    for expected in [
        "the kubernetes backend cannot build the action's image from",
        "Dockerfile",
        "docker://IMAGE",
        "run the job on a Docker label",
        "image `runnel-test/no-such-image:1` cannot be used (",
        "(step container `step-1`)",
        "step container `step-1` (runnel-test/busybox:local) could not start (exit code 128)",
        "/no-such-program",
    ] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the jobs");
}

/// Ctrl-C on `runnel run` while a container step runs: its processes are killed (an
/// `always()` step in the job container no longer sees its `sleep`), the run fails and the pod
/// is deleted.
#[test]
fn a_cancelled_run_kills_the_container_step() {
    let test = "a_cancelled_run_kills_the_container_step";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        &format!(
            "on: push\njobs:\n  one:\n    runs-on: linux\n    steps:\n      \
             - uses: docker://{BUSYBOX}\n        with:\n          entrypoint: sh\n          \
             args: -c \"echo started-in-container; sleep 300; echo sleep-survived\"\n      \
             - if: always()\n        run: |\n          \
             for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\"; echo; done > /tmp/procs\n          \
             if grep -q '^sleep 300' /tmp/procs; then echo container-sleep-alive; else echo container-sleep-gone; fi\n"
        ),
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
            Ok(line) if line.ends_with("started-in-container") && !line.contains("echo ") => {
                break;
            }
            Ok(line) => eprintln!("{line}"),
            Err(error) => {
                let _ = child.kill();
                panic!("the container step never started: {error}");
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
        rest.iter()
            .any(|line| line.ends_with("container-sleep-gone")),
        "{rest:#?}"
    );
    assert!(
        !rest
            .iter()
            .any(|line| line.ends_with("sleep-survived") || line.ends_with("container-sleep-alive")),
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
