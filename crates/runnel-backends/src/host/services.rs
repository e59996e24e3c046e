//! A host job with `services:`: the services run as Docker containers (see
//! `docker::host_services`), the steps on this machine, and the environment handed to the
//! engine reports the services' host ports and removes them at teardown.
//!
//! Must not: start containers itself (the Docker backend does) or change how steps run.

use std::collections::BTreeMap;
use std::sync::Arc;

use runnel_engine::backend::{
    Backend, BackendError, BuiltImage, ContainerRun, EnvironmentInfo, EnvironmentPaths, ExecExit,
    ExecOutput, ExecRequest, ImageBuild, JobEnvironment, JobSpec,
};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::HostBackend;
use crate::docker::{DockerBackend, RunningServices};

/// The host backend with services: jobs without `services:` go to the host backend as they
/// are; jobs with them get their services from `docker`, or fail saying why Docker is missing.
/// For callers that hold the two backends separately (the daemon); `LabelRouter` does the same
/// for the jobs it routes to the host.
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
    let ids: Vec<&str> = spec.services.iter().map(|s| s.id.as_str()).collect();
    BackendError::Failed {
        operation: format!(
            "start the services of job `{}` ({})",
            spec.job_key,
            ids.join(", ")
        ),
        message: format!(
            "the job's steps run on this machine and its services run as Docker containers, \
             but Docker is not available: {reason}. Start dockerd (or set DOCKER_HOST), or \
             remove `services:` from the job"
        ),
    }
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
    Ok(Box::new(HostWithServices {
        inner,
        info,
        services: Mutex::new(services),
    }))
}

/// The host environment plus the job's service containers.
struct HostWithServices {
    inner: Box<dyn JobEnvironment>,
    info: EnvironmentInfo,
    services: Mutex<RunningServices>,
}

#[async_trait::async_trait]
impl JobEnvironment for HostWithServices {
    fn paths(&self) -> &EnvironmentPaths {
        self.inner.paths()
    }

    fn info(&self) -> &EnvironmentInfo {
        &self.info
    }

    fn default_env(&self) -> BTreeMap<String, String> {
        self.inner.default_env()
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        self.inner.exec(request, output, cancel).await
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        self.inner.write_file(path, contents, executable).await
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.inner.read_file(path).await
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        let steps = self.inner.teardown().await;
        let services = self.services.lock().await.remove().await;
        steps.and(services)
    }

    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        self.inner.find_program(program, path).await
    }

    async fn build_image(
        &self,
        build: &ImageBuild,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage, BackendError> {
        self.inner.build_image(build, cancel).await
    }

    async fn run_container(
        &self,
        run: &ContainerRun,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        self.inner.run_container(run, output, cancel).await
    }
}
