//! The runner itself in the cluster (slow: `RUN_SLOW_TESTS=1`, the test cluster of
//! `tests/k8s` and the real Gitea): the container image built from the test binary
//! (`packaging/container/build.sh`) is imported into the cluster's containerd, the manifests of
//! `packaging/k8s` are applied through kustomize with this test's namespaces, image, Gitea and
//! label put in, and the StatefulSet's replica registers from the Secret, takes a
//! `kubernetes://` job from Gitea and runs it as a pod through its service account
//! (in-cluster configuration), a container step included (the packaged Role's `patch` on
//! `pods/ephemeralcontainers`); no job pod is left. Then the replica is killed mid-job: its
//! replacement (same name, same registration, new pod uid) removes the job pod it left.
//!
//! The cluster facts the manifests are adapted to, and the clean-up: [`crate::k8s_install`].

use std::process::Command;
use std::time::Duration;

use crate::daemon_gitea::gitea;
use crate::k8s_install::{InCluster, Setup, wait_for};
use crate::run::write_workflow;
use crate::run_kubernetes::{cluster_or_skip, hold_cluster};
use crate::support::repo_root;

#[test]
fn the_runner_as_a_statefulset_runs_a_job_in_its_cluster_and_cleans_up_after_a_restart() {
    let test =
        "the_runner_as_a_statefulset_runs_a_job_in_its_cluster_and_cleans_up_after_a_restart";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let Some(gitea) = gitea(test) else {
        return;
    };
    let installed = InCluster::install(
        &kubeconfig,
        gitea,
        Setup {
            prefix: "rk",
            label_prefix: "k8s-in-cluster",
            replicas: 1,
            capacity: None,
            shutdown_timeout: None,
            s3: None,
        },
    );
    let label = installed.label.as_str();
    let logs = || installed.logs("runnel-0");
    // The replica registers from the Secret into its volume.
    let id = installed.registration(0);
    let runner_uid =
        installed.kubectl(&["get", "pod", "runnel-0", "-o", "jsonpath={.metadata.uid}"]);

    // A job: a pod of the job namespace made by this replica (its labels say so).
    gitea.push_named_job(
        &format!("{label}-ok"),
        label,
        "      - run: echo \"job in $(hostname) on $(cat /etc/debian_version | cut -c1-2)\"; sleep 3\n\
         \x20     - uses: docker://runnel-test/busybox:local\n\
         \x20       with:\n\
         \x20         entrypoint: sh\n\
         \x20         args: -c \"echo step-container-$((6*7)) in $(pwd)\"\n",
    );
    let selector = format!("runnel.runner-pod=runnel-0,runnel.runner-pod-uid={runner_uid}");
    let seen = wait_for(Duration::from_secs(120), || {
        let names = installed.job_pods(Some(&selector));
        (!names.is_empty()).then_some(names)
    });
    let job = gitea.completed_job(id, &logs);
    assert!(
        seen.is_some(),
        "no job pod labelled as this replica's was seen:\n{}",
        logs()
    );
    let text = gitea.log_text(&job);
    assert_eq!(job["conclusion"], "success", "{job}\n{text}\n{}", logs());
    assert!(text.contains("job in runnel-"), "{text}");
    assert!(text.contains("on 12"), "{text}");
    // A container step: the packaged Role lets the runner add it to the job's pod.
    assert!(
        text.contains("step-container-42 in /github/workspace"),
        "{text}"
    );
    let left = wait_for(Duration::from_secs(30), || {
        installed.job_pods(None).is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "job pods left: {}",
        installed.kubectl_any(&["-n", &installed.jobs, "get", "pods"])
    );

    // The replica dies mid-job: its replacement (same registration, new uid) removes the pod.
    gitea.push_named_job(&format!("{label}-long"), label, "      - run: sleep 600\n");
    let orphan = wait_for(Duration::from_secs(120), || {
        let names = installed.job_pods(Some(&selector));
        (!names.is_empty()).then_some(names)
    })
    .unwrap_or_else(|| panic!("the long job's pod did not start:\n{}", logs()));
    // Killed outright first (no SIGTERM, so nothing of the old replica's own clean-up can
    // run), then its pod deleted at once: only the replacement can remove the job pod.
    assert!(installed.kill_runner("runnel-0") > 0, "{}", logs());
    installed.kubectl(&["delete", "pod", "runnel-0", "--grace-period=0", "--force"]);
    let replaced = wait_for(Duration::from_secs(120), || {
        let uid = installed.pod_uid("runnel-0");
        (!uid.is_empty() && !uid.contains("NotFound") && uid != runner_uid).then_some(uid)
    });
    assert!(replaced.is_some(), "no replacement replica:\n{}", logs());
    let gone = wait_for(Duration::from_secs(120), || {
        (!installed.job_pods(None).contains(orphan.trim())).then_some(())
    });
    assert!(
        gone.is_some(),
        "the replacement did not remove {orphan}:\n{}",
        logs()
    );
    let said = wait_for(Duration::from_secs(30), || {
        logs()
            .contains("removed a job pod left by an earlier run of this runner")
            .then_some(())
    });
    assert!(said.is_some(), "{}", logs());

    // Deleting the StatefulSet stops the replica (SIGTERM, drained).
    installed.kubectl(&[
        "delete",
        "statefulset",
        "runnel",
        "--wait=true",
        "--timeout=90s",
    ]);
}

/// Without any client configuration (no kubeconfig in config.yaml, no `KUBECONFIG`, no
/// `~/.kube/config`, not in a pod) a `kubernetes://` job fails saying every place looked at.
#[test]
fn a_kubernetes_job_without_any_client_configuration_says_where_it_looked() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  pod:\n    runs-on: linux\n    steps:\n      - run: echo never\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args([
            "run",
            "--no-cache-server",
            "-P",
            "linux=kubernetes://busybox:1",
        ])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".xdg-cache"))
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("NO_COLOR", "1")
        .output()
        .expect("run runnel");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{all}");
    for named in [
        "no Kubernetes client configuration",
        "kubernetes.kubeconfig",
        "KUBECONFIG",
        "~/.kube/config",
        "KUBERNETES_SERVICE_HOST",
    ] {
        assert!(all.contains(named), "{named} missing:\n{all}");
    }
    assert!(!all.contains("never"), "{all}");
}

/// The manifests as shipped: kustomize lists every one, nothing is cluster-wide, and the
/// grace period outlasts the drain.
#[test]
fn the_shipped_manifests_are_listed_namespaced_and_drain_in_time() {
    let dir = repo_root().join("packaging/k8s");
    let kustomization =
        std::fs::read_to_string(dir.join("kustomization.yaml")).expect("kustomization.yaml");
    for entry in std::fs::read_dir(&dir).expect("packaging/k8s") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("read a manifest");
        assert!(
            !text.contains("ClusterRole"),
            "{name} asks for cluster-wide rights"
        );
        if name != "kustomization.yaml" {
            assert!(
                kustomization.contains(&format!("  - {name}\n")),
                "kustomization.yaml does not list {name}"
            );
        }
    }
    let number_after = |file: &str, key: &str| -> u64 {
        let text = std::fs::read_to_string(dir.join(file)).expect("read a manifest");
        let value = text
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("{file} has no {key}"));
        value
            .trim()
            .trim_end_matches('m')
            .parse()
            .unwrap_or_else(|e| panic!("{file}: {key} {value}: {e}"))
    };
    let grace = number_after("statefulset.yaml", "terminationGracePeriodSeconds:");
    let drain_minutes = number_after("config.yaml", "shutdown_timeout:");
    assert!(
        grace >= drain_minutes * 60 + 120,
        "terminationGracePeriodSeconds {grace} leaves the last reports no time after \
         shutdown_timeout {drain_minutes}m"
    );
}
