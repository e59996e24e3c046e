//! Choosing where a job runs from its `runs-on` labels: the [`LabelRouter`] backend maps each
//! label to a [`Platform`] (this machine, or a Docker image) and hands the job to the host or
//! the Docker backend, as act_runner's `name:host` / `name:docker://image` labels and act's
//! `-P label=image` do.
//!
//! Owns: the label → platform decision and its errors. Must not: parse label syntax from config
//! files (callers pass parsed platforms) or run anything itself.

use tokio_util::sync::CancellationToken;

use runnel_engine::backend::{Backend, BackendError, ContainerSpec, JobEnvironment, JobSpec};

use crate::docker::DockerBackend;
use crate::host::HostBackend;

/// Where the jobs of a label run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platform {
    /// Directly on this machine (act's `-self-hosted`, act_runner's `name:host`).
    Host,
    /// In a container of this image (act_runner's `name:docker://image`).
    Docker { image: String },
}

/// A backend that routes each job to the host or to Docker by its labels.
pub struct LabelRouter {
    platforms: Vec<(String, Platform)>,
    fallback: Platform,
    host: HostBackend,
    docker: Result<DockerBackend, String>,
}

impl LabelRouter {
    /// `platforms` are tried in order against the job's labels (case-insensitively); a job
    /// none of whose labels is mapped runs on `fallback`. `docker` is the Docker backend, or
    /// why it cannot be had (said when a job needs it).
    pub fn new(
        platforms: Vec<(String, Platform)>,
        fallback: Platform,
        host: HostBackend,
        docker: Result<DockerBackend, String>,
    ) -> LabelRouter {
        LabelRouter {
            platforms,
            fallback,
            host,
            docker,
        }
    }

    /// The platform for a job with these labels: the first label that has a mapping decides.
    pub fn platform_for(&self, labels: &[String]) -> &Platform {
        labels
            .iter()
            .find_map(|label| {
                self.platforms
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(label))
                    .map(|(_, platform)| platform)
            })
            .unwrap_or(&self.fallback)
    }

    /// Waits for container removals still running in the background (see
    /// `docker::Teardown::Background`); call before the process exits.
    pub async fn finish_teardowns(&self) -> Result<(), BackendError> {
        match &self.docker {
            Ok(docker) => docker.finish_teardowns().await,
            Err(_) => Ok(()),
        }
    }

    fn docker(&self, why: &str) -> Result<&DockerBackend, BackendError> {
        self.docker.as_ref().map_err(|reason| BackendError::Failed {
            operation: why.to_owned(),
            message: format!("Docker is not available: {reason}"),
        })
    }
}

#[async_trait::async_trait]
impl Backend for LabelRouter {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        match self.platform_for(&spec.labels) {
            Platform::Docker { image } => {
                let docker = self.docker(&format!(
                    "run job `{}` in image {image} (runs-on: {})",
                    spec.job_key,
                    spec.labels.join(", ")
                ))?;
                let mut spec = spec.clone();
                // `container:` wins over the label's image, as on GitHub and act_runner.
                if spec.image.is_none() {
                    spec.image = Some(ContainerSpec {
                        image: image.clone(),
                        ..ContainerSpec::default()
                    });
                }
                docker.prepare(&spec, cancel).await
            }
            // A `container:` job on a host label runs in that container, as GitHub runs
            // container jobs on its VMs; services on the host are the host backend's to refuse
            // or run.
            Platform::Host if spec.image.is_some() => {
                let docker =
                    self.docker(&format!("run job `{}` in its `container:`", spec.job_key))?;
                docker.prepare(spec, cancel).await
            }
            // Services of a job on this machine run as containers publishing their ports on
            // 127.0.0.1, as on a GitHub VM.
            Platform::Host if !spec.services.is_empty() => match &self.docker {
                Ok(docker) => {
                    crate::host::services::prepare(&self.host, docker, spec, cancel).await
                }
                Err(reason) => Err(crate::host::services::docker_missing(spec, reason)),
            },
            Platform::Host => self.host.prepare(spec, cancel).await,
        }
    }
}
