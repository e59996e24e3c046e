//! What a workflow may ask of a container: `options:` through an allow-list (the runner's own
//! `-v` options handed to [`super::volumes`]), `ports:` parsed. Pure: strings in, checked
//! values out.
//!
//! Must not: talk to Docker. The Docker request bodies are filled in `pod`.
//!
//! ## Allowed `options:` (each `options` entry is shell-split, as `docker create` would)
//!
//! | option | note |
//! |---|---|
//! | `--health-cmd`, `--health-interval`, `--health-timeout`, `--health-retries`, `--health-start-period`, `--no-healthcheck` | waited on for services |
//! | `-e`/`--env K=V` | |
//! | `-u`/`--user`, `-w`/`--workdir`, `--entrypoint` | `--entrypoint` only for services (the job container's entrypoint keeps it alive) |
//! | `-h`/`--hostname`, `--add-host` | job container only: services share its network namespace, hostname and `/etc/hosts` |
//! | `--cpus`, `--cpu-shares`, `-m`/`--memory`, `--memory-swap`, `--memory-reservation`, `--shm-size`, `--pids-limit`, `--ulimit` | resource limits |
//! | `--tmpfs`, `--read-only`, `--init`, `-l`/`--label` (not `runnel.*`), `--stop-signal`, `--cap-drop` | |
//! | `--security-opt no-new-privileges` | other security options are refused |
//! | `--privileged`, `--cap-add`, `--device` | only when the backend config sets `allow_privileged` |
//!
//! Everything else is refused with a message; `--network`, `-v`, `--mount` and `-p` name the
//! workflow key to use instead. The operator may let workflows use more options
//! (`workflow_options_allowed` of the backend config, `container.workflow_options_allowed`):
//! those are read by [`docker_run`] and applied as the Docker CLI would.
//!
//! The runner's own options for job containers (`container.options`) are the operator's,
//! trusted: every `docker run` option that maps onto the create call applies as written
//! ([`docker_run`]), winning over the workflow's where both set one value. Their `-v` and
//! `--mount` bind sources need no `valid_volumes` entry, but the engine's socket (or a
//! directory holding it) only goes in when `docker_host` mounts it anyway
//! (`volumes::check_operator_volume`). `container.privileged` adds `--privileged` to job and
//! service containers ([`job_options`], [`service_options`]).

use std::collections::HashMap;

use bollard::models::{DeviceMapping, HealthConfig, ResourcesUlimits};

use super::volumes::{VolumeMount, VolumePolicy, check_operator_source, check_operator_volume};
use super::{DockerBackendConfig, JobNetwork};

pub(crate) mod docker_run;

use docker_run::DockerRunOptions;

#[cfg(test)]
mod tests;

/// Where an `options:` string is used: the rules differ for the job container and services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContainerRole {
    Job,
    Service,
}

/// A refused or malformed option, volume or port, with the text the workflow wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OptionError {
    #[error("option `{option}` is not allowed{reason}")]
    NotAllowed { option: String, reason: String },
    #[error("option `{option}` needs a value")]
    MissingValue { option: String },
    #[error("option `{option}`: `{value}` is not {expected}")]
    BadValue {
        option: String,
        value: String,
        expected: &'static str,
    },
    #[error("options `{text}`: unterminated quote")]
    UnterminatedQuote { text: String },
    #[error(
        "volume `{volume}` is not allowed: its source matches none of the backend's valid_volumes ({patterns})"
    )]
    VolumeNotAllowed { volume: String, patterns: String },
    #[error(
        "volume `{volume}` would mount the Docker socket: enable mount_docker_socket in the backend config to allow it"
    )]
    DockerSocket { volume: String },
    #[error("volume `{volume}`: {problem}")]
    BadVolume {
        volume: String,
        problem: &'static str,
    },
    #[error("port `{port}`: {problem}")]
    BadPort { port: String, problem: &'static str },
    #[error("container.options of the runner's config: {0}")]
    Runner(Box<OptionError>),
    #[error("option `{option}`: cannot read {path}: {problem}")]
    OptionFile {
        option: String,
        path: String,
        problem: String,
    },
    #[error("the options do not make a container Docker accepts: {problem}")]
    NotApplicable { problem: String },
    #[error(
        "volume `{volume}` would mount the Docker engine's socket: container.docker_host decides that \
         (empty or a unix:// URL mounts it into job containers; `-` keeps it out)"
    )]
    OperatorSocket { volume: String },
    #[error(
        "`--network {option}` and container.network `{configured}` name two networks: keep one"
    )]
    NetworkTwice { option: String, configured: String },
    #[error("container.workflow_options_allowed: `{option}` {problem}")]
    NotAllowable {
        option: String,
        problem: &'static str,
    },
}

/// Options that passed the allow-list, ready to be put into a create request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CheckedOptions {
    pub(crate) env: Vec<String>,
    pub(crate) health: Option<HealthConfig>,
    pub(crate) user: Option<String>,
    pub(crate) workdir: Option<String>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) hostname: Option<String>,
    pub(crate) add_hosts: Vec<String>,
    pub(crate) nano_cpus: Option<i64>,
    pub(crate) cpu_shares: Option<i64>,
    pub(crate) memory: Option<i64>,
    pub(crate) memory_swap: Option<i64>,
    pub(crate) memory_reservation: Option<i64>,
    pub(crate) shm_size: Option<i64>,
    pub(crate) pids_limit: Option<i64>,
    pub(crate) ulimits: Vec<ResourcesUlimits>,
    pub(crate) tmpfs: HashMap<String, String>,
    pub(crate) read_only: bool,
    pub(crate) init: Option<bool>,
    pub(crate) labels: HashMap<String, String>,
    pub(crate) stop_signal: Option<String>,
    pub(crate) cap_add: Vec<String>,
    pub(crate) cap_drop: Vec<String>,
    pub(crate) security_opt: Vec<String>,
    pub(crate) privileged: bool,
    pub(crate) devices: Vec<DeviceMapping>,
    /// Options outside the allow-list: those the operator lets workflows use, then the
    /// operator's own (applied last, so they win).
    pub(crate) docker_run: DockerRunOptions,
    /// A service's `command:`, split into arguments: replaces the image's `CMD`.
    pub(crate) cmd: Option<Vec<String>>,
}

/// The job container's options: the workflow's `options:`, then the runner's
/// (`config.job_options`, whose values win), and `--privileged` when the runner runs
/// containers privileged. The runner's `-v`/`--volume` come back as mounts.
pub(crate) fn job_options(
    workflow: &[String],
    config: &DockerBackendConfig,
) -> Result<(CheckedOptions, Vec<VolumeMount>), OptionError> {
    let policy = WorkflowPolicy {
        role: ContainerRole::Job,
        allow_privileged: config.allow_privileged || config.privileged,
        extra: &config.workflow_options_allowed,
    };
    let mut options = check_workflow_options(workflow, &policy)?;
    let (runner, volumes) =
        operator_options(config).map_err(|error| OptionError::Runner(Box::new(error)))?;
    options.docker_run.append(runner);
    options.privileged |= config.privileged;
    Ok((options, volumes))
}

/// A service container's options: the workflow's, and `--privileged` when the runner runs
/// containers privileged (a `docker:dind` service needs it).
pub(crate) fn service_options(
    workflow: &[String],
    config: &DockerBackendConfig,
) -> Result<CheckedOptions, OptionError> {
    let policy = WorkflowPolicy {
        role: ContainerRole::Service,
        allow_privileged: config.allow_privileged || config.privileged,
        extra: &config.workflow_options_allowed,
    };
    let mut options = check_workflow_options(workflow, &policy)?;
    options.privileged |= config.privileged;
    Ok(options)
}

/// A service's `entrypoint:` and `command:` over its checked options: `entrypoint:` replaces
/// `--entrypoint`, `command:` is split into arguments as a shell would.
pub(crate) fn with_service_command(
    mut options: CheckedOptions,
    entrypoint: Option<&str>,
    command: Option<&str>,
) -> Result<CheckedOptions, OptionError> {
    if let Some(entrypoint) = entrypoint {
        options.entrypoint = Some(vec![entrypoint.to_owned()]);
    }
    if let Some(command) = command {
        options.cmd = Some(shell_split(command).map_err(|_| OptionError::BadValue {
            option: "command".to_owned(),
            value: command.to_owned(),
            expected: "a command line with balanced quotes",
        })?);
    }
    Ok(options)
}

/// The operator's `container.options`, parsed and checked: applied as written, except that
/// `--privileged` needs `container.privileged` (the Gitea runner ignores it otherwise) and
/// the engine's socket goes in only as `docker_host` says. Bind sources come back resolved.
pub(crate) fn operator_options(
    config: &DockerBackendConfig,
) -> Result<(DockerRunOptions, Vec<VolumeMount>), OptionError> {
    let mut parsed = docker_run::parse(&config.job_options)?;
    if parsed.privileged && !config.privileged {
        return Err(OptionError::NotAllowed {
            option: "--privileged".to_owned(),
            reason: ": set container.privileged: true instead (the Gitea runner ignores \
                     --privileged in container.options without it)"
                .to_owned(),
        });
    }
    let policy = VolumePolicy::of(config);
    let volumes = std::mem::take(&mut parsed.volumes)
        .iter()
        .map(|spec| check_operator_volume(spec, &policy))
        .collect::<Result<Vec<_>, _>>()?;
    for (source, mount) in &mut parsed.mounts {
        if let Some(written) = source {
            let resolved = check_operator_source(written, written, &policy)?;
            mount["Source"] = serde_json::Value::String(resolved);
        }
    }
    docker_run::check_applicable(&parsed)?;
    Ok((parsed, volumes))
}

/// The network job containers join once the operator's `--network` is taken into account:
/// it names the network as `container.network` does; both naming different ones is an error.
pub(crate) fn operator_network(config: &DockerBackendConfig) -> Result<JobNetwork, OptionError> {
    let parsed = docker_run::parse(&config.job_options)?;
    let Some(network) = parsed.network else {
        return Ok(config.job_network.clone());
    };
    let wanted = match network.as_str() {
        "bridge" => JobNetwork::DefaultBridge,
        _ => JobNetwork::Existing(network.clone()),
    };
    let configured = match &config.job_network {
        JobNetwork::Shared => return Ok(wanted),
        same if *same == wanted => return Ok(wanted),
        JobNetwork::Existing(configured) => configured.clone(),
        JobNetwork::DefaultBridge => "bridge".to_owned(),
        JobNetwork::PerJob => "(a network per job)".to_owned(),
    };
    Err(OptionError::NetworkTwice {
        option: network,
        configured,
    })
}

/// Options a workflow may never be allowed, whatever the operator lists: each has a
/// workflow key that is checked, or would hand the job the runner's host.
const NEVER_FOR_WORKFLOWS: &[(&str, &str)] = &[
    (
        "--volume",
        "is checked through `volumes:` and valid_volumes",
    ),
    ("--mount", "is checked through `volumes:` and valid_volumes"),
    ("--volumes-from", "would share another container's volumes"),
    ("--network", "is the runner's choice (container.network)"),
    (
        "--network-alias",
        "is the runner's choice (container.network)",
    ),
    ("--link", "is the runner's choice (container.network)"),
    ("--privileged", "is container.privileged's to set"),
    ("--env-file", "would read a file of the runner's machine"),
    ("--label-file", "would read a file of the runner's machine"),
];

/// Checks `container.workflow_options_allowed`: each entry a `docker run` option runnel
/// applies, and none that would bypass a checked workflow key.
pub(crate) fn check_allowed_list(allowed: &[String]) -> Result<(), OptionError> {
    for entry in allowed {
        let not_allowable = |problem| OptionError::NotAllowable {
            option: entry.clone(),
            problem,
        };
        let Some(long) = docker_run::long_name(entry) else {
            return Err(not_allowable(
                "is not a `docker run` option runnel can apply (write it as docker run does, e.g. --gpus)",
            ));
        };
        if let Some((_, problem)) = NEVER_FOR_WORKFLOWS.iter().find(|(name, _)| *name == long) {
            return Err(not_allowable(problem));
        }
    }
    Ok(())
}

/// What a workflow's `options:` may hold.
struct WorkflowPolicy<'a> {
    role: ContainerRole,
    allow_privileged: bool,
    /// Options the operator allows on top of the allow-list.
    extra: &'a [String],
}

/// Checks a workflow's `options:`: the options the operator allows beyond the list are read
/// as `docker run` reads them, the rest go through the allow-list.
fn check_workflow_options(
    entries: &[String],
    policy: &WorkflowPolicy<'_>,
) -> Result<CheckedOptions, OptionError> {
    let mut words = Vec::new();
    for entry in entries {
        words.extend(shell_split(entry)?);
    }
    let (listed, extra) = split_allowed(words, policy)?;
    let mut checked = check_words(listed, policy.role, policy.allow_privileged)?;
    if !extra.is_empty() {
        let parsed = docker_run::parse_words(extra)?;
        docker_run::check_applicable(&parsed)?;
        checked.docker_run = parsed;
    }
    Ok(checked)
}

/// Takes the options the operator allows (with their values) out of `words`.
fn split_allowed(
    words: Vec<String>,
    policy: &WorkflowPolicy<'_>,
) -> Result<(Vec<String>, Vec<String>), OptionError> {
    if policy.extra.is_empty() {
        return Ok((words, Vec::new()));
    }
    let allowed: Vec<&str> = policy
        .extra
        .iter()
        .filter_map(|entry| docker_run::long_name(entry))
        .filter(|long| !NEVER_FOR_WORKFLOWS.iter().any(|(name, _)| name == long))
        .collect();
    let mut listed = Vec::new();
    let mut extra = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let name = docker_run::option_name(&word).to_owned();
        let is_allowed = docker_run::long_name(&name).is_some_and(|long| allowed.contains(&long));
        if !is_allowed {
            listed.push(word);
            continue;
        }
        refuse_known(&name, policy.role)?;
        let inline = word.len() > name.len();
        extra.push(word);
        if docker_run::takes_value(&name) == Some(true) && !inline {
            let value = words
                .next()
                .ok_or(OptionError::MissingValue { option: name })?;
            extra.push(value);
        }
    }
    Ok((listed, extra))
}

/// Splits and checks `options:` entries against the allow-list in the module docs (the
/// Kubernetes backend reads services' options through it too).
pub(crate) fn check_options(
    entries: &[String],
    role: ContainerRole,
    allow_privileged: bool,
) -> Result<CheckedOptions, OptionError> {
    let policy = WorkflowPolicy {
        role,
        allow_privileged,
        extra: &[],
    };
    check_workflow_options(entries, &policy)
}

fn check_words(
    words: Vec<String>,
    role: ContainerRole,
    allow_privileged: bool,
) -> Result<CheckedOptions, OptionError> {
    let mut checked = CheckedOptions::default();
    let mut health = HealthConfig::default();
    let mut has_health = false;
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (name, inline_value) = split_inline(&word);
        if let Some(flag_value) = flag_option(&name) {
            let on = match inline_value.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => return Err(bad(&name, other, "true or false")),
            };
            match flag_value {
                Flag::NoHealthcheck => {
                    has_health = true;
                    health.test = on.then(|| vec!["NONE".to_owned()]);
                }
                Flag::ReadOnly => checked.read_only = on,
                Flag::Init => checked.init = Some(on),
                Flag::Privileged => {
                    require_privileged(&name, allow_privileged)?;
                    checked.privileged = on;
                }
            }
            continue;
        }
        refuse_known(&name, role)?;
        let mut value = || match inline_value.clone() {
            Some(value) => Ok(value),
            None => words.next().ok_or_else(|| OptionError::MissingValue {
                option: name.clone(),
            }),
        };
        match name.as_str() {
            "--health-cmd" => {
                has_health = true;
                health.test = Some(vec!["CMD-SHELL".to_owned(), value()?]);
            }
            "--health-interval" => {
                has_health = true;
                health.interval = Some(parse_duration(&name, &value()?)?);
            }
            "--health-timeout" => {
                has_health = true;
                health.timeout = Some(parse_duration(&name, &value()?)?);
            }
            "--health-start-period" => {
                has_health = true;
                health.start_period = Some(parse_duration(&name, &value()?)?);
            }
            "--health-retries" => {
                has_health = true;
                health.retries = Some(parse_int(&name, &value()?)?);
            }
            "-e" | "--env" => {
                let pair = value()?;
                if !pair.contains('=') {
                    return Err(bad(&name, &pair, "KEY=VALUE"));
                }
                checked.env.push(pair);
            }
            "-u" | "--user" => checked.user = Some(value()?),
            "-w" | "--workdir" => checked.workdir = Some(value()?),
            "--entrypoint" => checked.entrypoint = Some(vec![value()?]),
            "-h" | "--hostname" => checked.hostname = Some(value()?),
            "--add-host" => checked.add_hosts.push(value()?),
            "--cpus" => {
                let text = value()?;
                let cpus: f64 = text.parse().map_err(|_| bad(&name, &text, "a number"))?;
                checked.nano_cpus = Some((cpus * 1e9) as i64);
            }
            "--cpu-shares" => checked.cpu_shares = Some(parse_int(&name, &value()?)?),
            "-m" | "--memory" => checked.memory = Some(parse_size(&name, &value()?)?),
            "--memory-swap" => {
                let text = value()?;
                checked.memory_swap = Some(if text == "-1" {
                    -1
                } else {
                    parse_size(&name, &text)?
                });
            }
            "--memory-reservation" => {
                checked.memory_reservation = Some(parse_size(&name, &value()?)?);
            }
            "--shm-size" => checked.shm_size = Some(parse_size(&name, &value()?)?),
            "--pids-limit" => checked.pids_limit = Some(parse_int(&name, &value()?)?),
            "--ulimit" => {
                let text = value()?;
                checked.ulimits.push(parse_ulimit(&name, &text)?);
            }
            "--tmpfs" => {
                let text = value()?;
                let (path, opts) = text.split_once(':').unwrap_or((text.as_str(), ""));
                checked.tmpfs.insert(path.to_owned(), opts.to_owned());
            }
            "-l" | "--label" => {
                let text = value()?;
                let (key, label_value) = text.split_once('=').unwrap_or((text.as_str(), ""));
                if key.starts_with("runnel.") {
                    return Err(bad(
                        &name,
                        &text,
                        "a label outside runnel.* (runnel owns those)",
                    ));
                }
                checked
                    .labels
                    .insert(key.to_owned(), label_value.to_owned());
            }
            "--stop-signal" => checked.stop_signal = Some(value()?),
            "--cap-drop" => checked.cap_drop.push(value()?),
            "--cap-add" => {
                require_privileged(&name, allow_privileged)?;
                checked.cap_add.push(value()?);
            }
            "--device" => {
                require_privileged(&name, allow_privileged)?;
                checked.devices.push(parse_device(&value()?));
            }
            "--security-opt" => {
                let text = value()?;
                if !matches!(
                    text.as_str(),
                    "no-new-privileges" | "no-new-privileges:true"
                ) {
                    return Err(OptionError::NotAllowed {
                        option: format!("{name} {text}"),
                        reason: ": only `no-new-privileges` is allowed".to_owned(),
                    });
                }
                checked.security_opt.push(text);
            }
            _ => {
                return Err(OptionError::NotAllowed {
                    option: name.clone(),
                    reason: " (see the Docker backend's allow-list)".to_owned(),
                });
            }
        }
    }
    if has_health {
        checked.health = Some(health);
    }
    Ok(checked)
}

enum Flag {
    NoHealthcheck,
    ReadOnly,
    Init,
    Privileged,
}

fn flag_option(name: &str) -> Option<Flag> {
    Some(match name {
        "--no-healthcheck" => Flag::NoHealthcheck,
        "--read-only" => Flag::ReadOnly,
        "--init" => Flag::Init,
        "--privileged" => Flag::Privileged,
        _ => return None,
    })
}

/// Options with a better place in the workflow, or that would break the pod, get a reason.
fn refuse_known(name: &str, role: ContainerRole) -> Result<(), OptionError> {
    let reason = match name {
        "--network" | "--net" | "--network-alias" | "--link" => {
            ": runnel manages the job's network (services share the job container's network namespace)"
        }
        "-v" | "--volume" | "--mount" | "--volumes-from" => {
            ": use the `volumes:` key (checked against the backend's valid_volumes)"
        }
        "-p" | "--publish" | "-P" | "--publish-all" => ": use the `ports:` key",
        "--pid" | "--ipc" | "--uts" | "--userns" | "--cgroupns" | "--cgroup-parent" => {
            ": it would share a host namespace"
        }
        "--name" | "--rm" | "-d" | "--detach" | "-it" | "-i" | "-t" => ": runnel sets it",
        "-h" | "--hostname" | "--add-host" | "--dns" if role == ContainerRole::Service => {
            ": services share the job container's network namespace, hostname and /etc/hosts"
        }
        "--entrypoint" if role == ContainerRole::Job => {
            ": the job container's entrypoint keeps it running between steps"
        }
        _ => return Ok(()),
    };
    Err(OptionError::NotAllowed {
        option: name.to_owned(),
        reason: reason.to_owned(),
    })
}

fn require_privileged(name: &str, allow_privileged: bool) -> Result<(), OptionError> {
    if allow_privileged {
        return Ok(());
    }
    Err(OptionError::NotAllowed {
        option: name.to_owned(),
        reason: ": enable allow_privileged in the backend config to allow it".to_owned(),
    })
}

fn bad(option: &str, value: &str, expected: &'static str) -> OptionError {
    OptionError::BadValue {
        option: option.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

fn parse_int(option: &str, text: &str) -> Result<i64, OptionError> {
    text.parse().map_err(|_| bad(option, text, "an integer"))
}

/// Go's `time.ParseDuration` subset Docker accepts: `1h2m3.5s`, `500ms`, `10us`. Nanoseconds.
/// `--name=value` as the name and its inline value; any other word as itself, with none.
pub(crate) fn split_inline(word: &str) -> (String, Option<String>) {
    match word.split_once('=') {
        Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value.to_owned())),
        _ => (word.to_owned(), None),
    }
}

pub(crate) fn parse_duration(option: &str, text: &str) -> Result<i64, OptionError> {
    const EXPECTED: &str = "a duration like 10s, 1m30s or 500ms";
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad(option, text, EXPECTED));
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let number: f64 = number.parse().map_err(|_| bad(option, text, EXPECTED))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad(option, text, EXPECTED)),
        };
        total += number * scale;
        rest = after;
    }
    Ok(total as i64)
}

/// Docker's memory sizes: `512m`, `1g`, `1024k`, `100` (bytes), binary multiples.
fn parse_size(option: &str, text: &str) -> Result<i64, OptionError> {
    const EXPECTED: &str = "a size like 512m or 1g";
    let lower = text.to_ascii_lowercase();
    let number_len = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(number_len);
    let number: f64 = number.parse().map_err(|_| bad(option, text, EXPECTED))?;
    let scale: f64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad(option, text, EXPECTED)),
    };
    Ok((number * scale) as i64)
}

fn parse_ulimit(option: &str, text: &str) -> Result<ResourcesUlimits, OptionError> {
    const EXPECTED: &str = "NAME=SOFT[:HARD]";
    let (name, limits) = text
        .split_once('=')
        .ok_or_else(|| bad(option, text, EXPECTED))?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let soft = soft.parse().map_err(|_| bad(option, text, EXPECTED))?;
    let hard = hard.parse().map_err(|_| bad(option, text, EXPECTED))?;
    Ok(ResourcesUlimits {
        name: Some(name.to_owned()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

fn parse_device(text: &str) -> DeviceMapping {
    let mut parts = text.splitn(3, ':');
    let host = parts.next().unwrap_or_default().to_owned();
    let container = parts.next().map_or_else(|| host.clone(), str::to_owned);
    let permissions = parts.next().unwrap_or("rwm").to_owned();
    DeviceMapping {
        path_on_host: Some(host),
        path_in_container: Some(container),
        cgroup_permissions: Some(permissions),
    }
}

/// Splits like a POSIX shell without expansions: whitespace separates words, quotes group,
/// a backslash escapes the next character (inside double quotes only before `"`, `\`, `$`, `` ` ``).
pub(crate) fn shell_split(text: &str) -> Result<Vec<String>, OptionError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(unterminated(text)),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(unterminated(text)),
                        },
                        Some(c) => word.push(c),
                        None => return Err(unterminated(text)),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(c) => word.push(c),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn unterminated(text: &str) -> OptionError {
    OptionError::UnterminatedQuote {
        text: text.to_owned(),
    }
}

/// A checked `ports:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortMapping {
    /// `5432/tcp`.
    pub(crate) container_port: String,
    pub(crate) host_ip: String,
    /// Empty: Docker picks a free port.
    pub(crate) host_port: String,
}

/// Parses `80`, `80/udp`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`. Ports are published
/// on 127.0.0.1 unless an address is written: a job's services are not for the whole network.
pub(crate) fn parse_port(spec: &str) -> Result<PortMapping, OptionError> {
    let bad_port = |problem| OptionError::BadPort {
        port: spec.to_owned(),
        problem,
    };
    let (mapping, protocol) = match spec.rsplit_once('/') {
        Some((mapping, protocol @ ("tcp" | "udp" | "sctp"))) => (mapping, protocol),
        Some(_) => return Err(bad_port("the protocol must be tcp, udp or sctp")),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = mapping.split(':').collect();
    let (host_ip, host_port, container_port) = match parts.as_slice() {
        [container] => ("127.0.0.1", "", *container),
        [host, container] => ("127.0.0.1", *host, *container),
        [ip, host, container] => (*ip, *host, *container),
        _ => {
            return Err(bad_port(
                "expected [[IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL]",
            ));
        }
    };
    let is_port = |text: &str| text.parse::<u16>().is_ok_and(|port| port > 0);
    if !is_port(container_port) || !(host_port.is_empty() || is_port(host_port)) {
        return Err(bad_port(
            "ports are numbers from 1 to 65535 (ranges are not supported)",
        ));
    }
    Ok(PortMapping {
        container_port: format!("{container_port}/{protocol}"),
        host_ip: host_ip.to_owned(),
        host_port: host_port.to_owned(),
    })
}
