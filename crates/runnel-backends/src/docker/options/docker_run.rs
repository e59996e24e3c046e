//! `docker run` options read the way the Docker CLI reads them, for the two places that may
//! use all of them: the operator's `container.options` (trusted config, applied as written,
//! as the Gitea runner applies it) and the options an operator lets workflows use beyond the
//! allow-list (`container.workflow_options_allowed`).
//!
//! Every option that maps onto the container create call is parsed into the Docker API's own
//! JSON shape (`HostConfig.Dns`, `Healthcheck.Test`, …) and later merged into the body runnel
//! built ([`apply`]): lists are appended, maps joined, single values replaced, so these values
//! win. Options that cannot apply to a runnel job container (the CLI's own, `--name`,
//! `--entrypoint`, a fixed `-p` host port …) are refused by name with the reason, so a runner
//! refuses to start instead of ignoring them.
//!
//! Must not: talk to Docker, read a workflow's options unless the operator named the option,
//! or check volume sources (`super::job_options` does, with the operator's rule).

use bollard::models::ContainerCreateBody;
use serde_json::{Map, Value, json};

use super::{OptionError, parse_duration, parse_size, shell_split, split_inline};

mod table;
use table::{Kind, OPTIONS, REFUSED};

/// Options parsed from `docker run` words, not yet applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DockerRunOptions {
    /// A partial create body in the Docker API's JSON field names.
    pub(crate) body: Map<String, Value>,
    /// `-v`/`--volume` specs, as written.
    pub(crate) volumes: Vec<String>,
    /// `--mount` entries as API `Mount` objects, with the source of a bind mount.
    pub(crate) mounts: Vec<(Option<String>, Value)>,
    /// `--network`/`--net`.
    pub(crate) network: Option<String>,
    /// `--network-alias`: names of the job container on its network.
    pub(crate) network_aliases: Vec<String>,
    /// `--privileged` was written.
    pub(crate) privileged: bool,
}

impl DockerRunOptions {
    /// Adds `later` after these: its values win where both set one.
    pub(crate) fn append(&mut self, later: DockerRunOptions) {
        let DockerRunOptions {
            body,
            volumes,
            mounts,
            network,
            network_aliases,
            privileged,
        } = later;
        let mut merged = Value::Object(std::mem::take(&mut self.body));
        merge(&mut merged, &Value::Object(body));
        if let Value::Object(map) = merged {
            self.body = map;
        }
        self.volumes.extend(volumes);
        self.mounts.extend(mounts);
        if network.is_some() {
            self.network = network;
        }
        self.network_aliases.extend(network_aliases);
        self.privileged |= privileged;
    }
}

/// Parses `docker run` option text (each entry shell-split).
pub(crate) fn parse(entries: &[String]) -> Result<DockerRunOptions, OptionError> {
    let mut words = Vec::new();
    for entry in entries {
        words.extend(shell_split(entry)?);
    }
    parse_words(words)
}

/// The option a word names (`--dns=1.1.1.1` names `--dns`), when it is one.
pub(crate) fn option_name(word: &str) -> &str {
    match word.split_once('=') {
        Some((name, _)) if name.starts_with("--") => name,
        _ => word,
    }
}

/// Whether `name` is an option this module applies; and whether it takes a value.
pub(crate) fn takes_value(name: &str) -> Option<bool> {
    let (_, kind) = OPTIONS.iter().find(|(names, _)| names.contains(&name))?;
    Some(!matches!(
        kind,
        Kind::Flag(_) | Kind::NoHealthcheck | Kind::Privileged
    ))
}

/// The option's long name (`-e` → `--env`), for comparing with a configured list.
pub(crate) fn long_name(name: &str) -> Option<&'static str> {
    let (names, _) = OPTIONS.iter().find(|(names, _)| names.contains(&name))?;
    names.iter().copied().find(|n| n.starts_with("--"))
}

/// The reason an option cannot be applied at all, when it is one of those.
pub(crate) fn refused_reason(name: &str) -> Option<&'static str> {
    REFUSED
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, reason)| *reason)
}

pub(crate) fn parse_words(words: Vec<String>) -> Result<DockerRunOptions, OptionError> {
    let mut parsed = DockerRunOptions::default();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let (name, inline_value) = split_inline(&word);
        if let Some(reason) = refused_reason(&name) {
            return Err(OptionError::NotAllowed {
                option: name,
                reason: format!(": {reason}"),
            });
        }
        let Some((_, kind)) = OPTIONS
            .iter()
            .find(|(names, _)| names.contains(&name.as_str()))
        else {
            return Err(OptionError::NotAllowed {
                option: name,
                reason: ": it is no `docker run` option runnel knows".to_owned(),
            });
        };
        if takes_value(&name) == Some(false) {
            let on = match inline_value.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => return Err(bad(&name, other, "true or false")),
            };
            match kind {
                Kind::Flag(path) => set(&mut parsed.body, path, json!(on)),
                Kind::NoHealthcheck if on => {
                    set(&mut parsed.body, &["Healthcheck", "Test"], json!(["NONE"]))
                }
                Kind::Privileged => parsed.privileged = on,
                _ => {}
            }
            continue;
        }
        let value = match inline_value {
            Some(value) => value,
            None => words.next().ok_or_else(|| OptionError::MissingValue {
                option: name.clone(),
            })?,
        };
        apply_value(&mut parsed, &name, *kind, value)?;
    }
    Ok(parsed)
}

fn apply_value(
    parsed: &mut DockerRunOptions,
    name: &str,
    kind: Kind,
    value: String,
) -> Result<(), OptionError> {
    let body = &mut parsed.body;
    match kind {
        Kind::Str(path) => set(body, path, json!(value)),
        Kind::Int(path) => set(body, path, json!(int(name, &value)?)),
        Kind::Size(path) => set(body, path, json!(parse_size(name, &value)?)),
        Kind::Nanos(path) => set(body, path, json!(parse_duration(name, &value)?)),
        Kind::List(path) => push(body, path, json!(value)),
        Kind::Map(path) => {
            let (key, entry) = value.split_once('=').unwrap_or((value.as_str(), ""));
            insert(body, path, key, json!(entry));
        }
        Kind::Cpus => {
            let cpus: f64 = value.parse().map_err(|_| bad(name, &value, "a number"))?;
            set(
                body,
                &["HostConfig", "NanoCpus"],
                json!((cpus * 1e9) as i64),
            );
        }
        Kind::MemorySwap => {
            let bytes = if value == "-1" {
                -1
            } else {
                parse_size(name, &value)?
            };
            set(body, &["HostConfig", "MemorySwap"], json!(bytes));
        }
        Kind::Env => env(body, value),
        Kind::EnvFile => {
            for (key, entry) in read_pairs(name, &value)? {
                env(body, format!("{key}={entry}"));
            }
        }
        Kind::Label => label(body, name, &value)?,
        Kind::LabelFile => {
            for (key, entry) in read_pairs(name, &value)? {
                label(body, name, &format!("{key}={entry}"))?;
            }
        }
        Kind::AddHost => {
            // The CLI also takes `host=ip` and sends `host:ip`.
            let entry = match value.split_once('=') {
                Some((host, ip)) => format!("{host}:{ip}"),
                None => value,
            };
            push(body, &["HostConfig", "ExtraHosts"], json!(entry));
        }
        Kind::Expose => {
            let port = if value.contains('/') {
                value
            } else {
                format!("{value}/tcp")
            };
            insert(body, &["ExposedPorts"], &port, json!({}));
        }
        Kind::Ulimit => {
            let ulimit = super::parse_ulimit(name, &value)?;
            push(
                body,
                &["HostConfig", "Ulimits"],
                json!({"Name": ulimit.name, "Soft": ulimit.soft, "Hard": ulimit.hard}),
            );
        }
        Kind::Device => {
            let device = super::parse_device(&value);
            push(
                body,
                &["HostConfig", "Devices"],
                json!({
                    "PathOnHost": device.path_on_host,
                    "PathInContainer": device.path_in_container,
                    "CgroupPermissions": device.cgroup_permissions,
                }),
            );
        }
        Kind::Gpus => push(body, &["HostConfig", "DeviceRequests"], gpus(name, &value)?),
        Kind::WeightDevice => {
            let (path, weight) = value
                .rsplit_once(':')
                .ok_or_else(|| bad(name, &value, "PATH:WEIGHT"))?;
            push(
                body,
                &["HostConfig", "BlkioWeightDevice"],
                json!({"Path": path, "Weight": int(name, weight)?}),
            );
        }
        Kind::ThrottleBytes(field) | Kind::ThrottleIops(field) => {
            let (path, rate) = value
                .rsplit_once(':')
                .ok_or_else(|| bad(name, &value, "PATH:RATE"))?;
            let rate = match kind {
                Kind::ThrottleBytes(_) => parse_size(name, rate)?,
                _ => int(name, rate)?,
            };
            push(
                body,
                &["HostConfig", field],
                json!({"Path": path, "Rate": rate}),
            );
        }
        Kind::Tmpfs => {
            let (path, mount_options) = value.split_once(':').unwrap_or((value.as_str(), ""));
            insert(body, &["HostConfig", "Tmpfs"], path, json!(mount_options));
        }
        Kind::Restart => {
            let (policy, retries) = value.split_once(':').unwrap_or((value.as_str(), "0"));
            if !matches!(policy, "no" | "always" | "on-failure" | "unless-stopped") {
                return Err(bad(
                    name,
                    &value,
                    "no, always, on-failure[:N] or unless-stopped",
                ));
            }
            set(
                body,
                &["HostConfig", "RestartPolicy"],
                json!({"Name": policy, "MaximumRetryCount": int(name, retries)?}),
            );
        }
        Kind::HealthCmd => set(body, &["Healthcheck", "Test"], json!(["CMD-SHELL", value])),
        Kind::Volume => parsed.volumes.push(value),
        Kind::Mount => parsed.mounts.push(mount(name, &value)?),
        Kind::Network => parsed.network = Some(value),
        Kind::NetworkAlias => parsed.network_aliases.push(value),
        Kind::Flag(_) | Kind::NoHealthcheck | Kind::Privileged => {}
    }
    Ok(())
}

fn env(body: &mut Map<String, Value>, pair: String) {
    // As the CLI: a bare name takes the value of this process's variable, or is dropped.
    let pair = match pair.contains('=') {
        true => Some(pair),
        false => std::env::var(&pair)
            .ok()
            .map(|value| format!("{pair}={value}")),
    };
    if let Some(pair) = pair {
        push(body, &["Env"], json!(pair));
    }
}

fn label(body: &mut Map<String, Value>, name: &str, text: &str) -> Result<(), OptionError> {
    let (key, value) = text.split_once('=').unwrap_or((text, ""));
    if key.starts_with("runnel.") {
        return Err(bad(
            name,
            text,
            "a label outside runnel.* (runnel owns those)",
        ));
    }
    insert(body, &["Labels"], key, json!(value));
    Ok(())
}

/// `KEY=VALUE` lines of an `--env-file`/`--label-file` (the operator's file, read at start).
fn read_pairs(name: &str, path: &str) -> Result<Vec<(String, String)>, OptionError> {
    let text = std::fs::read_to_string(path).map_err(|source| OptionError::OptionFile {
        option: name.to_owned(),
        path: path.to_owned(),
        problem: source.to_string(),
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| match line.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (line.to_owned(), std::env::var(line).unwrap_or_default()),
        })
        .collect())
}

/// `--gpus all`, `--gpus 2`, `--gpus '"device=0,1"'`, `--gpus count=2,capabilities=utility`.
fn gpus(name: &str, text: &str) -> Result<Value, OptionError> {
    let mut count = None;
    let mut device_ids = Vec::new();
    let mut capabilities = vec!["gpu".to_owned()];
    let mut driver = None;
    let unquoted = text.trim_matches('"');
    if unquoted == "all" {
        count = Some(-1);
    } else if let Ok(n) = unquoted.parse::<i64>() {
        count = Some(n);
    } else {
        // `device=` lists hold commas too: a field starts at a `key=`.
        let mut fields: Vec<(String, String)> = Vec::new();
        for part in unquoted.split(',') {
            match part.split_once('=') {
                Some((key, value)) => fields.push((key.to_owned(), value.to_owned())),
                None => match fields.last_mut() {
                    Some((_, value)) => {
                        value.push(',');
                        value.push_str(part);
                    }
                    None => return Err(bad(name, text, "all, a count or key=value fields")),
                },
            }
        }
        for (key, value) in fields {
            match key.as_str() {
                "count" if value == "all" => count = Some(-1),
                "count" => count = Some(int(name, &value)?),
                "device" => device_ids = value.split(',').map(str::to_owned).collect(),
                "capabilities" => capabilities = value.split(',').map(str::to_owned).collect(),
                "driver" => driver = Some(value),
                _ => {
                    return Err(bad(
                        name,
                        text,
                        "fields count, device, capabilities, driver",
                    ));
                }
            }
        }
    }
    let mut request = json!({"Capabilities": [capabilities]});
    if let Some(count) = count {
        request["Count"] = json!(count);
    }
    if !device_ids.is_empty() {
        request["DeviceIDs"] = json!(device_ids);
    }
    if let Some(driver) = driver {
        request["Driver"] = json!(driver);
    }
    Ok(request)
}

/// `--mount type=bind,source=/a,target=/b,readonly` as an API `Mount`, and its bind source.
fn mount(name: &str, text: &str) -> Result<(Option<String>, Value), OptionError> {
    let mut mount = Map::new();
    let mut typ = "volume".to_owned();
    for field in text.split(',') {
        let (key, value) = field.split_once('=').unwrap_or((field, "true"));
        match key {
            "type" => typ = value.to_owned(),
            "source" | "src" => {
                mount.insert("Source".to_owned(), json!(value));
            }
            "target" | "destination" | "dst" => {
                mount.insert("Target".to_owned(), json!(value));
            }
            "readonly" | "ro" => {
                mount.insert("ReadOnly".to_owned(), json!(matches!(value, "true" | "1")));
            }
            "bind-propagation" => {
                mount.insert("BindOptions".to_owned(), json!({"Propagation": value}));
            }
            "volume-nocopy" => {
                mount.insert(
                    "VolumeOptions".to_owned(),
                    json!({"NoCopy": value == "true"}),
                );
            }
            "tmpfs-size" => {
                let bytes = parse_size(name, value)?;
                mount.insert("TmpfsOptions".to_owned(), json!({"SizeBytes": bytes}));
            }
            _ => {
                return Err(bad(
                    name,
                    text,
                    "fields type, source, target, readonly, bind-propagation, volume-nocopy, tmpfs-size",
                ));
            }
        }
    }
    if !mount.contains_key("Target") {
        return Err(bad(name, text, "a mount with a target"));
    }
    let source = mount
        .get("Source")
        .and_then(Value::as_str)
        .map(str::to_owned);
    mount.insert("Type".to_owned(), json!(typ));
    let bind_source = (typ == "bind").then_some(source).flatten();
    Ok((bind_source, Value::Object(mount)))
}

fn int(name: &str, text: &str) -> Result<i64, OptionError> {
    text.parse().map_err(|_| bad(name, text, "an integer"))
}

fn bad(option: &str, value: &str, expected: &'static str) -> OptionError {
    super::bad(option, value, expected)
}

fn object_at<'m>(body: &'m mut Map<String, Value>, path: &[&str]) -> &'m mut Map<String, Value> {
    let mut object = body;
    for key in path {
        let entry = object
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        // Made an object just above.
        object = match entry {
            Value::Object(map) => map,
            _ => unreachable!("the entry was made an object"),
        };
    }
    object
}

fn set(body: &mut Map<String, Value>, path: &[&str], value: Value) {
    if let Some((last, parents)) = path.split_last() {
        object_at(body, parents).insert((*last).to_owned(), value);
    }
}

fn push(body: &mut Map<String, Value>, path: &[&str], value: Value) {
    if let Some((last, parents)) = path.split_last() {
        let entry = object_at(body, parents)
            .entry((*last).to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        match entry {
            Value::Array(items) => items.push(value),
            other => *other = Value::Array(vec![value]),
        }
    }
}

fn insert(body: &mut Map<String, Value>, path: &[&str], key: &str, value: Value) {
    object_at(body, path).insert(key.to_owned(), value);
}

/// Merges `over` into `base`: objects key by key, lists appended, anything else replaced.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(existing) if !existing.is_null() => merge(existing, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(over)) => base.extend(over.iter().cloned()),
        (base, over) => *base = over.clone(),
    }
}

/// `options` merged into `body` (their values win); `network` is the job container's
/// network, for `--network-alias`. Fails when a value is not one Docker's API takes.
pub(crate) fn apply(
    body: &mut ContainerCreateBody,
    options: &DockerRunOptions,
    network: Option<&str>,
) -> Result<(), OptionError> {
    let mut over = options.body.clone();
    for (_, mount) in &options.mounts {
        push(&mut over, &["HostConfig", "Mounts"], mount.clone());
    }
    if let (Some(network), false) = (network, options.network_aliases.is_empty()) {
        set(
            &mut over,
            &["NetworkingConfig", "EndpointsConfig", network, "Aliases"],
            json!(options.network_aliases),
        );
    }
    if over.is_empty() {
        return Ok(());
    }
    let invalid = |source: serde_json::Error| OptionError::NotApplicable {
        problem: source.to_string(),
    };
    let mut merged = serde_json::to_value(&*body).map_err(invalid)?;
    merge(&mut merged, &Value::Object(over));
    *body = serde_json::from_value(merged).map_err(invalid)?;
    Ok(())
}

/// Fails when `options` hold a value Docker's API would not take (checked once, at start).
pub(crate) fn check_applicable(options: &DockerRunOptions) -> Result<(), OptionError> {
    apply(
        &mut ContainerCreateBody::default(),
        options,
        Some("network"),
    )
}

#[cfg(test)]
mod tests;
