//! `runnel cache-server`: the cache service alone, for the runners of a fleet whose
//! `cache.external_server` names it. Settings come from flags, else from the `cache:` section
//! of `-c config.yaml` (`dir`, `port`, `size_limit`, the sweep's `retention`,
//! `repo_size_limit` and `sweep_interval`, `s3`, `shared_secret(_file)`), else the
//! defaults. Job tokens are checked with the shared secret; `--no-auth` serves anyone (for
//! act_runner configs that have no secret). Prints where it listens; SIGTERM or SIGINT stops
//! accepting, lets requests in flight finish (up to [`DRAIN_TIMEOUT`]) and exits 0.
//!
//! Wiring only: the server is `runnel_assembly::grants::start_standalone`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result};
use runnel_assembly::grants::{CacheSettings, DEFAULT_SIZE_LIMIT, SharedSecret};
use runnel_config::Config;
use tokio_util::sync::CancellationToken;

use crate::Outcome;
use crate::args::CacheServerArgs;

/// How long requests in flight may take to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn run(args: &CacheServerArgs) -> Result<Outcome> {
    let config = match &args.config {
        Some(path) => crate::common::load_config(path)?,
        None => Config::default(),
    };
    crate::common::init_logging(&config.log.level);
    let settings = settings(args, &config)?;
    let listen = SocketAddr::new(
        args.addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        args.port.unwrap_or(config.cache.port),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        runnel_daemon::cancel_on_signals(shutdown.clone()).context("install signal handlers")?;
        let server = runnel_assembly::grants::start_standalone(&settings, listen, args.no_auth)
            .await
            .context("starting the cache server")?;
        let store = match &settings.s3 {
            Some(s3) => format!("S3 {}/{}/{}", s3.endpoint, s3.bucket, s3.prefix),
            None => settings.dir.display().to_string(),
        };
        let auth = if args.no_auth {
            "no authentication"
        } else {
            "job tokens signed with the shared secret"
        };
        println!(
            "runnel cache-server listening on http://{}/ (store: {store}; {auth})",
            server.local_addr()
        );
        if args.no_auth {
            tracing::warn!(
                "--no-auth: any client that reaches this port can read and overwrite the cache \
                 entries of every repository"
            );
        }
        shutdown.cancelled().await;
        tracing::info!("stopping: waiting for requests in flight");
        if tokio::time::timeout(DRAIN_TIMEOUT, server.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?DRAIN_TIMEOUT,
                "requests still in flight after the drain timeout; exiting anyway"
            );
        }
        Ok(Outcome::Success)
    })
}

/// The store and secret: flags first, then the config's `cache:` section.
fn settings(args: &CacheServerArgs, config: &Config) -> Result<CacheSettings> {
    let s3 = match &args.s3 {
        Some(url) => Some(crate::common::s3_section(url)?),
        None => config.cache.s3.clone(),
    };
    let shared_secret = match &args.secret_file {
        Some(file) => SharedSecret::File(file.clone()),
        None => SharedSecret::from_config(&config.cache),
    };
    Ok(CacheSettings {
        dir: args
            .dir
            .clone()
            .unwrap_or_else(|| runnel_assembly::grants::config_dir(config)),
        host: String::new(),
        port: 0,
        external_server: String::new(),
        size_limit: args
            .size_limit
            .or(config.cache.size_limit)
            .unwrap_or(DEFAULT_SIZE_LIMIT),
        docker_host: None,
        s3,
        serve_artifacts: false,
        shared_secret,
        eviction: runnel_assembly::grants::eviction(&config.cache),
        sweep_interval: config.cache.sweep_interval,
    })
}
