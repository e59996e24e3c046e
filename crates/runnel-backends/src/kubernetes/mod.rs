//! The Kubernetes backend (kube-rs): a job is a pod in a configured namespace, its steps run
//! through the exec API.
//!
//! Layout of one job: a pod (`pod`) whose container `job` runs the job's image, kept alive
//! by a `sleep` loop, with `/__w` (workspace, temp, tool cache) and `HOME` on `emptyDir`
//! volumes; each service is a sidecar container of the same pod (`services`), reachable on
//! `localhost` and by its id, waited for until it runs or passes its health check. Steps, scripts and file commands go through exec (`exec`): output streamed, the
//! exit code from the status channel, env and working directory set per process, files moved
//! with `cat`; a step that times out or is cancelled is killed inside the pod. `runnel run`'s
//! working tree is copied in as a tar through exec. The pod is deleted at teardown, on every
//! outcome; pods of earlier runs of the same runner (its registration) that died are deleted
//! at start (`leftovers`).
//!
//! The client configuration comes from config.yaml's kubeconfig, `KUBECONFIG`,
//! `~/.kube/config` or, in a pod, the service account (`client`).
//!
//! Errors name what failed: the verb and resource RBAC refused, the scheduler's reason for an
//! unschedulable pod, an image that cannot be pulled (`error`).
//!
//! `hashFiles` reads the pod's workspace through exec (`workspace`).
//!
//! The runner's cache and artifact server: a pod whose node is this machine reaches it at
//! the node's address; a pod elsewhere is reported unable to (`host`).
//!
//! The operator's config shapes the pod: the job container's resources, node selector,
//! tolerations, image pull secrets, service account (its token mounted only when asked).
//!
//! Container steps (`docker://` images, docker actions with a prebuilt image) are ephemeral
//! containers of the job's pod, killed through the job container when their time is up
//! (`step_container`); a `Dockerfile` action cannot be built in the cluster.
//!
//! Must not: parse workflows or evaluate expressions; it gets plain `JobSpec`s.

mod access;
mod client;
mod environment;
mod error;
mod exec;
mod host;
mod job_container;
mod leftovers;
mod pod;
mod services;
mod step_container;
mod workspace;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use runnel_engine::backend::{
    Backend, BackendError, EnvironmentInfo, EnvironmentPaths, JobEnvironment, JobSpec,
};
use tokio_util::sync::CancellationToken;

pub use access::{AccessReport, NamespaceState, Permission};
pub use error::KubeError;
pub use leftovers::RunnerRegistration;

use environment::KubernetesEnvironment;
use exec::PodExec;

/// Where the backend finds its cluster and what its pods look like.
#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    /// A kubeconfig file; `None`: `KUBECONFIG`, `~/.kube/config`, or the in-cluster account.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; `None`: its current context.
    pub context: Option<String>,
    /// Use the pod's service account (the runner runs in the cluster), ignoring kubeconfigs.
    pub in_cluster: bool,
    /// The namespace of job pods; `None`: the kubeconfig context's (or the runner pod's own).
    pub namespace_override: Option<String>,
    /// Set from `namespace_override` or the client configuration at connect.
    pub namespace: String,
    /// The job container's `imagePullPolicy`; `None`: Kubernetes' default (`Always` for
    /// `:latest`, else `IfNotPresent`).
    pub pull_policy: Option<String>,
    /// How long a pod may take to be scheduled and to start its job container.
    pub pod_start_timeout: Duration,
    /// The job container's resource requests (`cpu` → `500m`).
    pub requests: BTreeMap<String, String>,
    /// The job container's resource limits.
    pub limits: BTreeMap<String, String>,
    /// The pod's `nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// The pod's tolerations.
    pub tolerations: Vec<PodToleration>,
    /// Secrets the node pulls the pod's images with.
    pub image_pull_secrets: Vec<String>,
    /// The pod's service account; `None`: the namespace's default.
    pub service_account: Option<String>,
    /// Mount the service account's token into the pod (off by default: no API rights).
    pub automount_service_account_token: bool,
    /// The Gitea registration the runner runs as: job pods are its, and a restarted runner of
    /// the same registration removes its predecessor's (`leftovers`). `None` (a local run):
    /// pods are this host's.
    pub registration: Option<RunnerRegistration>,
}

/// A toleration of the job pod (Kubernetes' `Toleration`; empty strings are left unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodToleration {
    pub key: String,
    pub operator: String,
    pub value: String,
    pub effect: String,
    pub toleration_seconds: Option<i64>,
}

impl Default for KubernetesConfig {
    fn default() -> KubernetesConfig {
        KubernetesConfig {
            kubeconfig: None,
            context: None,
            in_cluster: false,
            namespace_override: None,
            namespace: String::new(),
            pull_policy: None,
            pod_start_timeout: Duration::from_secs(300),
            requests: BTreeMap::new(),
            limits: BTreeMap::new(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            image_pull_secrets: Vec::new(),
            service_account: None,
            automount_service_account_token: false,
            registration: None,
        }
    }
}

/// The Kubernetes [`Backend`]. Cheap to share; one per runner.
pub struct KubernetesBackend {
    pods: Api<Pod>,
    config: KubernetesConfig,
    labels: leftovers::RunnerLabels,
}

impl KubernetesBackend {
    /// Loads the client configuration (`client`'s order: `in_cluster`, the configured
    /// kubeconfig, `KUBECONFIG`, `~/.kube/config`, the pod's service account). Nothing is asked
    /// of the cluster yet.
    pub async fn connect(mut config: KubernetesConfig) -> Result<KubernetesBackend, BackendError> {
        let operation = "connect to Kubernetes";
        let source = client::choose(&client::Surroundings::of_this_process(
            config.in_cluster,
            config.kubeconfig.clone(),
        ));
        tracing::debug!(?source, "Kubernetes client configuration");
        let client_config = client::load(&source, config.context.clone())
            .await
            .map_err(|error| error.into_backend(operation))?;
        config.namespace = config
            .namespace_override
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| client_config.default_namespace.clone());
        let client = Client::try_from(client_config).map_err(|source| {
            KubeError::Config {
                from: "the client configuration".to_owned(),
                source: Box::new(source),
            }
            .into_backend(operation)
        })?;
        Ok(KubernetesBackend {
            pods: Api::namespaced(client, &config.namespace),
            labels: leftovers::RunnerLabels::of_this_process(config.registration.as_ref()),
            config,
        })
    }

    /// The namespace job pods go to.
    pub fn namespace(&self) -> &str {
        &self.config.namespace
    }

    /// Deletes the pods that earlier runs of this runner left when they died (same
    /// registration, or same host without one); returns their names. Pods of live runners,
    /// this one included, are kept.
    pub async fn cleanup_leftovers(&self) -> Result<Vec<String>, BackendError> {
        leftovers::cleanup(&self.pods, &self.config.namespace, &self.labels)
            .await
            .map_err(|error| error.into_backend("remove pods of dead runners"))
    }

    /// Lays out the pod's directories and learns its environment and shell; copies the
    /// workspace source in when there is one.
    async fn set_up(
        &self,
        exec: &PodExec,
        spec: &JobSpec,
    ) -> Result<(BTreeMap<String, String>, bool), KubeError> {
        let script = format!(
            "mkdir -p {} {} {} {} {} && if command -v bash >/dev/null 2>&1; then echo bash; \
             else echo sh; fi && env",
            pod::WORKSPACE,
            pod::TEMP,
            pod::TOOL_CACHE,
            pod::EXEC_DIR,
            pod::HOME
        );
        let (code, out, err) = exec.collect(&["sh", "-c", &script], None).await?;
        if code != 0 {
            return Err(KubeError::Exec {
                pod: exec.pod.clone(),
                message: format!(
                    "setting up the job's directories failed (exit {code}): {}",
                    String::from_utf8_lossy(&err).trim()
                ),
            });
        }
        let text = String::from_utf8_lossy(&out);
        let (shell, env) = text.split_once('\n').unwrap_or((&text, ""));
        if let Some(source) = spec.workspace_source.clone() {
            let tar = tokio::task::spawn_blocking(move || crate::tree_copy::tar_tree(&source))
                .await
                .map_err(|error| KubeError::Exec {
                    pod: exec.pod.clone(),
                    message: format!("packing the workspace failed: {error}"),
                })?
                .map_err(|error| KubeError::Exec {
                    pod: exec.pod.clone(),
                    message: format!("packing the workspace failed: {error}"),
                })?;
            let (code, _, err) = exec
                .collect(
                    &["tar", "-x", "-f", "-", "-C", pod::WORKSPACE],
                    Some(&tar.0),
                )
                .await?;
            if code != 0 {
                return Err(KubeError::Exec {
                    pod: exec.pod.clone(),
                    message: format!(
                        "copying the workspace into the pod failed (tar exit {code}): {}",
                        String::from_utf8_lossy(&err).trim()
                    ),
                });
            }
        }
        Ok((exec::parse_env(env), shell.trim() == "bash"))
    }
}

#[async_trait::async_trait]
impl Backend for KubernetesBackend {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        let operation = format!("start the pod of job `{}`", spec.job_key);
        let services = services::plan(
            &spec.services,
            self.config.pull_policy.as_deref(),
            !self.config.image_pull_secrets.is_empty(),
        )
        .map_err(|refused| KubeError::from(refused).into_backend(&operation))?;
        let Some(container) = &spec.image else {
            return Err(KubeError::Unsupported(
                "a kubernetes job needs an image (the label's `kubernetes://IMAGE` or the job's \
                 `container:`)"
                    .to_owned(),
            )
            .into_backend(&operation));
        };
        let job_container =
            job_container::plan(container, !self.config.image_pull_secrets.is_empty())
                .map_err(|refused| KubeError::from(refused).into_backend(&operation))?;
        static NEXT_JOB: AtomicU64 = AtomicU64::new(1);
        let sequence = NEXT_JOB.fetch_add(1, Ordering::Relaxed);
        let namespace = &self.config.namespace;
        let manifest = pod::manifest(
            &self.config,
            &format!("runnel-{}-{sequence}", std::process::id()),
            &container.image,
            &job_container,
            self.labels.for_job(&spec.job_key),
            &spec.job_key,
            &services,
        );
        let name = pod::create(&self.pods, namespace, &manifest)
            .await
            .map_err(|error| error.into_backend(&operation))?;
        tracing::debug!(pod = %name, namespace, "job pod created");
        let exec = PodExec {
            pods: self.pods.clone(),
            pod: name.clone(),
            namespace: namespace.clone(),
        };
        let ready = async {
            let running = pod::wait_running(
                &self.pods,
                namespace,
                &name,
                &container.image,
                &services,
                self.config.pod_start_timeout,
                cancel,
            )
            .await?;
            let (default_env, has_bash) = self.set_up(&exec, spec).await?;
            Ok::<_, KubeError>((default_env, has_bash, host::route_of(&name, &running)))
        };
        let (default_env, has_bash, host_route) = match ready.await {
            Ok(ready) => ready,
            Err(error) => {
                if let Err(delete) = pod::delete(&self.pods, namespace, &name).await {
                    tracing::warn!(pod = %name, error = %delete, "could not delete a pod that did not start");
                }
                return Err(error.into_backend(&operation));
            }
        };
        Ok(Box::new(KubernetesEnvironment {
            exec,
            pods: self.pods.clone(),
            paths: EnvironmentPaths {
                workspace: pod::WORKSPACE.to_owned(),
                temp: pod::TEMP.to_owned(),
                tool_cache: pod::TOOL_CACHE.to_owned(),
                home: pod::HOME.to_owned(),
            },
            info: EnvironmentInfo {
                container_id: Some(name),
                network: None,
                service_ports: services
                    .services
                    .iter()
                    .map(|service| (service.id.clone(), service.ports.clone()))
                    .collect(),
                has_bash,
                image: Some(container.image.clone()),
            },
            default_env,
            host_route,
            next_exec: AtomicU64::new(1),
            next_container: AtomicU64::new(1),
            pull_policy: self.config.pull_policy.clone(),
            start_timeout: self.config.pod_start_timeout,
            torn_down: AtomicBool::new(false),
        }))
    }
}
