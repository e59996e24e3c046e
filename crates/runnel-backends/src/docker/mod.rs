//! The Docker backend (bollard): a job is a pod — the job container owns the network
//! namespace, services join it, names resolve through /etc/hosts.
//!
//! Layout of one job (all objects labelled `runnel.job`, `runnel.pid`, `runnel.pid-start`):
//! - a network: by default the shared `runnel-jobs` bridge, on which containers cannot reach
//!   each other (see [`JobNetwork`]), a bridge of its own (`runnel-<pid>-<n>`), or an
//!   existing network named in the config;
//! - the job container, under Docker's init, with `/__w` (temp, tool cache, and the
//!   workspace unless a host directory is bind-mounted there) and `HOME` bind-mounted from a
//!   job directory on this machine (`workdir`; an anonymous volume when the engine cannot
//!   mount it), and every port of every service published on it. Its main process is the exec
//!   `agent`, which starts the steps' processes without `docker exec` when the job directory
//!   is mounted and the image has bash; otherwise `tail -f /dev/null`, and steps go through
//!   `docker exec` (`exec`);
//! - each service with `network_mode: container:<job>`: it shares the job's network namespace,
//!   so `localhost:5432` works, and the job container's `/etc/hosts` maps every service id to
//!   127.0.0.1, so `postgres:5432` works too. Two services on one port cannot both bind it: that
//!   is refused before anything starts, naming both.
//!
//! A host job's services are containers of their own (`host_services`); a configured CA
//! bundle is trusted in every container (`ca`).
//!
//! Safe defaults: the Docker socket is never mounted unless [`DockerBackendConfig`] says so;
//! `options:` go through the allow-list in `options`, `volumes:` through `volumes` (normalised,
//! then matched against `valid_volumes`).
//!
//! Images are pulled when missing (or always, with `force_pull`), with the container's
//! `credentials:` or the Docker client config's, and the pull's progress shown in the job's
//! log (`image`).
//!
//! Must not: parse workflows or evaluate expressions; it gets plain `JobSpec`s.

mod agent;
mod archive;
mod ca;
mod connect;
mod container;
mod environment;
mod error;
mod exec;
mod host_services;
mod image;
mod leftovers;
pub(crate) mod options;
mod pod;
mod services;
mod step_container;
mod volumes;
mod workdir;
mod workspace;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bollard::Docker;
use runnel_engine::backend::{Backend, BackendError, JobEnvironment, JobSpec};
use tokio_util::sync::CancellationToken;

use error::DockerError;
pub use host_services::RunningServices;
pub use image::RegistryAuth;
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
    /// Run job, service and step containers privileged, as act_runner's
    /// `container.privileged: true` does (Docker-in-Docker services need it); implies
    /// `allow_privileged`.
    pub privileged: bool,
    /// More `docker run` options for every job container (the Gitea runner's
    /// `container.options`): the operator's, applied as written (every option that maps onto
    /// the create call; one that cannot apply at all fails [`DockerBackend::connect`]). Their
    /// bind sources need no `valid_volumes` entry, but the engine's socket goes in only when
    /// `mount_docker_socket` is on. Where a workflow sets the same value, these win: an
    /// operator's `--memory` is a limit, not a default.
    pub job_options: Vec<String>,
    /// `docker run` options a workflow's `options:` may use beyond the allow-list (e.g.
    /// `--gpus`), read as `docker run` reads them. Volume, network and privilege options
    /// cannot be listed: they have workflow keys that are checked.
    pub workflow_options_allowed: Vec<String>,
    /// The workspace's parent directory inside job containers, as act_runner's
    /// `container.workdir_parent` (`ci` → `/ci/workspace`). `None`: GitHub's `/__w`.
    pub workspace_parent: Option<String>,
    /// Pull images even when they are present (act_runner's `container.force_pull`); a failed
    /// forced pull uses the present copy.
    pub force_pull: bool,
    /// Build Dockerfile actions even when an image of the same files exists
    /// (act_runner's `container.force_rebuild`).
    pub force_rebuild: bool,
    /// A pull that hears nothing from the engine for this long fails. `None`: no limit.
    pub pull_stall_timeout: Option<Duration>,
    /// Where pulls without `credentials:` look for registry credentials.
    pub registry_auth: RegistryAuth,
    /// How long services may take to become healthy (or running, without a health check).
    pub service_start_timeout: Duration,
    /// Which network job containers join.
    pub job_network: JobNetwork,
    /// Where the job container's `/__w` and `HOME` live.
    pub job_files: JobFiles,
    /// PEM certificates that job, service and step containers trust on top of this machine's
    /// system bundle (see the `ca` module for how). The Docker engine must see this machine's
    /// files (a bind mount), as for `JobFiles::HostDirectory`.
    pub ca_bundle: Option<PathBuf>,
    /// When a job's containers are removed.
    pub teardown: Teardown,
    /// Mount a job's workspace source (`runnel run`'s working tree) into the job container
    /// read-write instead of giving the job a copy (act's `--bind`). Off by default: with the
    /// tree mounted, a step can plant `.git/hooks` that run at the user's next `git` command.
    pub bind_workspace: bool,
    /// `runner.tool_cache_mode: shared`: the volume [`SHARED_TOOL_CACHE_VOLUME`] is every job
    /// container's `RUNNER_TOOL_CACHE` (at `/opt/hostedtoolcache`, as the Gitea runner mounts
    /// its own); otherwise each job has its own under `/__w`.
    pub shared_tool_cache: bool,
    /// The platform (`os/arch[/variant]`, e.g. `linux/amd64`) job, service and step
    /// containers are created for, and their images pulled and built for (act's
    /// `--container-architecture`). A present image of another platform is pulled again for
    /// this one; when that fails, the job fails naming both. `None`: the engine's own.
    pub platform: Option<String>,
}

/// When a job's containers and network are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// Before `teardown` returns.
    Wait,
    /// After `teardown` returns (its job directory is gone already), so that the job's
    /// dependents start sooner: force-removing a running container takes about 0.1 s. Whoever
    /// drives the backend must await [`DockerBackend::finish_teardowns`] before it exits.
    Background,
}

/// Where a job container's `/__w` (workspace, `RUNNER_TEMP`, tool cache) and `HOME` live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFiles {
    /// A directory per job on this machine, under `root` (the system temp dir when `None`),
    /// bind-mounted into the job container, as GitHub mounts its runner's `_work` at `/__w`.
    /// The engine's scripts and file-command files are then plain file IO instead of Docker
    /// archive calls (about 60 ms each, a dozen per step). When the Docker engine cannot
    /// mount it (it runs on another machine, or this runner runs in a container whose files
    /// the engine does not see), jobs fall back to `Volume`.
    HostDirectory { root: Option<PathBuf> },
    /// An anonymous volume per job; files move through Docker's archive API.
    Volume,
}

/// The network of a job container (its services share the job container's namespace either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobNetwork {
    /// One long-lived bridge, `runnel-jobs`, with inter-container traffic disabled: jobs reach
    /// the internet and their own services but not each other. Created on first use and kept,
    /// like Docker's `bridge`. Creating and removing a bridge per job costs about 0.3 s, most
    /// of a one-step job.
    Shared,
    /// A fresh bridge per job, removed at teardown.
    PerJob,
    /// Docker's default `bridge`, as `docker run` and act use: no embedded DNS server to set
    /// up, so a job container starts about 50 ms sooner than on `runnel-jobs`, but jobs (and
    /// any other container there) can reach each other. For local runs of one user's jobs;
    /// a runner serving several repositories keeps `Shared`.
    DefaultBridge,
    /// A network that exists already, by name (act_runner's `container.network`): one the
    /// operator made, or Docker's `host`. Jobs on it reach whatever else is on it; runnel
    /// neither creates nor removes it, and a job fails, naming it, when it does not exist.
    Existing(String),
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
            privileged: false,
            job_options: Vec::new(),
            workflow_options_allowed: Vec::new(),
            workspace_parent: None,
            force_pull: false,
            force_rebuild: false,
            pull_stall_timeout: None,
            registry_auth: RegistryAuth::DockerConfig,
            service_start_timeout: Duration::from_secs(300),
            job_network: JobNetwork::Shared,
            job_files: JobFiles::HostDirectory { root: None },
            ca_bundle: None,
            teardown: Teardown::Wait,
            bind_workspace: false,
            shared_tool_cache: false,
            platform: None,
        }
    }
}

/// The volume of `shared_tool_cache`. It carries no runner's labels, so neither teardown
/// nor leftover cleanup removes it: what a `setup-*` action downloaded stays for later jobs.
pub const SHARED_TOOL_CACHE_VOLUME: &str = "runnel-toolcache";

/// The Docker [`Backend`]. Cheap to share; one per runner.
pub struct DockerBackend {
    docker: Docker,
    config: DockerBackendConfig,
    labels: leftovers::RunnerLabels,
    /// Set once the engine could not mount a job directory of this machine.
    host_dirs_unusable: AtomicBool,
    /// The combined CA bundle when `config.ca_bundle` is set.
    ca: Option<ca::CaBundle>,
    /// Removals still running (`Teardown::Background`).
    pending_teardowns: environment::PendingTeardowns,
}

impl DockerBackend {
    /// Connects to the engine and agrees on an API version (Debian's 20.10 speaks 1.41).
    /// Fails, naming the option, when `config.job_options` has one that cannot apply to a
    /// job container, or `workflow_options_allowed` one that workflows may not be given.
    pub async fn connect(mut config: DockerBackendConfig) -> Result<DockerBackend, BackendError> {
        // Flattened: see `DockerError::flattened`.
        let refused = |source| DockerError::RunnerOptions { source }.flattened();
        options::job_options(&[], &config).map_err(refused)?;
        options::check_allowed_list(&config.workflow_options_allowed).map_err(refused)?;
        config.job_network = options::operator_network(&config)
            .map_err(|error| refused(options::OptionError::Runner(Box::new(error))))?;
        let docker = match connect::by_ping(config.docker_host.as_deref()).await {
            Some(docker) => docker,
            None => {
                let connected = match config.docker_host.as_deref() {
                    Some(host) => Docker::connect_with_host(host),
                    None => Docker::connect_with_defaults(),
                };
                let target = config
                    .docker_host
                    .as_deref()
                    .unwrap_or("the local Docker engine");
                connected
                    .map_err(|source| {
                        DockerError::engine("connect to Docker", target)(source).flattened()
                    })?
                    .negotiate_version()
                    .await
                    .map_err(|source| {
                        DockerError::Unanswered {
                            target: target.to_owned(),
                            source,
                        }
                        .flattened()
                    })?
            }
        };
        let ca = match &config.ca_bundle {
            Some(configured) => {
                let root = match &config.job_files {
                    JobFiles::HostDirectory { root: Some(root) } => root.clone(),
                    _ => std::env::temp_dir(),
                };
                Some(ca::CaBundle::prepare(&root, configured).map_err(DockerError::flattened)?)
            }
            None => None,
        };
        Ok(DockerBackend {
            docker,
            config,
            ca,
            labels: leftovers::RunnerLabels::of_this_process(),
            host_dirs_unusable: AtomicBool::new(false),
            pending_teardowns: Arc::default(),
        })
    }

    /// Removes containers, networks and volumes left by runner processes that are gone (a
    /// killed runner cannot tear down). Objects of live runners, this one included, are kept.
    pub async fn cleanup_leftovers(&self) -> Result<LeftoverReport, BackendError> {
        let mut report = leftovers::cleanup(&self.docker).await?;
        if let Some(root) = self.host_work_root() {
            let removed = tokio::task::spawn_blocking(move || workdir::cleanup(&root)).await;
            report.directories = removed.unwrap_or_default();
        }
        Ok(report)
    }

    /// Waits for the container removals that `Teardown::Background` left running; the first
    /// error, if any, after all of them ended. Call before the process exits.
    pub async fn finish_teardowns(&self) -> Result<(), BackendError> {
        let pending = std::mem::take(
            &mut *self
                .pending_teardowns
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let mut first_error = None;
        for handle in pending {
            let result = match handle.await {
                Ok(result) => result,
                Err(source) => Err(DockerError::TeardownTask { source }.into()),
            };
            if let Err(error) = result {
                tracing::warn!(%error, "removing a job's containers failed");
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Where job directories go on this machine, unless jobs use volumes.
    fn host_work_root(&self) -> Option<PathBuf> {
        match &self.config.job_files {
            JobFiles::HostDirectory { root } => {
                Some(root.clone().unwrap_or_else(std::env::temp_dir))
            }
            JobFiles::Volume => None,
        }
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
        let host_work_root = self
            .host_work_root()
            .filter(|_| !self.host_dirs_unusable.load(Ordering::Relaxed));
        let context = pod::PrepareContext {
            docker: &self.docker,
            config: &self.config,
            labels: self.labels.for_job(&spec.job_key),
            name: format!("runnel-{}-{sequence}", std::process::id()),
            host_work_root: host_work_root.as_deref(),
            host_dirs_unusable: &self.host_dirs_unusable,
            ca: self.ca.as_ref(),
            background_teardowns: (self.config.teardown == Teardown::Background)
                .then(|| self.pending_teardowns.clone()),
        };
        let environment = pod::prepare(context, spec, cancel).await?;
        Ok(Box::new(environment))
    }
}

/// The create call's query: the container's name, if it gets one, and the configured
/// platform (`DockerBackendConfig::platform`), if any.
pub(crate) fn create_options(
    name: Option<&str>,
    platform: Option<&str>,
) -> Option<bollard::query_parameters::CreateContainerOptions> {
    let mut builder = bollard::query_parameters::CreateContainerOptionsBuilder::new();
    if let Some(name) = name {
        builder = builder.name(name);
    }
    if let Some(platform) = platform {
        builder = builder.platform(platform);
    }
    (name.is_some() || platform.is_some()).then(|| builder.build())
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
