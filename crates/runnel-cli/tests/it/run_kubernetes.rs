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
//! Services are sidecars reached by name and on localhost; one that exits or fails its health
//! check fails the job with its log. `hashFiles` reads the pod's workspace (Debian's and
//! busybox's tools). `runnel daemon` runs a `kubernetes://` label's job from the real Gitea.
//! A pod on this machine's node reaches the runner's cache server at the node's address
//! (a request with the job's token answers 204), and the `actions/cache` stand-in saves,
//! falls back to a restore key and restores there.
//! `runnel doctor` checks the cluster, the namespace and the account's rights there. (A pod
//! lost mid-job, an image that cannot be pulled, an unschedulable pod and Ctrl-C:
//! `run_kubernetes_failures`.)
//! A link planted at `$GITHUB_OUTPUT` fails the step as on the other backends.
//! The tests take the cluster one at a time: each checks that no pod is left.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::run::write_workflow;
use crate::support::repo_root;

pub(crate) const IMAGE: &str = "runnel-test/debian:bookworm";

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

/// One test at a time on the cluster: each checks that no pod is left in the namespace.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the cluster for one test (a failed test's poisoned lock is taken over).
pub(crate) fn hold_cluster() -> std::sync::MutexGuard<'static, ()> {
    CLUSTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The cluster's kubeconfig for the runner (least rights in `runnel-jobs`), or `None` when
/// the test is skipped.
pub(crate) fn cluster_or_skip(test: &str) -> Option<PathBuf> {
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
pub(crate) fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
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

/// `kubectl` as the cluster's admin; its stdout, or `None` when it failed.
pub(crate) fn admin_kubectl(kubeconfig: &Path, args: &[&str]) -> Option<String> {
    let state = kubeconfig.parent().expect("state directory");
    let output = Command::new(state.join("bin/kubectl"))
        .arg("--kubeconfig")
        .arg(state.join("admin.kubeconfig"))
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs `runnel run` over a tree holding `workflow`, with `kubeconfig`.
pub(crate) fn run_in_cluster(kubeconfig: &Path, workflow: &str) -> (Output, String, String) {
    run_in_cluster_on(kubeconfig, IMAGE, workflow)
}

/// [`run_in_cluster`] with the job image `image`.
pub(crate) fn run_in_cluster_on(
    kubeconfig: &Path,
    image: &str,
    workflow: &str,
) -> (Output, String, String) {
    run_in_cluster_with(kubeconfig, image, workflow, &["--no-cache-server"])
}

/// [`run_in_cluster_on`] with `runnel run`'s options `options`.
pub(crate) fn run_in_cluster_with(
    kubeconfig: &Path,
    image: &str,
    workflow: &str,
    options: &[&str],
) -> (Output, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(dir.path(), workflow);
    std::fs::write(dir.path().join("tree-file.txt"), "from the tree").expect("write tree file");
    let output = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .arg("run")
        .args(options)
        .arg("-P")
        .arg(format!("linux=kubernetes://{image}"))
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".xdg-cache"))
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .output()
        .expect("run runnel");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

pub(crate) fn pods_left(kubeconfig: &Path) -> String {
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
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    // A pod a dead runner of this host left behind (pid 999999 runs nothing) goes at start:
    // a local run's pods are owned by the host.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
    let host = host.trim();
    let leftover = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: runnel-leftover\n  namespace: runnel-jobs\n  \
         labels:\n    app.kubernetes.io/managed-by: runnel\n    runnel.owner: \"host-{host}\"\n    \
         runnel.host: \"{host}\"\n    runnel.pid: \"999999\"\nspec:\n  containers:\n  - name: job\n    \
         image: {IMAGE}\n    command: [sleep, \"3600\"]\n"
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

/// The job's `container:` shapes the pod's job container: `env:` and `-e`, `--user`, and
/// `--cpus`/`--memory` as its limits; an option a pod cannot honour fails the job by name.
const SHAPED_WORKFLOW: &str = r#"on: push
jobs:
  shaped:
    runs-on: linux
    container:
      image: runnel-test/debian:bookworm
      env:
        FROM_ENV: from-env
      options: --cpus 0.5 --memory 128m --user 1000:1000 -e FROM_OPTION=from-option
    steps:
      - run: |
          echo "ids $(id -u):$(id -g)"
          echo "env $FROM_ENV $FROM_OPTION"
          echo "memory $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
          echo "cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max)"
          echo written > in-workspace.txt && echo "workspace writable"
  refused:
    runs-on: linux
    container:
      image: runnel-test/debian:bookworm
      options: --shm-size 1g
    steps:
      - run: echo "refused job ran"
"#;

#[test]
fn the_jobs_container_options_shape_its_pod_container_or_fail_by_name() {
    let test = "the_jobs_container_options_shape_its_pod_container_or_fail_by_name";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let (output, stdout, stderr) = run_in_cluster(&kubeconfig, SHAPED_WORKFLOW);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(
        output.status.code(),
        Some(1),
        "the refused job fails:\n{all}"
    );
    for expected in [
        "ids 1000:1000",
        "env from-env from-option",
        "memory 134217728",
        "cpu 50000",
        "workspace writable",
        "the job's container (runnel-test/debian:bookworm): option `--shm-size` is not \
         available on the kubernetes backend",
    ] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
    assert!(!all.contains("refused job ran"), "{all}");
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the jobs");
}

#[test]
fn a_namespace_the_runner_may_not_use_fails_the_job_naming_the_verb() {
    let test = "a_namespace_the_runner_may_not_use_fails_the_job_naming_the_verb";
    let _cluster = hold_cluster();
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

/// A busybox `httpd` as a sidecar: its health check waited for, then reached by its name and
/// on localhost (bash's `/dev/tcp`: the job image has no HTTP client).
const SERVICES_WORKFLOW: &str = r#"on: push
jobs:
  pod:
    runs-on: linux
    services:
      web:
        image: runnel-test/busybox:local
        entrypoint: sh
        command: -c "mkdir -p /www && echo served-by-$GREETING > /www/index.html && exec httpd -f -p 8080 -h /www"
        env:
          GREETING: sidecar
        ports:
          - 8080
        options: --health-cmd "wget -q -O- http://localhost:8080/ >/dev/null" --health-interval 1s --health-retries 30
    steps:
      - run: |
          get() { exec 3<>"/dev/tcp/$1/$2"; printf 'GET / HTTP/1.0\r\n\r\n' >&3; cat <&3; exec 3<&-; }
          echo "by name: $(get web 8080 | tail -n 1)"
          echo "on localhost: $(get localhost 8080 | tail -n 1)"
          echo "port in the job context: ${{ job.services.web.ports['8080'] }}"
        shell: bash
"#;

#[test]
fn services_are_sidecars_reached_by_name_and_on_localhost() {
    let test = "services_are_sidecars_reached_by_name_and_on_localhost";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let (output, stdout, stderr) = run_in_cluster(&kubeconfig, SERVICES_WORKFLOW);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(0), "{all}");
    for expected in [
        "by name: served-by-sidecar",
        "on localhost: served-by-sidecar",
        "port in the job context: 8080",
    ] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the job");

    // A service that exits, or fails its health check, fails the job before its steps, with
    // the tail of its log.
    let failing = |command: &str, options: &str| {
        format!(
            "on: push\njobs:\n  pod:\n    runs-on: linux\n    services:\n      db:\n        \
             image: runnel-test/busybox:local\n        entrypoint: sh\n        command: -c \
             \"echo giving-up; {command}\"\n        options: {options}\n    steps:\n      \
             - run: echo never\n"
        )
    };
    for (workflow, expected) in [
        (
            failing("exit 4", "--health-cmd true --health-interval 1s"),
            "exited (Error, code 4) before its health check passed",
        ),
        (
            failing(
                "sleep 60",
                "--health-cmd false --health-interval 1s --health-retries 2",
            ),
            "is unhealthy: its health check failed --health-retries times",
        ),
    ] {
        let (output, stdout, stderr) = run_in_cluster(&kubeconfig, &workflow);
        let all = format!("{stdout}\n{stderr}");
        assert_ne!(output.status.code(), Some(0), "{all}");
        assert!(!all.contains("\n  never"), "{all}");
        for expected in ["service `db`", expected, "giving-up"] {
            assert!(all.contains(expected), "{expected:?} missing:\n{all}");
        }
    }
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the failed job");
}

/// `hashFiles` reads the pod's workspace (files a step made, the copied tree), with GitHub's
/// order (depth first, by name) and combination (SHA-256 of the files' SHA-256s).
#[test]
fn linked_file_commands_fail_the_step_in_a_pod() {
    let test = "linked_file_commands_fail_the_step_in_a_pod";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let (output, stdout, stderr) = run_in_cluster(&kubeconfig, crate::file_command_links::WORKFLOW);
    crate::file_command_links::assert_links_refused(
        output.status.code(),
        &format!("{stdout}\n{stderr}"),
    );
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the job");
}

/// `runnel doctor` with a `kubernetes://` label: the API answers, the namespace exists (or
/// not) and the account's rights there, each missing verb named.
#[test]
fn doctor_checks_the_cluster_the_namespace_and_the_accounts_rights() {
    let test = "doctor_checks_the_cluster_the_namespace_and_the_accounts_rights";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let admin = kubeconfig.with_file_name("admin.kubeconfig");
    let cases: [(&Path, &str, &[&str]); 3] = [
        (
            &kubeconfig,
            "runnel-jobs",
            &[
                "ok    kubernetes    the API server answers (Kubernetes v1.",
                "namespace `runnel-jobs` exists",
                "ok    k8s access    the account may create pods, get pods, list pods, delete \
                 pods, create pods/exec, get pods/exec, get pods/log, patch \
                 pods/ephemeralcontainers in `runnel-jobs`",
            ],
        ),
        (
            &kubeconfig,
            "default",
            &[
                "ok    kubernetes    the API server answers",
                "FAIL  k8s access    the account may not do `create` on `pods`, `get` on `pods`, \
                 `list` on `pods`, `delete` on `pods`, `create` on `pods/exec`, `get` on \
                 `pods/exec`, `get` on `pods/log`, `patch` on `pods/ephemeralcontainers` in \
                 namespace `default`",
                "fix: bind the account to a Role in `default`",
            ],
        ),
        (
            &admin,
            "runnel-no-such-namespace",
            &[
                "FAIL  kubernetes    the API server answers (Kubernetes v1.",
                "but namespace `runnel-no-such-namespace` does not exist",
                "fix: kubectl create namespace runnel-no-such-namespace",
            ],
        ),
    ];
    for (config_file, namespace, expected) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "runner:\n  labels: [\"k8s:kubernetes://{IMAGE}\"]\nkubernetes:\n  kubeconfig: {}\n  \
             namespace: {namespace}\n",
            config_file.display()
        );
        std::fs::write(dir.path().join("config.yaml"), config).expect("write config");
        let output = Command::new(env!("CARGO_BIN_EXE_runnel"))
            .args(["doctor", "-c", "config.yaml"])
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run runnel doctor");
        let stdout = String::from_utf8_lossy(&output.stdout);
        // `.runner` is missing in every case: exit 1 whatever the cluster says.
        assert_eq!(output.status.code(), Some(1), "{namespace}:\n{stdout}");
        for line in expected {
            assert!(
                stdout.contains(line),
                "{namespace}: {line:?} missing:\n{stdout}"
            );
        }
    }
}

#[test]
fn hash_files_reads_the_pods_workspace() {
    let test = "hash_files_reads_the_pods_workspace";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let workflow = r#"on: push
jobs:
  pod:
    runs-on: linux
    steps:
      - run: |
          mkdir -p a/b
          printf one > a/x.txt
          printf two > a/b/x.txt
          ln -s /etc/passwd a/outside.txt
      - run: |
          echo "made: ${{ hashFiles('**/x.txt') }}"
          echo "tree: ${{ hashFiles('tree-file.txt', '!a/**') }}"
          echo "none: [${{ hashFiles('**/nothing-here') }}]"
          echo "outside: [${{ hashFiles('a/outside.txt') }}]"
"#;
    // Debian's GNU tools and busybox's (whose tar has no `-T`).
    for image in [IMAGE, "runnel-test/busybox:local"] {
        let (output, stdout, stderr) = run_in_cluster_on(&kubeconfig, image, workflow);
        let all = format!("{image}:\n{stdout}\n{stderr}");
        assert_eq!(output.status.code(), Some(0), "{all}");
        for expected in [
            // sha256(sha256("two") ‖ sha256("one")): a/b/x.txt comes before a/x.txt.
            "made: 0c7c01f86ff8722e93c1b9e7437ec11de17d63304f8bb22eec9e50b077f4754c",
            // sha256(sha256("from the tree")).
            "tree: c68b09f4173a3b7955b3dc5c10db0545184bde4614786cd6b9ad62ede309dcd3",
            "none: []",
            // A link leading out of the workspace counts as nothing.
            "outside: []",
        ] {
            assert!(all.contains(expected), "{expected:?} missing:\n{all}");
        }
    }
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the jobs");
}

/// `runnel daemon` against the real Gitea runs a `kubernetes://` label's job as a pod: env
/// files between steps, `hashFiles`, its log reported to Gitea, no pod left. (No service:
/// the task Gitea 1.26 sends has dropped a service's `entrypoint:`/`command:`, and no test
/// image serves anything without them.)
#[test]
fn the_daemon_runs_a_kubernetes_label_job_from_gitea() {
    let test = "the_daemon_runs_a_kubernetes_label_job_from_gitea";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let Some(gitea) = crate::daemon_gitea::gitea(test) else {
        return;
    };
    let runner = crate::daemon_gitea::register_with(
        gitea,
        "k8s",
        |l| format!("{l}:kubernetes://{IMAGE}"),
        &[],
    );
    runner.write_config(&format!(
        "kubernetes:\n  kubeconfig: {}\n",
        kubeconfig.display()
    ));
    let label = &runner.label;
    let jobs = format!(
        r#"  pod:
    runs-on: {label}
    steps:
      - run: printf one > x.txt
      - run: echo "CARRIED=over-env-file" >> "$GITHUB_ENV"
      - run: echo "env $CARRIED"
      - run: echo "hash ${{{{ hashFiles('x.txt') }}}}"
"#
    );
    gitea.push_workflow(label, &crate::daemon_gitea::workflow(label, &jobs));
    let daemon = runner.daemon(&["-c", "config.yaml", "--once"]);
    let status = runner.wait(daemon);
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = crate::daemon_gitea::completed_jobs(gitea, &runner, 1).remove(0);
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        job["conclusion"],
        "success",
        "{job}\n{lines:#?}\n{}",
        runner.daemon_log()
    );
    // sha256(sha256("one")).
    for expected in [
        "env over-env-file",
        "hash fe8d7a873dc48961a6af334c996b2cb3ce37149d5ce9c9253952a54c6a92c1ad",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}: {lines:#?}"
        );
    }
    assert_eq!(
        pods_left(&kubeconfig),
        "",
        "pods left after the daemon's job"
    );
}

/// The cache URL the job gets, fetched from inside the pod with bash's `/dev/tcp` (the image
/// has no HTTP client): a miss with an accepted token answers 204.
const CACHE_WORKFLOW: &str = r#"on: push
jobs:
  pod:
    runs-on: linux
    steps:
      - run: |
          echo "cache url: ${ACTIONS_CACHE_URL%/*/}"
          case "$ACTIONS_CACHE_URL" in http://127.0.0.1:*|"") echo "cache on loopback or missing" ;; esac
          url="${ACTIONS_CACHE_URL}_apis/artifactcache/cache?keys=k8s-key&version=1"
          rest="${url#http://}"; hostport="${rest%%/*}"; path="/${rest#*/}"
          exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
          printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
          echo "cache=$(head -n 1 <&3 | cut -d' ' -f2)"
          exec 3<&-
          case "$ACTIONS_RESULTS_URL" in "${ACTIONS_CACHE_URL%/*/}/") echo "artifacts at the same origin" ;; esac
        shell: bash
"#;

#[test]
fn a_pod_on_this_machines_node_reaches_the_cache_server() {
    let test = "a_pod_on_this_machines_node_reaches_the_cache_server";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let (output, stdout, stderr) = run_in_cluster_with(&kubeconfig, IMAGE, CACHE_WORKFLOW, &[]);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(0), "{all}");
    let node = kubectl(
        &kubeconfig,
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[0].status.addresses[?(@.type==\"InternalIP\")].address}",
        ],
    );
    for expected in [
        format!("cache url: http://{node}:"),
        "cache=204".to_owned(),
        "artifacts at the same origin".to_owned(),
    ] {
        assert!(all.contains(&expected), "{expected:?} missing:\n{all}");
    }
    assert!(!all.contains("cache on loopback or missing"), "{all}");
    assert!(!all.contains("unavailable to this job"), "{all}");
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the job");
}

/// The `actions/cache` stand-in (`cache_action.rs`) in a pod: run 1 saves, run 2 misses its
/// key and restores the restore key's entry, then saves its own. Cache v1: the image's node
/// 18 lacks the global `crypto` the v2 upload needs.
#[test]
fn actions_cache_saves_and_restores_in_a_pod() {
    let test = "actions_cache_saves_and_restores_in_a_pod";
    if !crate::cache_support::slow_or_skip(test, crate::cache_action::NEEDS) {
        return;
    }
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let mut project = crate::cache_action::Project::new("\n  ACTIONS_CACHE_SERVICE_V2: \"\"");
    project
        .env
        .push(("KUBECONFIG".to_owned(), kubeconfig.display().to_string()));
    let label = format!("ubuntu-latest=kubernetes://{IMAGE}");
    crate::cache_action::save_fall_back_and_hit(&project, &["-P", &label], "", false);
    assert_eq!(pods_left(&kubeconfig), "", "pods left after the jobs");
}
