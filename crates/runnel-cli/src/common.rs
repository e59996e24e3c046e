//! What several subcommands share: the version declared to Gitea, reading a config file,
//! installing the log subscriber, the default cache directory, `--s3` URLs, and act's
//! `K=V` files.
//!
//! Owns: those helpers. Must not: import a subcommand module (they import this), or hold
//! logic a library could own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use runnel_config::Config;

/// The version declared to Gitea.
pub(crate) fn version() -> String {
    format!("runnel-{}", env!("CARGO_PKG_VERSION"))
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

/// `runnel run`'s cache directory: `$XDG_CACHE_HOME/runnel/cache`, else
/// `~/.cache/runnel/cache`.
pub(crate) fn default_cache_dir() -> PathBuf {
    runnel_engine::cache_home().join("cache")
}

/// `http(s)://host[:port]/BUCKET[/PREFIX]` as `cache.s3` would say it.
pub(crate) fn s3_section(url: &str) -> Result<runnel_config::S3Section> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| format!("S3 URL {url:?}: expected http(s)://host/BUCKET[/PREFIX]"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    anyhow::ensure!(
        !host.is_empty() && !bucket.is_empty(),
        "S3 URL {url:?}: expected http(s)://host/BUCKET[/PREFIX]"
    );
    let prefix = match prefix.trim_end_matches('/') {
        "" => String::new(),
        prefix => format!("{prefix}/"),
    };
    Ok(runnel_config::S3Section {
        endpoint: format!("{scheme}://{host}"),
        bucket: bucket.to_owned(),
        region: std::env::var("AWS_REGION").unwrap_or_default(),
        prefix,
        access_key: String::new(),
        secret_key: String::new(),
    })
}

/// The file a flag names, else act's default file in the working directory when it exists.
pub(crate) fn default_file(given: Option<&Path>, default: &str) -> Option<PathBuf> {
    match given {
        Some(path) => Some(path.to_path_buf()),
        None => Some(PathBuf::from(default)).filter(|path| path.is_file()),
    }
}

/// `K=V` lines (dotenv style: an `export ` prefix and quotes around the value are dropped);
/// blank lines and `#` comments are skipped.
pub(crate) fn read_key_values(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        match runnel_config::parse_env_line(line) {
            runnel_config::EnvLine::Blank => {}
            runnel_config::EnvLine::Pair(key, value) if !key.is_empty() => pairs.push((key, value)),
            _ => bail!("{}:{}: expected KEY=VALUE", path.display(), index + 1),
        }
    }
    Ok(pairs)
}

/// `flag K=V` values over a file of them (`file`, else `default` when it exists); `flag K`
/// alone takes the value from this environment.
pub(crate) fn key_values_with_file(
    given: &[String],
    file: Option<&Path>,
    default: &str,
    flag: &str,
) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    if let Some(path) = default_file(file, default) {
        values.extend(read_key_values(&path)?);
    }
    for item in given {
        match item.split_once('=') {
            Some((name, value)) => {
                values.insert(name.to_owned(), value.to_owned());
            }
            None => {
                let value = std::env::var(item).with_context(|| {
                    format!(
                        "`{flag} {item}`: give `{flag} {item}=VALUE` or set it in the environment"
                    )
                })?;
                values.insert(item.clone(), value);
            }
        }
    }
    Ok(values)
}
