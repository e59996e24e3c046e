//! The cache service of `runnel run`: started in-process by default (like act's), with a minted
//! token per job, so `actions/cache`, `@actions/cache` and `upload/download-artifact@v4` work
//! locally. `--no-cache-server` turns it off; `--cache-server-path`, `--cache-server-addr` and
//! `--cache-server-port` mean what act's flags of the same names mean; `--cache-size-limit`
//! bounds the store.
//!
//! Wiring only: the service is `runnel_daemon::cache`, the protocols `runnel_cache`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use runnel_daemon::cache::{CacheServices, CacheSettings, DEFAULT_SIZE_LIMIT, LocalServices};
use runnel_engine::JobServices;

use crate::args::RunArgs;

/// `$XDG_CACHE_HOME/runnel/cache`, else `~/.cache/runnel/cache`.
pub(crate) fn default_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir)
        .join("runnel")
        .join("cache")
}

/// The services `runnel run` hands its jobs; `None` with `--no-cache-server`.
pub(crate) async fn run_services(args: &RunArgs) -> Result<Option<Arc<dyn JobServices>>> {
    if args.no_cache_server {
        return Ok(None);
    }
    let settings = CacheSettings {
        dir: args.cache_server_path.clone().unwrap_or_else(default_dir),
        host: args.cache_server_addr.clone().unwrap_or_default(),
        port: args.cache_server_port,
        external_server: String::new(),
        size_limit: args.cache_size_limit.unwrap_or(DEFAULT_SIZE_LIMIT),
        docker_host: None,
        serve_artifacts: true,
    };
    let cache = CacheServices::start(&settings)
        .await
        .with_context(|| format!("starting the cache server in {}", settings.dir.display()))?;
    tracing::debug!(cache = ?cache, "cache server started");
    Ok(Some(Arc::new(LocalServices::new(cache))))
}
