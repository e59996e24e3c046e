//! `runnel run`'s and `runnel exec`'s flags as `config.yaml`'s keys, so a local run is
//! assembled as the daemon is (`runnel_assembly`): `-P` mappings are labels, `--env` is
//! `runner.envs`, the cache flags are `cache:` (the in-process cache and artifact server, like
//! act's: `--no-cache-server`, `--cache-server-path/-addr/-port` as act's flags,
//! `--cache-size-limit`, `--cache-s3`, `--cache-external-server` with `--cache-secret-file`),
//! the image and container flags (act's `--network`, `--privileged`, `--container-options`,
//! `--container-cap-add/-drop`, `--userns`) `container:`.
//!
//! Owns: that mapping. Must not: start anything.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use runnel_config::{CacheSection, Config, ContainerSection, LabelKind, ToolCacheMode};

use crate::args::{ContainerArgs, RunArgs};
use crate::common::{key_values_with_file, s3_section};

/// What `exec` decides that `run`'s flags cannot say.
#[derive(Debug, Clone)]
pub(crate) struct ExecSettings {
    /// Where every job runs.
    pub(crate) unmatched: LabelKind,
    /// `--container-daemon-socket` as `container.docker_host`.
    pub(crate) docker_host: Option<String>,
    /// `github.server_url` and friends.
    pub(crate) gitea_instance: Option<String>,
    /// `--tool-cache-mode` as `runner.tool_cache_mode`.
    pub(crate) tool_cache_mode: ToolCacheMode,
}

/// `--env`/`--env-file`: what every step's process starts with.
pub(crate) fn env_from_args(args: &RunArgs) -> Result<BTreeMap<String, String>> {
    key_values_with_file(&args.env, args.env_file.as_deref(), ".env", "--env")
}

/// The flags mapped onto `config.yaml`'s keys, so that a local run is assembled as the daemon
/// is: `-P` mappings are labels, `--env` is `runner.envs`, the cache flags are `cache:`, the
/// image flags `container:` (Docker's default bridge, as `docker run` and act: a local run's
/// jobs need no isolation from each other, and it starts containers sooner).
pub(crate) fn config_from_args(args: &RunArgs, exec: Option<&ExecSettings>) -> Result<Config> {
    let mut config = Config::default();
    config.runner.labels = labels_from_platforms(&args.platforms)?;
    config.runner.envs = env_from_args(args)?;
    apply_cache_flags(args, &mut config.cache)?;
    let container = &mut config.container;
    container.network = "bridge".to_owned();
    container.ca_bundle = args.ca_bundle.clone();
    container.force_pull = args.pull;
    container.force_rebuild = args.rebuild;
    container.docker_timeout = std::time::Duration::ZERO;
    apply_container_flags(&args.container, container);
    if let Some(socket) = exec.and_then(|exec| exec.docker_host.as_ref()) {
        container.docker_host = socket.clone();
        container.docker_host_written = true;
    }
    if let Some(exec) = exec {
        config.runner.tool_cache_mode = exec.tool_cache_mode;
    }
    if let Some(path) = &args.config {
        // Only the vm and kubernetes backends' settings (where and how their jobs run): the
        // rest of a daemon's file is not a local run's.
        let file = crate::common::load_config(path)?;
        config.vm = file.vm;
        config.kubernetes = file.kubernetes;
    }
    Ok(config)
}

/// act's container flags (`run`'s and `exec`'s) as `container:` keys: `--network` is
/// `network`, `--privileged` `privileged`, and `--container-options`, `--container-cap-add`,
/// `--container-cap-drop` and `--userns` together `options`, as `docker run` reads them.
/// `--container-architecture` has no key (`LocalRun::container_platform`).
fn apply_container_flags(flags: &ContainerArgs, container: &mut ContainerSection) {
    if let Some(network) = &flags.network {
        container.network = network.clone();
    }
    container.privileged = flags.privileged;
    let mut options: Vec<String> = flags.options.iter().cloned().collect();
    options.extend(flags.cap_add.iter().map(|cap| format!("--cap-add {cap}")));
    options.extend(flags.cap_drop.iter().map(|cap| format!("--cap-drop {cap}")));
    options.extend(flags.userns.iter().map(|mode| format!("--userns {mode}")));
    container.options = options.join(" ");
}

/// `-P` mappings as act takes them (`LABEL=IMAGE`, `LABEL=docker://IMAGE`, and
/// `LABEL=-self-hosted`, also `host`, for this machine), and runnel's `LABEL=vm://IMAGE` (a
/// microVM per job) and `LABEL=kubernetes://IMAGE` (a pod per job on the cluster of
/// `KUBECONFIG`), as `config.yaml` labels.
fn labels_from_platforms(platforms: &[String]) -> Result<Vec<String>> {
    platforms
        .iter()
        .map(|platform| {
            let Some((label, target)) = platform.split_once('=') else {
                bail!("-P {platform}: expected LABEL=IMAGE, LABEL=docker://IMAGE, LABEL=vm://IMAGE or LABEL=-self-hosted");
            };
            let label = label.trim();
            Ok(match target.trim() {
                "-self-hosted" | "host" => format!("{label}:host"),
                "" => bail!("-P {platform}: no image after `=`"),
                vm if vm.starts_with("vm://") => format!("{label}:{vm}"),
                pod if pod.starts_with("kubernetes://") => format!("{label}:{pod}"),
                image => format!(
                    "{label}:docker://{}",
                    image.strip_prefix("docker://").unwrap_or(image)
                ),
            })
        })
        .collect()
}

/// `runnel run`'s cache flags as `config.yaml`'s `cache:` section (the run's default directory
/// is its own, not the daemon's `~/.cache/actcache`).
fn apply_cache_flags(args: &RunArgs, cache: &mut CacheSection) -> Result<()> {
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
    Ok(())
}
