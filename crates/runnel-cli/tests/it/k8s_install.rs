//! The runner installed in the test cluster from `packaging/k8s`, for the tests of the runner
//! in the cluster (`k8s_runner`, `k8s_runner_fleet`): the container image built from the test
//! binary (`packaging/container/build.sh`, tagged per install so that tests running at the
//! same time in other processes never remove each other's image) and imported into the
//! cluster's containerd, the manifests rendered with the install's namespaces, image, Gitea,
//! label, replica count, capacity and S3 cache put in, applied through kustomize, and all of
//! it removed on drop (namespaces, volumes, image, the replicas' runners in Gitea).
//!
//! Facts of the test cluster the manifests are adapted to: the API server listens on
//! 127.0.0.1 only and there is no kube-proxy, so the runner pods use the host's network and
//! `KUBERNETES_SERVICE_HOST`/`_PORT` name the API server there (the S3 server and Gitea,
//! on 127.0.0.1 too, are reached the same way); there is no volume provisioner, so a
//! `hostPath` volume is bound to each replica's claim by hand.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon_gitea::{Gitea, unique};
use crate::run_kubernetes::kubectl;
use crate::support::repo_root;

/// The image of job pods.
pub(crate) const JOB_IMAGE: &str = "runnel-test/debian:bookworm";

/// The bucket the replicas share, with its keys (for the `runnel-cache-s3` Secret).
pub(crate) struct S3Target {
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
}

/// What to install: `replicas` runners taking `label` (mapped to `kubernetes://JOB_IMAGE`),
/// `capacity` jobs each, the shipped cache or `s3`.
pub(crate) struct Setup {
    pub(crate) prefix: &'static str,
    pub(crate) label_prefix: &'static str,
    pub(crate) replicas: usize,
    pub(crate) capacity: Option<u32>,
    /// `runner.shutdown_timeout` (`None`: the shipped value).
    pub(crate) shutdown_timeout: Option<&'static str>,
    pub(crate) s3: Option<S3Target>,
}

/// The installed runners; everything goes on drop.
pub(crate) struct InCluster {
    pub(crate) kubeconfig: std::path::PathBuf,
    /// The runner's namespace; job pods run in `<namespace>-jobs`.
    pub(crate) namespace: String,
    pub(crate) jobs: String,
    pub(crate) label: String,
    image: String,
    gitea: &'static Gitea,
    /// Each replica's volume (`/data`: its `.runner`, config and cache).
    data: Vec<tempfile::TempDir>,
    _overlay: tempfile::TempDir,
}

impl InCluster {
    /// Builds and imports the image, renders `packaging/k8s` for `setup` and applies it.
    pub(crate) fn install(kubeconfig: &Path, gitea: &'static Gitea, setup: Setup) -> InCluster {
        let namespace = unique(setup.prefix);
        let image = format!("runnel-test/runnel:{namespace}");
        let data = (0..setup.replicas)
            .map(|_| tempfile::tempdir().expect("data directory"))
            .collect();
        let overlay = tempfile::tempdir().expect("overlay directory");
        let installed = InCluster {
            kubeconfig: kubeconfig.to_owned(),
            jobs: format!("{namespace}-jobs"),
            namespace,
            label: unique(setup.label_prefix),
            image,
            gitea,
            data,
            _overlay: overlay,
        };
        build_and_import(kubeconfig, &installed.image);
        installed.render(installed._overlay.path(), &setup);
        let dir = installed._overlay.path().to_str().expect("utf-8 path");
        kubectl(kubeconfig, &["apply", "-k", dir]);
        installed
    }

    /// `kubectl` as the admin, its output whatever its status.
    pub(crate) fn kubectl_any(&self, args: &[&str]) -> String {
        kubectl_any(&self.kubeconfig, args)
    }

    /// `kubectl -n <namespace> ARGS` as the admin; panics when it fails.
    pub(crate) fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.namespace];
        all.extend_from_slice(args);
        kubectl(&self.kubeconfig, &all)
    }

    /// Replica `pod`'s log, its previous container's first (a replacement that started while
    /// the old one still held the host network's ports may have restarted once), and its
    /// description.
    pub(crate) fn logs(&self, pod: &str) -> String {
        let ns = self.namespace.as_str();
        format!(
            "{}\n{}\n{}",
            self.kubectl_any(&["-n", ns, "logs", pod, "--all-containers", "--previous"]),
            self.kubectl_any(&["-n", ns, "logs", pod, "--all-containers"]),
            self.kubectl_any(&["-n", ns, "describe", "pod", pod])
        )
    }

    /// Every replica's [`logs`](Self::logs).
    pub(crate) fn all_logs(&self) -> String {
        (0..self.data.len())
            .map(|i| format!("=== runnel-{i}\n{}", self.logs(&format!("runnel-{i}"))))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The Gitea id of replica `index`, once it registered from the Secret into its volume.
    pub(crate) fn registration(&self, index: usize) -> i64 {
        wait_for(Duration::from_secs(120), || self.registered(index)).unwrap_or_else(|| {
            panic!(
                "replica {index} did not register:\n{}",
                self.logs(&format!("runnel-{index}"))
            )
        })
    }

    fn registered(&self, index: usize) -> Option<i64> {
        let text = std::fs::read_to_string(self.data[index].path().join(".runner")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?["id"].as_i64()
    }

    /// SIGKILLs every process of pod `pod`'s `runner` container from this machine (the test
    /// cluster's only node). From inside the container it cannot be done: the runner is its
    /// PID 1, which ignores SIGKILL sent within its namespace. Returns how many were killed.
    pub(crate) fn kill_runner(&self, pod: &str) -> usize {
        let id = self.kubectl(&[
            "-n",
            &self.namespace,
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.containerStatuses[?(@.name==\"runner\")].containerID}",
        ]);
        let id = id.trim().trim_start_matches("containerd://").to_owned();
        assert!(id.len() >= 12, "no container id for {pod}: {id:?}");
        let mut killed = 0;
        for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
            if cgroup.contains(&id)
                && Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .is_ok_and(|status| status.success())
            {
                killed += 1;
            }
        }
        killed
    }

    /// The uid of pod `pod` of the runner's namespace (empty or an error text when it has none).
    pub(crate) fn pod_uid(&self, pod: &str) -> String {
        self.kubectl_any(&[
            "-n",
            &self.namespace,
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
    }

    /// Names of the job namespace's pods matching `selector` (all with `None`).
    pub(crate) fn job_pods(&self, selector: Option<&str>) -> String {
        let mut args = vec!["-n", &self.jobs, "get", "pods", "-o", "name"];
        if let Some(selector) = selector {
            args.extend(["-l", selector]);
        }
        kubectl(&self.kubeconfig, &args)
    }

    /// `packaging/k8s` with this install's names, image, Gitea, label, cluster facts and
    /// `setup` put in, and a volume per replica, written into `dir`.
    fn render(&self, dir: &Path, setup: &Setup) {
        let source = repo_root().join("packaging/k8s");
        let (namespace, jobs) = (&self.namespace, &self.jobs);
        let port = api_port(&self.kubeconfig);
        for entry in std::fs::read_dir(&source).expect("packaging/k8s") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            let mut text = std::fs::read_to_string(&path).expect("read a manifest");
            text = text
                .replace("runnel-jobs", jobs)
                .replace("namespace: runnel\n", &format!("namespace: {namespace}\n"));
            match name.as_str() {
                "namespace.yaml" => {
                    text = text.replace("  name: runnel\n", &format!("  name: {namespace}\n"));
                }
                "kustomization.yaml" => {
                    text.push_str("  - volume.yaml\n");
                    if setup.s3.is_some() {
                        text.push_str("  - cache-s3.yaml\n");
                    }
                }
                "secret.yaml" => {
                    text = text
                        .replace("https://gitea.example.com", &self.gitea.url)
                        .replace(
                            "REPLACE-WITH-A-REGISTRATION-TOKEN",
                            &self.gitea.registration_token,
                        );
                }
                "config.yaml" => {
                    text = replaced(
                        &text,
                        "\"ubuntu-latest:kubernetes://node:20-bookworm\"",
                        &format!("\"{}:kubernetes://{JOB_IMAGE}\"", self.label),
                    );
                    text = replaced(&text, "{cpu: 500m, memory: 512Mi}", "{cpu: 10m}");
                    if let Some(capacity) = setup.capacity {
                        text = replaced(&text, "capacity: 2\n", &format!("capacity: {capacity}\n"));
                    }
                    if let Some(timeout) = setup.shutdown_timeout {
                        text = replaced(
                            &text,
                            "shutdown_timeout: 55m\n",
                            &format!("shutdown_timeout: {timeout}\n"),
                        );
                    }
                    if let Some(s3) = &setup.s3 {
                        text = replaced(
                            &text,
                            "endpoint: ''\n",
                            &format!("endpoint: {}\n", s3.endpoint),
                        );
                        text = replaced(&text, "bucket: ''\n", &format!("bucket: {}\n", s3.bucket));
                        text = replaced(&text, "prefix: ''\n", &format!("prefix: {}\n", s3.prefix));
                    }
                }
                "statefulset.yaml" => {
                    text = replaced(
                        &text,
                        "image: runnel:0.1.0",
                        &format!("image: {}", self.image),
                    );
                    text = replaced(
                        &text,
                        "  replicas: 1\n",
                        &format!("  replicas: {}\n", setup.replicas),
                    );
                    text = replaced(
                        &text,
                        "      serviceAccountName: runnel\n",
                        "      serviceAccountName: runnel\n      hostNetwork: true\n",
                    );
                    text = replaced(
                        &text,
                        "          env:\n",
                        &format!(
                            "          env:\n            - {{name: KUBERNETES_SERVICE_HOST, value: 127.0.0.1}}\n            \
                             - {{name: KUBERNETES_SERVICE_PORT, value: \"{port}\"}}\n"
                        ),
                    );
                    text = replaced(
                        &text,
                        "requests: {cpu: 100m, memory: 128Mi}",
                        "requests: {cpu: 10m}",
                    );
                }
                _ => {}
            }
            assert!(
                !text.contains("namespace: runnel\n") && !text.contains("runnel-jobs"),
                "{name} still names the shipped namespaces:\n{text}"
            );
            std::fs::write(dir.join(&name), text).expect("write a manifest");
        }
        let volumes: Vec<String> = self
            .data
            .iter()
            .enumerate()
            .map(|(i, data)| {
                format!(
                    "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {namespace}-data-{i}}}\nspec:\n  \
                     capacity: {{storage: 2Gi}}\n  accessModes: [ReadWriteOnce]\n  \
                     persistentVolumeReclaimPolicy: Retain\n  \
                     claimRef: {{namespace: {namespace}, name: data-runnel-{i}}}\n  \
                     hostPath: {{path: {}, type: Directory}}\n",
                    data.path().display()
                )
            })
            .collect();
        std::fs::write(dir.join("volume.yaml"), volumes.join("---\n")).expect("write the volumes");
        if let Some(s3) = &setup.s3 {
            // As docs/operators.md tells operators to create it.
            let secret = format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: runnel-cache-s3, namespace: {namespace}}}\n\
                 type: Opaque\nstringData:\n  AWS_ACCESS_KEY_ID: {}\n  AWS_SECRET_ACCESS_KEY: {}\n",
                s3.access_key, s3.secret_key
            );
            std::fs::write(dir.join("cache-s3.yaml"), secret).expect("write the S3 secret");
        }
    }
}

/// `text` with `from` replaced by `to`; panics when the shipped manifest no longer has `from`
/// (the test would silently deploy something else).
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the manifest no longer has {from:?}:\n{text}"
    );
    text.replace(from, to)
}

impl Drop for InCluster {
    fn drop(&mut self) {
        let ids: Vec<i64> = (0..self.data.len())
            .filter_map(|i| self.registered(i))
            .collect();
        let mut deletions = vec![
            vec![
                "delete".to_owned(),
                "namespace".to_owned(),
                self.namespace.clone(),
                "--wait=false".to_owned(),
            ],
            vec![
                "delete".to_owned(),
                "namespace".to_owned(),
                self.jobs.clone(),
                "--wait=false".to_owned(),
            ],
        ];
        for i in 0..self.data.len() {
            deletions.push(vec![
                "delete".to_owned(),
                "pv".to_owned(),
                format!("{}-data-{i}", self.namespace),
                "--wait=false".to_owned(),
            ]);
        }
        let state = self.kubeconfig.parent().expect("state directory");
        for args in deletions {
            let _ = Command::new(state.join("bin/kubectl"))
                .arg("--kubeconfig")
                .arg(state.join("admin.kubeconfig"))
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
            .arg(format!("docker.io/{}", self.image))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // The replicas' registrations (Gitea would list them as offline runners for good).
        for id in ids {
            let _ = self
                .gitea
                .api("DELETE", &format!("/admin/actions/runners/{id}"), None);
        }
    }
}

/// `kubectl` as the admin, its output whatever its status.
pub(crate) fn kubectl_any(kubeconfig: &Path, args: &[&str]) -> String {
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

/// The runner image `tag` from the test binary (without its debug information: a tenth of
/// the size), imported into the cluster's containerd; removed from Docker afterwards.
fn build_and_import(kubeconfig: &Path, tag: &str) {
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
        .args(["--tag", tag])
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
            "set -o pipefail; docker save {tag} | ctr --address {} -n k8s.io images import -",
            socket.display()
        ))
        .output()
        .expect("import the image");
    assert!(
        import.status.success(),
        "importing {tag}: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let _ = Command::new("docker")
        .args(["rmi", tag])
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

/// Waits up to `limit` for `check`; `None` on timeout.
pub(crate) fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(found) = check() {
            return Some(found);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}
