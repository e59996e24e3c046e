//! The one place a Docker backend is made: `config.yaml`'s `container:` keys (or `runnel run`'s
//! flags mapped onto them) turned into the backend's options, the connection (waited for as
//! `container.docker_timeout` says), and the removal of what dead runners left behind.
//!
//! Every act_runner `container:` key is applied ([`docker_config`]): `options` (the
//! operator's, applied as written: every `docker run` option that maps onto the create call;
//! the backend refuses at connect one that cannot apply to a job container at all), the
//! runnel addition `workflow_options_allowed` (options workflows may use beyond the
//! allow-list), `service_ready_timeout` (the wait for services), `privileged` (job, service and step containers privileged, as
//! act_runner does), `workdir_parent` (a value other than the default `workspace` moves the
//! workspace to `/<value>/workspace`), `force_pull`, `force_rebuild`, `docker_host` (the Gitea
//! runner's meaning: which engine, and whether its socket goes into jobs), and `docker_timeout`
//! (how long to wait for the engine at start, and how long a pull may go without progress).
//!
//! A local run's `--container-architecture` (no `config.yaml` key) is the backend's `platform`.
//!
//! Must not: decide which jobs run in Docker (the router does) or run anything itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use runnel_backends::docker::{
    DockerBackend, DockerBackendConfig, JobFiles, JobNetwork, RegistryAuth, Teardown,
};
use runnel_config::{Config, DockerHostUse, ToolCacheMode};

use crate::Purpose;

/// How long a runner whose labels need no Docker waits for it at start.
const OPTIONAL_DOCKER_TIMEOUT: Duration = Duration::from_secs(10);

/// The Docker backend's options from `container:` (and where job directories go) for `purpose`.
pub fn docker_config(config: &Config, purpose: &Purpose) -> DockerBackendConfig {
    let mut docker_config = DockerBackendConfig::safe_defaults();
    let container = &config.container;
    apply_docker_host(&mut docker_config, &container.docker_host_use());
    docker_config.valid_volumes = container.valid_volumes.clone();
    // act_runner runs job, service and action containers privileged when this is set; the
    // default (false) keeps them unprivileged and refuses `--privileged` in `options:`.
    docker_config.privileged = container.privileged;
    docker_config.allow_privileged = container.privileged;
    let options = container.options.trim();
    if !options.is_empty() {
        docker_config.job_options = vec![options.to_owned()];
    }
    docker_config.workflow_options_allowed = container.workflow_options_allowed.clone();
    docker_config.service_start_timeout = container.service_ready_timeout;
    // `workspace` is act_runner's default, under which runnel keeps GitHub's `/__w` layout.
    let parent = container.workdir_parent.trim().trim_matches('/');
    if !matches!(parent, "" | "workspace") {
        docker_config.workspace_parent = Some(parent.to_owned());
    }
    docker_config.force_pull = container.force_pull;
    docker_config.force_rebuild = container.force_rebuild;
    docker_config.pull_stall_timeout =
        (!container.docker_timeout.is_zero()).then_some(container.docker_timeout);
    // As `docker pull` and act_runner: private images need only `docker login` as this user.
    docker_config.registry_auth = RegistryAuth::DockerConfig;
    docker_config.ca_bundle = container.ca_bundle.as_deref().map(absolute);
    docker_config.job_network = job_network(&container.network);
    docker_config.shared_tool_cache = config.runner.tool_cache_mode == ToolCacheMode::Shared;
    match purpose {
        Purpose::Local(local) => {
            // Jobs end sooner; `Assembly::finish` waits for the removals before the run ends.
            docker_config.teardown = Teardown::Background;
            docker_config.bind_workspace = local.bind_workspace;
            docker_config.platform = local.container_platform.clone();
            docker_config.job_files = JobFiles::HostDirectory { root: None };
        }
        Purpose::Daemon => {
            docker_config.job_files = JobFiles::HostDirectory {
                root: Some(docker_jobs_root(config)),
            };
        }
    }
    docker_config
}

/// `container.docker_host` as the Gitea runner reads it: which engine, and whether its socket
/// goes into job containers (an empty value written in the file, or a `unix://` URL: yes; `-`
/// or no key at all: no). Whoever holds the socket owns the host: `generate-config` writes `-`.
fn apply_docker_host(docker_config: &mut DockerBackendConfig, wanted: &DockerHostUse) {
    let (engine, mount) = match wanted {
        DockerHostUse::Detect | DockerHostUse::DetectNoMount => (None, false),
        DockerHostUse::DetectAndMount => (None, true),
        DockerHostUse::Url(url) => (Some(url.clone()), true),
    };
    if mount {
        let url = engine
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        match url.strip_prefix("unix://") {
            Some(path) => {
                docker_config.mount_docker_socket = true;
                docker_config.docker_socket_path = path.to_owned();
                tracing::warn!(
                    "container.docker_host mounts the Docker socket {path} into job containers: \
                     every job may control the engine, and so this machine (docker_host: \"-\" \
                     keeps it out)"
                );
            }
            None => tracing::warn!(
                "container.docker_host: the engine {url} is no unix socket; nothing is mounted \
                 into job containers"
            ),
        }
    }
    docker_config.docker_host = engine;
}

/// `container.network`: empty is runnel's shared `runnel-jobs` bridge (jobs reach the
/// internet and their services, not each other; act_runner makes a network per job instead,
/// which costs about 0.3 s a job and isolates no better); `bridge` is Docker's default
/// bridge; any other name (`host` included) an existing network.
pub fn job_network(configured: &str) -> JobNetwork {
    match configured.trim() {
        "" => JobNetwork::Shared,
        "bridge" => JobNetwork::DefaultBridge,
        name => JobNetwork::Existing(name.to_owned()),
    }
}

/// Where Docker jobs' directories (bind-mounted at `/__w`) go: `docker-jobs` under
/// `host.workdir_parent`, else beside `.runner` (the runner's state, where the spool is too),
/// not in the system temp dir, which is often a small tmpfs. Absolute: Docker mounts only those.
fn docker_jobs_root(config: &Config) -> PathBuf {
    let base = match &config.host.workdir_parent {
        Some(parent) => parent.clone(),
        None => config
            .runner
            .file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    absolute(&base.join("docker-jobs"))
}

pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// How long to wait for the engine.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Patience {
    /// One try (`runnel run`: a missing engine is said when a job needs it).
    Once,
    /// Retry every second for up to `container.docker_timeout` (a label needs Docker).
    Wait(Duration),
    /// One try, bounded in time (only host jobs' services would need it), so a runner with
    /// host labels only starts promptly when `docker_host` is unreachable.
    Bounded,
}

impl Patience {
    pub(crate) fn for_daemon(config: &Config, wanted: bool) -> Patience {
        if wanted {
            Patience::Wait(config.container.docker_timeout)
        } else {
            Patience::Bounded
        }
    }
}

/// The Docker backend the daemon would make from `config`, connected once with no cleanup and
/// no retry (`runnel doctor`'s check); the error keeps its cause.
pub async fn connect_as_daemon(
    config: &Config,
) -> Result<DockerBackend, runnel_engine::backend::BackendError> {
    DockerBackend::connect(docker_config(config, &Purpose::Daemon)).await
}

/// Connects to the engine; or why not (a refused `container.options` is not retried).
pub(crate) async fn connect(
    docker_config: DockerBackendConfig,
    patience: Patience,
) -> Result<DockerBackend, String> {
    match patience {
        Patience::Once => DockerBackend::connect(docker_config)
            .await
            .map_err(|error| error.to_string()),
        Patience::Bounded => {
            match tokio::time::timeout(
                OPTIONAL_DOCKER_TIMEOUT,
                DockerBackend::connect(docker_config),
            )
            .await
            {
                Ok(connected) => connected.map_err(|error| error.to_string()),
                Err(_) => Err(format!(
                    "the Docker engine did not answer within {} s",
                    OPTIONAL_DOCKER_TIMEOUT.as_secs()
                )),
            }
        }
        Patience::Wait(docker_timeout) => {
            let deadline = tokio::time::Instant::now() + docker_timeout;
            loop {
                match DockerBackend::connect(docker_config.clone()).await {
                    Ok(docker) => return Ok(docker),
                    Err(error)
                        if tokio::time::Instant::now() < deadline
                            && !error.to_string().contains("container.options") =>
                    {
                        tracing::info!(%error, "waiting for the Docker engine (container.docker_timeout)");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(error) => return Err(error.to_string()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
