//! The cache service of `runnel run`: started in-process by default (like act's), with a minted
//! token per job, so `actions/cache`, `@actions/cache` and `upload/download-artifact@v4` work
//! locally. `--no-cache-server` turns it off; `--cache-server-path`, `--cache-server-addr` and
//! `--cache-server-port` mean what act's flags of the same names mean; `--cache-size-limit`
//! bounds the store; `--cache-s3` keeps entries in an S3 bucket instead;
//! `--cache-external-server` with `--cache-secret-file` uses a fleet's `runnel cache-server`
//! for the cache (artifacts stay here).
//!
//! Wiring only: the flags become `config.yaml`'s `cache:` section; the service is
//! `runnel_assembly::grants`, the protocols `runnel_cache`.

use anyhow::Result;
use runnel_config::CacheSection;

use crate::args::RunArgs;
use crate::common::s3_section;

/// `runnel run`'s cache flags as `config.yaml`'s `cache:` section (the run's default directory
/// is its own, not the daemon's `~/.cache/actcache`).
pub(crate) fn apply_flags(args: &RunArgs, cache: &mut CacheSection) -> Result<()> {
    cache.enabled = !args.no_cache_server;
    cache.dir = Some(
        args.cache_server_path
            .clone()
            .unwrap_or_else(crate::common::default_cache_dir),
    );
    cache.host = args.cache_server_addr.clone().unwrap_or_default();
    cache.port = args.cache_server_port;
    cache.external_server = args.cache_external_server.clone().unwrap_or_default();
    cache.size_limit = args.cache_size_limit;
    cache.s3 = args.cache_s3.as_deref().map(s3_section).transpose()?;
    cache.shared_secret_file = args.cache_secret_file.clone();
    if cache.enabled && args.cache_external_server.is_some() && args.cache_secret_file.is_none() {
        // `runnel run` installs no log subscriber: the service's own warning would not show.
        eprintln!(
            "runnel: warning: --cache-external-server without --cache-secret-file: jobs get the \
             URL alone, so that server must run with --no-auth, where any job can read and \
             overwrite the entries of every repository"
        );
    }
    Ok(())
}
