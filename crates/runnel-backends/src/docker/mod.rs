//! The Docker backend (bollard): a job is a pod — the job container owns the network
//! namespace, services join it, names resolve through /etc/hosts.
//!
//! Layout of one job (all objects labelled `runnel.job`, `runnel.pid`, `runnel.pid-start`):
//! - a network: by default the shared `runnel-jobs` bridge, on which containers cannot reach
//!   each other (see [`JobNetwork`]), or a bridge of its own (`runnel-<pid>-<n>`);
//! - the job container, kept alive by `tail -f /dev/null` under Docker's init, with an anonymous
//!   volume at `/__w` (temp, tool cache, home, and the workspace unless a host directory is
//!   bind-mounted there) and every port of every service published on it;
//! - each service with `network_mode: container:<job>`: it shares the job's network namespace,
//!   so `localhost:5432` works, and the job container's `/etc/hosts` maps every service id to
//!   127.0.0.1, so `postgres:5432` works too. Two services on one port cannot both bind it: that
//!   is refused before anything starts, naming both.
//!
//! Safe defaults: the Docker socket is never mounted unless [`DockerBackendConfig`] says so;
//! `options:` go through the allow-list in `options`, `volumes:` through `valid_volumes`.
//!
//! Must not: parse workflows or evaluate expressions; it gets plain `JobSpec`s.

mod archive;
mod environment;
mod exec;
mod image;
mod leftovers;
mod options;
mod pod;
mod services;
mod step_container;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bollard::Docker;
use runnel_engine::backend::{Backend, BackendError, JobEnvironment, JobSpec};
use tokio_util::sync::CancellationToken;

pub use leftovers::LeftoverReport;

/// How the Docker backend behaves; the defaults are the safe ones.
#[derive(Debug, Clone)]
pub struct DockerBackendConfig {
    /// `unix:///path`, `tcp://host:port`; `None`: `DOCKER_HOST` or the local socket.
    pub docker_host: Option<String>,
    /// Glob patterns of volume sources (host paths or volume names) that workflows may mount,
    /// like act_runner's `valid_volumes`. Empty: only anonymous volumes.
    pub valid_volumes: Vec<String>,
    /// Mount the Docker socket into job containers (and allow it in `volumes:`). Off by default:
    /// whoever holds the socket owns the host.
    pub mount_docker_socket: bool,
    /// The socket mounted when `mount_docker_socket` is on.
    pub docker_socket_path: String,
    /// Allow `--privileged`, `--cap-add` and `--device` in `options:`.
    pub allow_privileged: bool,
    /// How long services may take to become healthy (or running, without a health check).
    pub service_start_timeout: Duration,
    /// Which network job containers join.
    pub job_network: JobNetwork,
}

/// The network of a job container (its services share the job container's namespace either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobNetwork {
    /// One long-lived bridge, `runnel-jobs`, with inter-container traffic disabled: jobs reach
    /// the internet and their own services but not each other. Created on first use and kept,
    /// like Docker's `bridge`. Creating and removing a bridge per job costs about 0.3 s, most
    /// of a one-step job.
    Shared,
    /// A fresh bridge per job, removed at teardown.
    PerJob,
}

impl DockerBackendConfig {
    /// The safe defaults: local Docker, no extra volumes, no socket, no privileges.
    pub fn safe_defaults() -> DockerBackendConfig {
        DockerBackendConfig {
            docker_host: None,
            valid_volumes: Vec::new(),
            mount_docker_socket: false,
            docker_socket_path: "/var/run/docker.sock".to_owned(),
            allow_privileged: false,
            service_start_timeout: Duration::from_secs(300),
            job_network: JobNetwork::Shared,
        }
    }
}

/// One line of image pull progress, for the job log.
#[derive(Debug, Clone)]
pub struct PullProgress {
    pub job_key: String,
    pub image: String,
    /// Docker's status line, e.g. `Downloading 12.3MB/40MB` or `Pull complete`.
    pub message: String,
}

/// Receives pull progress; set with [`DockerBackend::with_pull_progress`].
pub type PullProgressCallback = Arc<dyn Fn(&PullProgress) + Send + Sync>;

/// The Docker [`Backend`]. Cheap to share; one per runner.
pub struct DockerBackend {
    docker: Docker,
    config: DockerBackendConfig,
    pull_progress: Option<PullProgressCallback>,
    labels: leftovers::RunnerLabels,
}

impl DockerBackend {
    /// Connects to the engine and agrees on an API version (Debian's 20.10 speaks 1.41).
    pub async fn connect(config: DockerBackendConfig) -> Result<DockerBackend, BackendError> {
        let connected = match config.docker_host.as_deref() {
            Some(host) => Docker::connect_with_host(host),
            None => Docker::connect_with_defaults(),
        };
        let target = config
            .docker_host
            .as_deref()
            .unwrap_or("the local Docker engine");
        let docker = connected
            .map_err(|error| failed("connect to Docker", format!("{target}: {error}")))?
            .negotiate_version()
            .await
            .map_err(|error| {
                failed(
                    "connect to Docker",
                    format!("{target} does not answer ({error}); is dockerd running?"),
                )
            })?;
        Ok(DockerBackend {
            docker,
            config,
            pull_progress: None,
            labels: leftovers::RunnerLabels::of_this_process(),
        })
    }

    /// Sends image pull progress to `callback` (the CLI prints it in the job's log).
    pub fn with_pull_progress(mut self, callback: PullProgressCallback) -> DockerBackend {
        self.pull_progress = Some(callback);
        self
    }

    /// Removes containers, networks and volumes left by runner processes that are gone (a
    /// killed runner cannot tear down). Objects of live runners, this one included, are kept.
    pub async fn cleanup_leftovers(&self) -> Result<LeftoverReport, BackendError> {
        leftovers::cleanup(&self.docker).await
    }

    /// The bollard client, for callers that need the engine directly (tests, docker actions).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}

#[async_trait::async_trait]
impl Backend for DockerBackend {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        // Process-wide, not per backend: Docker accepts two networks with one name, and then
        // cannot remove either by name.
        static NEXT_JOB: AtomicU64 = AtomicU64::new(1);
        let sequence = NEXT_JOB.fetch_add(1, Ordering::Relaxed);
        let context = pod::PrepareContext {
            docker: &self.docker,
            config: &self.config,
            pull_progress: self.pull_progress.as_ref(),
            labels: self.labels.for_job(&spec.job_key),
            name: format!("runnel-{}-{sequence}", std::process::id()),
        };
        let environment = pod::prepare(context, spec, cancel).await?;
        Ok(Box::new(environment))
    }
}

pub(crate) fn failed(operation: &str, message: String) -> BackendError {
    BackendError::Failed {
        operation: operation.to_owned(),
        message,
    }
}

/// Docker answered 404 (the container, image, network or path does not exist).
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
