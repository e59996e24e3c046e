//! `runnel daemon`: loads the config, installs the log subscriber, plugs the backends in (the
//! host backend always; Docker when a label needs it and the engine answers, after removing
//! what runners that died left there) and runs
//! `runnel_daemon::run_daemon` until SIGTERM/SIGINT or, with `--once`, one job.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use runnel_backends::docker::{DockerBackend, DockerBackendConfig};
use runnel_backends::host::{HostBackend, HostConfig, WorkspaceMode};
use runnel_config::{Config, LabelKind};
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
        let backends = backends(&config).await;
        let shutdown = CancellationToken::new();
        runnel_daemon::cancel_on_signals(shutdown.clone()).context("install signal handlers")?;
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

async fn backends(config: &Config) -> Backends {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let root = config
        .host
        .workdir_parent
        .clone()
        .or_else(|| home.map(|h| h.join(".cache/act")));
    let host = HostBackend::new(HostConfig {
        root,
        workspace: WorkspaceMode::Copy,
        ..HostConfig::default()
    });
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
    let docker: Result<Arc<dyn Backend>, String> = if wants_docker {
        let mut docker_config = DockerBackendConfig::safe_defaults();
        let docker_host = config.container.docker_host.trim();
        if !docker_host.is_empty() && docker_host != "-" {
            docker_config.docker_host = Some(docker_host.to_owned());
        }
        docker_config.valid_volumes = config.container.valid_volumes.clone();
        docker_config.allow_privileged = config.container.privileged;
        match DockerBackend::connect(docker_config).await {
            Ok(docker) => {
                // Containers, networks and volumes of a runnel killed mid-job (its pid is
                // gone) would otherwise stay forever.
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
            Err(error) => {
                tracing::warn!(%error, "Docker is not available; jobs with docker:// labels will fail");
                Err(error.to_string())
            }
        }
    } else {
        Err("no label of this runner uses docker://".to_owned())
    };
    Backends {
        host: Arc::new(host),
        docker,
    }
}
