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
//! Facts of the test cluster the test adapts the manifests to: the API server listens on
//! 127.0.0.1 only and there is no kube-proxy, so the runner pod uses the host's network and
//! `KUBERNETES_SERVICE_HOST`/`_PORT` name the API server there; there is no volume
//! provisioner, so a `hostPath` volume is bound to the replica's claim by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon_gitea::{gitea, unique};
use crate::run_kubernetes::{cluster_or_skip, hold_cluster, kubectl};
use crate::support::repo_root;

const RUNNER_IMAGE: &str = "runnel-test/runnel:k8s-e2e";
const JOB_IMAGE: &str = "runnel-test/debian:bookworm";

/// Deletes the test's namespaces and volume, however the test ends.
struct Installed {
    kubeconfig: PathBuf,
    namespace: String,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let state = self.kubeconfig.parent().expect("state directory");
        let admin = state.join("admin.kubeconfig");
        for args in [
            vec!["delete", "namespace", &self.namespace, "--wait=false"],
            vec![
                "delete",
                "namespace",
                &format!("{}-jobs", self.namespace),
                "--wait=false",
            ],
            vec![
                "delete",
                "pv",
                &format!("{}-data", self.namespace),
                "--wait=false",
            ],
        ] {
            let _ = Command::new(state.join("bin/kubectl"))
                .arg("--kubeconfig")
                .arg(&admin)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // The image goes too (the machine's disk is shared; the next run imports it again).
        let _ = Command::new("ctr")
            .arg("--address")
            .arg(state.join("containerd/containerd.sock"))
            .args(["-n", "k8s.io", "images", "rm"])
            .arg(format!("docker.io/{RUNNER_IMAGE}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `kubectl` as the admin, its output whatever its status.
fn kubectl_any(kubeconfig: &Path, args: &[&str]) -> String {
    let state = kubeconfig.parent().expect("state directory");
    let output = Command::new(state.join("bin/kubectl"))
        .arg("--kubeconfig")
        .arg(state.join("admin.kubeconfig"))
        .args(args)
        .output()
        .expect("run kubectl");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The runner image from the test binary (without its debug information: a tenth of the
/// size), imported into the cluster's containerd; removed from Docker afterwards.
fn build_and_import(kubeconfig: &Path) {
    let binary = tempfile::tempdir().expect("binary directory");
    let stripped = binary.path().join("runnel");
    let strip = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(env!("CARGO_BIN_EXE_runnel"))
        .status()
        .expect("run strip");
    assert!(strip.success(), "strip --strip-debug failed");
    let built = Command::new("bash")
        .arg(repo_root().join("packaging/container/build.sh"))
        .arg("--binary")
        .arg(&stripped)
        .args(["--tag", RUNNER_IMAGE])
        .output()
        .expect("run packaging/container/build.sh");
    assert!(
        built.status.success(),
        "packaging/container/build.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let socket = kubeconfig
        .parent()
        .expect("state directory")
        .join("containerd/containerd.sock");
    let import = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; docker save {RUNNER_IMAGE} | ctr --address {} -n k8s.io images import -",
            socket.display()
        ))
        .output()
        .expect("import the image");
    assert!(
        import.status.success(),
        "importing {RUNNER_IMAGE}: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let _ = Command::new("docker")
        .args(["rmi", RUNNER_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `https://127.0.0.1:PORT` of the runner's kubeconfig: its port.
fn api_port(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).expect("read the kubeconfig");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("server: https://127.0.0.1:"))
        .expect("the API server's port")
        .to_owned()
}

/// `packaging/k8s` with the test's namespaces, image, Gitea, label and cluster facts put in,
/// and a volume for the replica, written into `dir`.
fn render(
    dir: &Path,
    namespace: &str,
    data: &Path,
    gitea_url: &str,
    token: &str,
    label: &str,
    port: &str,
) {
    let source = repo_root().join("packaging/k8s");
    let jobs = format!("{namespace}-jobs");
    for entry in std::fs::read_dir(&source).expect("packaging/k8s") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let mut text = std::fs::read_to_string(&path).expect("read a manifest");
        text = text
            .replace("runnel-jobs", &jobs)
            .replace("namespace: runnel\n", &format!("namespace: {namespace}\n"));
        match name.as_str() {
            "namespace.yaml" => {
                text = text.replace("  name: runnel\n", &format!("  name: {namespace}\n"));
            }
            "kustomization.yaml" => text.push_str("  - volume.yaml\n"),
            "secret.yaml" => {
                text = text
                    .replace("https://gitea.example.com", gitea_url)
                    .replace("REPLACE-WITH-A-REGISTRATION-TOKEN", token);
            }
            "config.yaml" => {
                text = text
                    .replace(
                        "\"ubuntu-latest:kubernetes://node:20-bookworm\"",
                        &format!("\"{label}:kubernetes://{JOB_IMAGE}\""),
                    )
                    .replace("{cpu: 500m, memory: 512Mi}", "{cpu: 10m}");
            }
            "statefulset.yaml" => {
                text = text
                    .replace("image: runnel:0.1.0", &format!("image: {RUNNER_IMAGE}"))
                    .replace(
                        "      serviceAccountName: runnel\n",
                        "      serviceAccountName: runnel\n      hostNetwork: true\n",
                    )
                    .replace(
                        "          env:\n",
                        &format!(
                            "          env:\n            - {{name: KUBERNETES_SERVICE_HOST, value: 127.0.0.1}}\n            \
                             - {{name: KUBERNETES_SERVICE_PORT, value: \"{port}\"}}\n"
                        ),
                    )
                    .replace("requests: {cpu: 100m, memory: 128Mi}", "requests: {cpu: 10m}");
            }
            _ => {}
        }
        assert!(
            !text.contains("namespace: runnel\n") && !text.contains("runnel-jobs"),
            "{name} still names the shipped namespaces:\n{text}"
        );
        std::fs::write(dir.join(&name), text).expect("write a manifest");
    }
    let volume = format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {namespace}-data}}\nspec:\n  \
         capacity: {{storage: 2Gi}}\n  accessModes: [ReadWriteOnce]\n  \
         persistentVolumeReclaimPolicy: Retain\n  \
         claimRef: {{namespace: {namespace}, name: data-runnel-0}}\n  \
         hostPath: {{path: {}, type: Directory}}\n",
        data.display()
    );
    std::fs::write(dir.join("volume.yaml"), volume).expect("write the volume");
}

/// Waits up to `limit` for `check`; `None` on timeout.
fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(found) = check() {
            return Some(found);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}

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
    build_and_import(&kubeconfig);
    let namespace = unique("rk");
    let jobs = format!("{namespace}-jobs");
    let label = unique("k8s-in-cluster");
    let data = tempfile::tempdir().expect("data directory");
    let overlay = tempfile::tempdir().expect("overlay directory");
    render(
        overlay.path(),
        &namespace,
        data.path(),
        &gitea.url,
        &gitea.registration_token,
        &label,
        &api_port(&kubeconfig),
    );
    let _installed = Installed {
        kubeconfig: kubeconfig.clone(),
        namespace: namespace.clone(),
    };
    let overlay_dir = overlay.path().to_str().expect("utf-8 path");
    kubectl(&kubeconfig, &["apply", "-k", overlay_dir]);
    // The replica's log, its previous container's first (a replacement that started while
    // the old one still held the host network's ports may have restarted once).
    let logs = || {
        format!(
            "{}\n{}\n{}",
            kubectl_any(
                &kubeconfig,
                &[
                    "-n",
                    &namespace,
                    "logs",
                    "runnel-0",
                    "--all-containers",
                    "--previous"
                ]
            ),
            kubectl_any(
                &kubeconfig,
                &["-n", &namespace, "logs", "runnel-0", "--all-containers"]
            ),
            kubectl_any(
                &kubeconfig,
                &["-n", &namespace, "describe", "pod", "runnel-0"]
            )
        )
    };
    // The replica registers from the Secret into its volume.
    let id = wait_for(Duration::from_secs(120), || {
        let text = std::fs::read_to_string(data.path().join(".runner")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?["id"].as_i64()
    })
    .unwrap_or_else(|| panic!("the replica did not register:\n{}", logs()));
    let runner_uid = kubectl(
        &kubeconfig,
        &[
            "-n",
            &namespace,
            "get",
            "pod",
            "runnel-0",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );

    // A job: a pod of the job namespace made by this replica (its labels say so).
    gitea.push_named_job(
        &format!("{label}-ok"),
        &label,
        "      - run: echo \"job in $(hostname) on $(cat /etc/debian_version | cut -c1-2)\"; sleep 3\n\
         \x20     - uses: docker://runnel-test/busybox:local\n\
         \x20       with:\n\
         \x20         entrypoint: sh\n\
         \x20         args: -c \"echo step-container-$((6*7)) in $(pwd)\"\n",
    );
    let selector = format!("runnel.runner-pod=runnel-0,runnel.runner-pod-uid={runner_uid}");
    let seen = wait_for(Duration::from_secs(120), || {
        let names = kubectl(
            &kubeconfig,
            &["-n", &jobs, "get", "pods", "-l", &selector, "-o", "name"],
        );
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
        let names = kubectl(&kubeconfig, &["-n", &jobs, "get", "pods", "-o", "name"]);
        names.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "job pods left: {}",
        kubectl_any(&kubeconfig, &["-n", &jobs, "get", "pods"])
    );

    // The replica dies mid-job: its replacement (same registration, new uid) removes the pod.
    gitea.push_named_job(&format!("{label}-long"), &label, "      - run: sleep 600\n");
    let orphan = wait_for(Duration::from_secs(120), || {
        let names = kubectl(
            &kubeconfig,
            &["-n", &jobs, "get", "pods", "-l", &selector, "-o", "name"],
        );
        (!names.is_empty()).then_some(names)
    })
    .unwrap_or_else(|| panic!("the long job's pod did not start:\n{}", logs()));
    // Killed outright first (no SIGTERM, so nothing of the old replica's own clean-up can
    // run), then its pod deleted at once: only the replacement can remove the job pod.
    kubectl_any(
        &kubeconfig,
        &[
            "-n",
            &namespace,
            "exec",
            "runnel-0",
            "-c",
            "runner",
            "--",
            "/bin/sh",
            "-c",
            "kill -KILL -1",
        ],
    );
    kubectl(
        &kubeconfig,
        &[
            "-n",
            &namespace,
            "delete",
            "pod",
            "runnel-0",
            "--grace-period=0",
            "--force",
        ],
    );
    let replaced = wait_for(Duration::from_secs(120), || {
        let uid = kubectl_any(
            &kubeconfig,
            &[
                "-n",
                &namespace,
                "get",
                "pod",
                "runnel-0",
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        );
        (!uid.is_empty() && !uid.contains("NotFound") && uid != runner_uid).then_some(uid)
    });
    assert!(replaced.is_some(), "no replacement replica:\n{}", logs());
    let gone = wait_for(Duration::from_secs(120), || {
        let names = kubectl(&kubeconfig, &["-n", &jobs, "get", "pods", "-o", "name"]);
        (!names.contains(orphan.trim())).then_some(())
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
    kubectl(
        &kubeconfig,
        &[
            "-n",
            &namespace,
            "delete",
            "statefulset",
            "runnel",
            "--wait=true",
            "--timeout=90s",
        ],
    );
}

/// Without any client configuration (no kubeconfig in config.yaml, no `KUBECONFIG`, no
/// `~/.kube/config`, not in a pod) a `kubernetes://` job fails saying every place looked at.
#[test]
fn a_kubernetes_job_without_any_client_configuration_says_where_it_looked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(
        workflows.join("ci.yml"),
        "on: push\njobs:\n  pod:\n    runs-on: linux\n    steps:\n      - run: echo never\n",
    )
    .expect("write workflow");
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
