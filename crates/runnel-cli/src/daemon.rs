//! `runnel daemon`: loads the config, installs the log subscriber, assembles the runner from it
//! (`runnel_assembly`: backends, cache service, leftovers of dead runners removed) and runs
//! `runnel_daemon::run_daemon` until SIGTERM/SIGINT or, with `--once`, one job.

use std::sync::Arc;

use anyhow::{Context, Result};
use runnel_assembly::{Assembly, Purpose};
use runnel_config::Config;
use runnel_daemon::DaemonOptions;
use tokio_util::sync::CancellationToken;

use crate::Outcome;
use crate::args::DaemonArgs;
use crate::common::{init_logging, load_config, version};

pub(crate) fn run(args: &DaemonArgs) -> Result<Outcome> {
    let mut config = match &args.config {
        Some(path) => load_config(path)?,
        None => Config::default(),
    };
    let labels = args.labels();
    if !labels.is_empty() {
        config.runner.labels = labels.clone();
    }
    init_logging(&config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        // An error when `container.require_docker` is set and no Docker engine answers (the
        // Gitea runner exits then too).
        let assembly = Arc::new(Assembly::start(&config, Purpose::Daemon).await?);
        let shutdown = CancellationToken::new();
        runnel_daemon::cancel_on_signals(shutdown.clone()).context("install signal handlers")?;
        runnel_backends::host::restore_default_signals_for_steps();
        let options = DaemonOptions {
            config,
            config_path: args.config.clone(),
            once: args.once,
            version: version(),
            labels,
        };
        runnel_daemon::run_daemon(options, assembly, shutdown).await?;
        Ok(Outcome::Success)
    })
}
