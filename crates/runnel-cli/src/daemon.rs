//! `runnel daemon`: loads the config, installs the log subscriber, plugs the backends in (the
//! host backend always, with services in Docker; Docker, configured from `container:`, when
//! the engine answers, after removing what runners that died left there) and runs
//! `runnel_daemon::run_daemon` until SIGTERM/SIGINT or, with `--once`, one job.
//!
//! Every act_runner `container:` key is applied (`docker_config`): `options` (through the
//! options allow-list), `privileged` (job, service and step containers privileged, as
//! act_runner does), `workdir_parent` (a value other than the default `workspace` moves the
//! workspace to `/<value>/workspace`), `force_pull`, `force_rebuild`, and `docker_timeout` (how
//! long to wait for the engine at start, and how long a pull may go without progress).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use runnel_backends::docker::{
    DockerBackend, DockerBackendConfig, JobFiles, JobNetwork, RegistryAuth,
};
use runnel_backends::host::{HostBackend, HostConfig, HostWithDockerServices, WorkspaceMode};
use runnel_config::{Config, DockerHostUse, LabelKind};
use runnel_daemon::{Backends, DaemonOptions};
use runnel_engine::backend::Backend;
use tokio_util::sync::CancellationToken;

use crate::Outcome;
use crate::args::DaemonArgs;

/// The version declared to Gitea.
pub(crate) fn version() -> String {
    format!("runnel-{}", env!("CARGO_PKG_VERSION"))
}

pub(crate) fn run(args: &DaemonArgs) -> Result<Outcome> {
    let config = match &args.config {
        Some(path) => load_config(path)?,
        None => Config::default(),
    };
    init_logging(&config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        let backends = backends(&config).await?;
        let shutdown = CancellationToken::new();
        runnel_daemon::cancel_on_signals(shutdown.clone()).context("install signal handlers")?;
        runnel_backends::host::restore_default_signals_for_steps();
        let options = DaemonOptions {
            config,
            config_path: args.config.clone(),
            once: args.once,
            version: version(),
        };
        runnel_daemon::run_daemon(options, backends, shutdown).await?;
        Ok(Outcome::Success)
    })
}

/// Reads a config file; unknown keys are logged as warnings once logging is up.
pub(crate) fn load_config(path: &Path) -> Result<Config> {
    let loaded = Config::load(path)?;
    for warning in &loaded.warnings {
        eprintln!("runnel: warning: {warning}");
    }
    Ok(loaded.config)
}

/// Logs to stderr at `log.level`; `RUST_LOG` overrides it. Colours only on a terminal (not
/// in the journal or a log file) and never with `NO_COLOR`.
pub(crate) fn init_logging(level: &str) {
    use std::io::IsTerminal;
    let level = match level {
        "warning" => "warn",
        "fatal" | "panic" => "error",
        other => other,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

/// The backends the config's labels need; an error when `container.require_docker` is set
/// and no Docker engine answers (the Gitea runner exits then too).
async fn backends(config: &Config) -> Result<Backends> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let root = config
        .host
        .workdir_parent
        .clone()
        .or_else(|| home.map(|h| h.join(".cache/act")));
    let host = HostBackend::new(HostConfig {
        root,
        workspace: WorkspaceMode::Copy,
        withhold_runner_env: true,
        ..HostConfig::default()
    });
    // Process groups and job directories of a runnel killed mid-job would otherwise stay.
    host.cleanup_leftovers();
    let labels = if config.runner.labels.is_empty() {
        runnel_protocol::runner_file::RunnerFile::load(&config.runner.file)
            .map(|f| f.labels)
            .unwrap_or_default()
    } else {
        config.runner.labels.clone()
    };
    let wants_docker = config.container.require_docker
        || runnel_config::parse_labels(&labels)
            .0
            .iter()
            .any(|l| matches!(l.kind, LabelKind::Docker { .. }));
    let docker = connect_docker(config, wants_docker).await;
    if config.container.require_docker
        && let Err(reason) = &docker
    {
        anyhow::bail!("container.require_docker is set and Docker is not available: {reason}");
    }
    Ok(Backends {
        // Host jobs' `services:` run as containers publishing on 127.0.0.1 when Docker
        // answers; otherwise such a job fails saying so.
        host: Arc::new(HostWithDockerServices::new(host, docker.clone())),
        docker: docker.map(|docker| docker as Arc<dyn Backend>),
    })
}

/// The Docker backend, after removing what runners that died left there; or why there is
/// none. Tried even when no label is `docker://` (host jobs' services need it), then bounded
/// in time so a runner with host labels only starts promptly when `docker_host` is unreachable.
async fn connect_docker(config: &Config, wanted: bool) -> Result<Arc<DockerBackend>, String> {
    let docker_config = docker_config(config);
    let connected = if wanted {
        connect_waiting(docker_config, config.container.docker_timeout).await
    } else {
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
    };
    let docker = match connected {
        Ok(docker) => docker,
        Err(error) if wanted => {
            tracing::warn!(%error, "Docker is not available; jobs with docker:// labels will fail");
            return Err(error);
        }
        Err(error) => {
            tracing::info!(%error, "Docker is not available; host jobs with services: will fail");
            return Err(error);
        }
    };
    // Containers, networks and volumes of a runnel killed mid-job (its pid is gone) would
    // otherwise stay forever.
    match docker.cleanup_leftovers().await {
        Ok(report) => {
            for name in report
                .containers
                .iter()
                .chain(&report.networks)
                .chain(&report.volumes)
            {
                tracing::info!(name, "removed a leftover of a dead runner");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot remove leftovers of dead runners"),
    }
    Ok(Arc::new(docker))
}

/// How long a runner whose labels need no Docker waits for it at start.
const OPTIONAL_DOCKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connects, retrying every second for up to `docker_timeout` (act_runner's wait for a
/// Docker engine that starts with the machine, as the runner does); zero: one try. A
/// refused `container.options` is not retried.
async fn connect_waiting(
    docker_config: DockerBackendConfig,
    docker_timeout: std::time::Duration,
) -> Result<DockerBackend, String> {
    let deadline = tokio::time::Instant::now() + docker_timeout;
    loop {
        match DockerBackend::connect(docker_config.clone()).await {
            Ok(docker) => return Ok(docker),
            Err(error)
                if tokio::time::Instant::now() < deadline
                    && !error.to_string().contains("container.options") =>
            {
                tracing::info!(%error, "waiting for the Docker engine (container.docker_timeout)");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// The Docker backend's options from `container:` (and where job directories go).
fn docker_config(config: &Config) -> DockerBackendConfig {
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
    docker_config.job_files = JobFiles::HostDirectory {
        root: Some(docker_jobs_root(config)),
    };
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
fn job_network(configured: &str) -> JobNetwork {
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

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        match Config::parse("config.yaml", text) {
            Ok(loaded) => loaded.config,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn container_keys_reach_the_docker_backend() {
        let config = parse(
            "runner:\n  file: /var/lib/runnel/.runner\ncontainer:\n  network: ci-net\n  \
             ca_bundle: /etc/ssl/corp.pem\n  privileged: true\n  valid_volumes: ['/data/**']\n",
        );
        let docker = docker_config(&config);
        assert_eq!(docker.ca_bundle, Some(PathBuf::from("/etc/ssl/corp.pem")));
        assert_eq!(
            docker.job_network,
            JobNetwork::Existing("ci-net".to_owned())
        );
        assert!(docker.allow_privileged);
        assert_eq!(docker.valid_volumes, vec!["/data/**".to_owned()]);
        assert_eq!(
            docker.job_files,
            JobFiles::HostDirectory {
                root: Some(PathBuf::from("/var/lib/runnel/docker-jobs"))
            }
        );
        assert!(!docker.mount_docker_socket, "the safe default stays");
    }

    #[test]
    fn docker_host_means_what_it_means_to_the_gitea_runner() {
        let mounted = |text: &str| {
            let docker = docker_config(&parse(text));
            (
                docker.docker_host.clone(),
                docker
                    .mount_docker_socket
                    .then(|| docker.docker_socket_path.clone()),
            )
        };
        // No key: runnel's safe default. `-`: the same, said out loud.
        assert_eq!(mounted("container:\n  network: ''\n"), (None, None));
        assert_eq!(mounted("container:\n  docker_host: '-'\n"), (None, None));
        // Written empty (the Gitea runner's generated config): the engine found, mounted.
        let (engine, socket) = mounted("container:\n  docker_host: ''\n");
        assert_eq!(engine, None);
        assert!(socket.is_some_and(|path| path.ends_with(".sock")));
        // A URL: that engine; a unix socket is mounted, a TCP engine cannot be.
        assert_eq!(
            mounted("container:\n  docker_host: unix:///run/user/1000/docker.sock\n"),
            (
                Some("unix:///run/user/1000/docker.sock".to_owned()),
                Some("/run/user/1000/docker.sock".to_owned())
            )
        );
        assert_eq!(
            mounted("container:\n  docker_host: tcp://10.0.0.5:2375\n"),
            (Some("tcp://10.0.0.5:2375".to_owned()), None)
        );
        // What generate-config writes keeps the socket out.
        let example = docker_config(&parse(runnel_config::EXAMPLE_CONFIG));
        assert!(!example.mount_docker_socket);
    }

    #[test]
    fn act_runner_container_keys_are_applied() {
        let config = parse(
            "container:\n  options: '--memory 2g -e CI_OWNER=ops'\n  privileged: true\n  \
             workdir_parent: /ci/\n  force_pull: true\n  force_rebuild: true\n  \
             docker_timeout: 45s\n",
        );
        let docker = docker_config(&config);
        assert_eq!(docker.job_options, ["--memory 2g -e CI_OWNER=ops"]);
        assert!(docker.privileged && docker.allow_privileged);
        assert_eq!(docker.workspace_parent.as_deref(), Some("ci"));
        assert!(docker.force_pull && docker.force_rebuild);
        assert_eq!(
            docker.pull_stall_timeout,
            Some(std::time::Duration::from_secs(45))
        );
        assert_eq!(docker.registry_auth, RegistryAuth::DockerConfig);

        // The example config's values change nothing: GitHub's /__w layout, no extra options,
        // nothing privileged, pulls only when missing and without a time limit.
        let example = parse(runnel_config::EXAMPLE_CONFIG);
        let docker = docker_config(&example);
        assert!(docker.job_options.is_empty());
        assert_eq!(docker.workspace_parent, None);
        assert!(!docker.privileged && !docker.allow_privileged);
        assert_eq!(docker.pull_stall_timeout, None);
        assert_eq!(
            (docker.force_pull, docker.force_rebuild),
            (example.container.force_pull, false)
        );
    }

    #[test]
    fn container_network_values() {
        for (configured, expected) in [
            ("", JobNetwork::Shared),
            ("  ", JobNetwork::Shared),
            ("bridge", JobNetwork::DefaultBridge),
            ("host", JobNetwork::Existing("host".to_owned())),
            ("my-net", JobNetwork::Existing("my-net".to_owned())),
        ] {
            assert_eq!(job_network(configured), expected, "{configured:?}");
        }
    }

    #[test]
    fn docker_job_directories_live_under_the_runners_work_dir() {
        let config = parse("host:\n  workdir_parent: /srv/runner/work\n");
        assert_eq!(
            docker_jobs_root(&config),
            PathBuf::from("/srv/runner/work/docker-jobs")
        );
        // Default `.runner` in the working directory: an absolute path below it.
        let root = docker_jobs_root(&Config::default());
        assert!(root.is_absolute(), "{}", root.display());
        assert!(root.ends_with("docker-jobs"), "{}", root.display());
        assert_eq!(docker_config(&Config::default()).ca_bundle, None);
        assert_eq!(
            docker_config(&Config::default()).job_network,
            JobNetwork::Shared
        );
    }
}
