//! A host job with `services:`: the services run as Docker containers (see
//! `docker::host_services`), the steps on this machine, and the environment handed to the
//! engine (the host's with an [`EnvironmentLayer`] on top) reports the services' host ports
//! and removes them at teardown.
//!
//! Must not: start containers itself (the Docker backend does) or change how steps run.

use std::sync::Arc;

use runnel_engine::backend::{
    Backend, BackendError, EnvironmentLayer, JobEnvironment, JobSpec, TeardownHook,
};
use tokio_util::sync::CancellationToken;

use super::HostBackend;
use super::error::HostError;
use crate::docker::DockerBackend;

/// The host backend with services: jobs without `services:` go to the host backend as they
/// are; jobs with them get their services from `docker`, or fail saying why Docker is missing.
pub struct HostWithDockerServices {
    host: HostBackend,
    docker: Result<Arc<DockerBackend>, String>,
}

impl HostWithDockerServices {
    /// `docker`: the Docker backend, or why there is none (said when a job has services).
    pub fn new(host: HostBackend, docker: Result<Arc<DockerBackend>, String>) -> Self {
        HostWithDockerServices { host, docker }
    }
}

#[async_trait::async_trait]
impl Backend for HostWithDockerServices {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        if spec.services.is_empty() {
            return self.host.prepare(spec, cancel).await;
        }
        let docker = self
            .docker
            .as_ref()
            .map_err(|reason| docker_missing(spec, reason))?;
        prepare(&self.host, docker, spec, cancel).await
    }
}

/// Why a host job with services cannot run: names the job, its services and the fix.
pub(crate) fn docker_missing(spec: &JobSpec, reason: &str) -> BackendError {
    HostError::DockerMissing {
        job_key: spec.job_key.clone(),
        services: spec.services.iter().map(|s| s.id.clone()).collect(),
        reason: reason.to_owned(),
    }
    .into()
}

/// Prepares a host job whose services run in Docker: services first (ready before any
/// step), then the job directory. On error nothing is left.
pub(crate) async fn prepare(
    host: &HostBackend,
    docker: &DockerBackend,
    spec: &JobSpec,
    cancel: &CancellationToken,
) -> Result<Box<dyn JobEnvironment>, BackendError> {
    let mut services = docker.start_host_services(spec, cancel).await?;
    let host_spec = JobSpec {
        services: Vec::new(),
        ..spec.clone()
    };
    let inner = match host.prepare(&host_spec, cancel).await {
        Ok(inner) => inner,
        Err(error) => {
            if let Err(teardown_error) = services.remove().await {
                tracing::warn!(%teardown_error, "could not remove the services of a failed job");
            }
            return Err(error);
        }
    };
    let mut info = inner.info().clone();
    info.service_ports = services.ports.clone();
    // The services go after the job's directory and processes.
    let remove_services: TeardownHook =
        Box::new(move || Box::pin(async move { services.remove().await }));
    Ok(EnvironmentLayer {
        info: Some(info),
        teardown: Some(remove_services),
        ..EnvironmentLayer::default()
    }
    .wrap(inner))
}
