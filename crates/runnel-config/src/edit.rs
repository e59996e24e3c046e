//! `runnel config get|set|add|remove`: one key of a `config.yaml` read, or changed in the
//! file's text. An edit replaces only the lines of the key it changes (found through the
//! parsed tree's positions), so the operator's comments, blank lines, key order and quoting
//! elsewhere stay as they were; a missing key is added at the end of its section, missing
//! sections at the end of the file.
//!
//! Owns: the table of keys a path may name and their value types ([`key_shape`]), typing and
//! writing values, and refusing an edit that would make a loadable file fail to load. Must
//! not: read or write files (the CLI does).

mod doc;

use runnel_yaml::{Node, NodeKind, ScalarValue};

use doc::{Doc, Written, indentation};

use crate::{Config, format_duration, parse_duration, parse_size};

/// What a value written to a key must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Bool,
    Integer,
    /// A Go duration (`30s`, `1h30m`), written back in runnel's shortest form.
    Duration,
    /// A byte size (`10GB`, `512MiB`, a plain count).
    Size,
}

/// What a key path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShape {
    /// One value.
    Scalar(ValueKind),
    /// A list of texts (`runner.labels`, `container.valid_volumes` …).
    List,
    /// A mapping or a section: set one of its keys instead.
    Section,
}

use KeyShape::{List, Scalar};
use ValueKind::{Bool, Duration, Integer, Size, Text};

/// Every key of `config.yaml` runnel reads: the Gitea runner's (v3.3) and runnel's own.
/// `runner.envs` holds names of the operator's choosing (`runner.envs.NAME`).
const KEYS: &[(&str, KeyShape)] = &[
    ("log.level", Scalar(Text)),
    ("log.job.dir", Scalar(Text)),
    ("log.job.retention", Scalar(Duration)),
    ("log.job.max_size", Scalar(Size)),
    ("runner.file", Scalar(Text)),
    ("runner.capacity", Scalar(Integer)),
    ("runner.env_file", Scalar(Text)),
    ("runner.timeout", Scalar(Duration)),
    ("runner.shutdown_timeout", Scalar(Duration)),
    ("runner.insecure", Scalar(Bool)),
    ("runner.fetch_timeout", Scalar(Duration)),
    ("runner.fetch_interval", Scalar(Duration)),
    ("runner.fetch_interval_max", Scalar(Duration)),
    ("runner.workdir_cleanup_age", Scalar(Duration)),
    ("runner.idle_cleanup_interval", Scalar(Duration)),
    ("runner.log_report_interval", Scalar(Duration)),
    ("runner.log_report_max_latency", Scalar(Duration)),
    ("runner.log_report_batch_size", Scalar(Integer)),
    ("runner.state_report_interval", Scalar(Duration)),
    ("runner.report_close_timeout", Scalar(Duration)),
    ("runner.labels", List),
    ("runner.github_mirror", Scalar(Text)),
    ("runner.action_shallow_clone", Scalar(Bool)),
    ("runner.set_act_env", Scalar(Bool)),
    ("runner.patch_actions", Scalar(Bool)),
    ("runner.allocate_pty", Scalar(Bool)),
    ("runner.default_image", Scalar(Text)),
    ("runner.tool_cache_mode", Scalar(Text)),
    ("runner.post_task_script", Scalar(Text)),
    ("runner.post_task_script_timeout", Scalar(Duration)),
    ("runner.hooks.job_started", Scalar(Text)),
    ("runner.hooks.job_completed", Scalar(Text)),
    ("runner.transport", Scalar(Text)),
    ("runner.spool_dir", Scalar(Text)),
    ("cache.enabled", Scalar(Bool)),
    ("cache.dir", Scalar(Text)),
    ("cache.host", Scalar(Text)),
    ("cache.port", Scalar(Integer)),
    ("cache.external_server", Scalar(Text)),
    ("cache.external_secret", Scalar(Text)),
    ("cache.external_secret_file", Scalar(Text)),
    ("cache.shared_secret", Scalar(Text)),
    ("cache.shared_secret_file", Scalar(Text)),
    ("cache.offline_mode", Scalar(Bool)),
    ("cache.v2", Scalar(Bool)),
    ("cache.retention", Scalar(Duration)),
    ("cache.repo_size_limit", Scalar(Size)),
    ("cache.size_limit", Scalar(Size)),
    ("cache.sweep_interval", Scalar(Duration)),
    ("cache.s3.endpoint", Scalar(Text)),
    ("cache.s3.bucket", Scalar(Text)),
    ("cache.s3.region", Scalar(Text)),
    ("cache.s3.prefix", Scalar(Text)),
    ("cache.s3.access_key", Scalar(Text)),
    ("cache.s3.secret_key", Scalar(Text)),
    ("container.network", Scalar(Text)),
    ("container.network_create_options.enable_ipv4", Scalar(Bool)),
    ("container.network_create_options.enable_ipv6", Scalar(Bool)),
    ("container.network_mode", Scalar(Text)),
    ("container.privileged", Scalar(Bool)),
    ("container.options", Scalar(Text)),
    ("container.workdir_parent", Scalar(Text)),
    ("container.valid_volumes", List),
    ("container.docker_host", Scalar(Text)),
    ("container.force_pull", Scalar(Bool)),
    ("container.force_rebuild", Scalar(Bool)),
    ("container.require_docker", Scalar(Bool)),
    ("container.docker_timeout", Scalar(Duration)),
    ("container.bind_workdir", Scalar(Bool)),
    ("container.service_ready_timeout", Scalar(Duration)),
    ("container.ca_bundle", Scalar(Text)),
    ("container.workflow_options_allowed", List),
    ("host.workdir_parent", Scalar(Text)),
    ("vm.images", Scalar(Text)),
    ("vm.share", Scalar(Text)),
    ("vm.virtiofsd", Scalar(Text)),
    ("vm.cpus", Scalar(Integer)),
    ("vm.memory", Scalar(Size)),
    ("vm.disk_size", Scalar(Size)),
    ("vm.boot_timeout", Scalar(Duration)),
    ("vm.network", Scalar(Text)),
    ("vm.preload_images", List),
    ("health_check.enabled", Scalar(Bool)),
    ("health_check.min_free_disk_space_mb", Scalar(Integer)),
    ("health_check.script", Scalar(Text)),
    ("health_check.interval", Scalar(Duration)),
    ("health_check.timeout", Scalar(Duration)),
    ("metrics.enabled", Scalar(Bool)),
    ("metrics.addr", Scalar(Text)),
    ("metrics.readiness_grace", Scalar(Duration)),
];

/// The mapping whose keys the operator names.
const ENVS: &str = "runner.envs";

/// Why a key could not be read or changed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("no config key given")]
    NoKey,
    #[error("unknown config key `{key}`; valid keys here: {valid}")]
    UnknownKey { key: String, valid: String },
    #[error("`{0}` is not set")]
    NotSet(String),
    #[error("`{0}` is a section, set one of its keys instead")]
    Section(String),
    #[error("`{0}` takes exactly one value")]
    OneValue(String),
    #[error("`{0}` needs at least one value")]
    NoValue(String),
    #[error("`{0}` is not a list, use `config set` instead")]
    NotAList(String),
    #[error("`{key}`: `{value}` is not {what}")]
    BadValue {
        key: String,
        value: String,
        what: &'static str,
    },
    #[error("`{key}` already contains `{value}`")]
    AlreadyThere { key: String, value: String },
    #[error("`{key}` does not contain `{value}`")]
    NotThere { key: String, value: String },
    #[error("`{0}` is set to a value, not a section")]
    NotASection(String),
    #[error(
        "`{0}` is written in flow style ({{…}} or […]) on one line; change it by hand or \
         write it as a block"
    )]
    Flow(String),
    #[error("the file is not a YAML mapping: {0}")]
    NotYaml(String),
    #[error("the edit would make a config runnel cannot load: {0}")]
    WouldBreak(String),
}

/// Every key path `config set` takes and what it holds (`runner.envs.NAME` aside).
pub fn keys() -> impl Iterator<Item = (&'static str, KeyShape)> {
    KEYS.iter().copied()
}

/// What `path` names: a value, a list or a section; an error for a key runnel does not know.
pub fn key_shape(path: &str) -> Result<KeyShape, EditError> {
    if path.is_empty() {
        return Err(EditError::NoKey);
    }
    if let Some(name) = path.strip_prefix(ENVS).and_then(|r| r.strip_prefix('.')) {
        return match name.contains('.') || name.is_empty() {
            false => Ok(Scalar(Text)),
            true => Err(EditError::UnknownKey {
                key: path.to_owned(),
                valid: "any variable name".to_owned(),
            }),
        };
    }
    if path == ENVS {
        return Ok(KeyShape::Section);
    }
    if let Some((_, shape)) = KEYS.iter().find(|(key, _)| *key == path) {
        return Ok(*shape);
    }
    let prefix = format!("{path}.");
    if KEYS.iter().any(|(key, _)| key.starts_with(&prefix)) {
        return Ok(KeyShape::Section);
    }
    // The keys valid where the path stops being known.
    let parent = path.rsplit_once('.').map_or("", |(parent, _)| parent);
    let mut valid: Vec<&str> = KEYS
        .iter()
        .map(|(key, _)| *key)
        .chain([ENVS])
        .filter_map(|key| match parent {
            "" => Some(key),
            _ => key.strip_prefix(parent)?.strip_prefix('.'),
        })
        .map(|rest| rest.split('.').next().unwrap_or(rest))
        .collect();
    valid.sort_unstable();
    valid.dedup();
    Err(EditError::UnknownKey {
        key: path.to_owned(),
        valid: valid.join(", "),
    })
}

/// The value of `path` in `text`: a value as it is, a list one item a line, a mapping of
/// values `key=value` a line, anything deeper as its YAML lines.
pub fn get(text: &str, path: &str) -> Result<String, EditError> {
    key_shape(path)?;
    let doc = Doc::parse(text)?;
    let Some(found) = doc.find(path) else {
        return Err(EditError::NotSet(path.to_owned()));
    };
    let value = found.value;
    Ok(match &value.kind {
        NodeKind::Scalar(scalar) if value.is_null() && scalar.text.is_empty() => String::new(),
        NodeKind::Scalar(scalar) => scalar.text.clone(),
        NodeKind::Sequence(items) if items.iter().all(is_scalar) => items
            .iter()
            .map(|item| item.scalar_text().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n"),
        NodeKind::Mapping(entries) if entries.iter().all(|(_, v)| is_scalar(v)) => entries
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    k.scalar_text().unwrap_or_default(),
                    v.scalar_text().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => {
            let (first, last) = doc.extent(&found);
            let lines = &doc.lines[first + 1..=last];
            let indent = lines
                .iter()
                .filter(|line| !line.trim().is_empty())
                .map(|line| indentation(line))
                .min()
                .unwrap_or(0);
            lines
                .iter()
                .map(|line| line.get(indent..).unwrap_or("").trim_end())
                .collect::<Vec<_>>()
                .join("\n")
        }
    })
}

/// `text` with `path` set to `values` (one for a value, one or more for a list).
pub fn set(text: &str, path: &str, values: &[String]) -> Result<String, EditError> {
    let shape = key_shape(path)?;
    let new = match shape {
        KeyShape::Section => return Err(EditError::Section(path.to_owned())),
        Scalar(kind) => {
            let [value] = values else {
                return Err(EditError::OneValue(path.to_owned()));
            };
            Written::Scalar(render(path, kind, value)?)
        }
        List => {
            if values.is_empty() {
                return Err(EditError::NoValue(path.to_owned()));
            }
            Written::List(values.iter().map(|v| render_text(v)).collect())
        }
    };
    let doc = Doc::parse(text)?;
    checked(text, doc.write(path, &new)?)
}

/// `text` with `values` appended to the list `path` (created when missing).
pub fn add(text: &str, path: &str, values: &[String]) -> Result<String, EditError> {
    list_key(path, values)?;
    let doc = Doc::parse(text)?;
    let mut items = match doc.find(path) {
        Some(found) => doc.list_items(path, &found)?,
        None => Vec::new(),
    };
    for value in values {
        if items.contains(value) {
            return Err(EditError::AlreadyThere {
                key: path.to_owned(),
                value: value.clone(),
            });
        }
        items.push(value.clone());
    }
    let edited = match doc.find(path) {
        // A block list grows by lines after its last item; its other lines stay.
        Some(found) if doc.is_block_sequence(&found) => doc.append_items(&found, values),
        _ => doc.write(
            path,
            &Written::List(items.iter().map(|v| render_text(v)).collect()),
        )?,
    };
    checked(text, edited)
}

/// `text` without `values` in the list `path`.
pub fn remove(text: &str, path: &str, values: &[String]) -> Result<String, EditError> {
    list_key(path, values)?;
    let doc = Doc::parse(text)?;
    let Some(found) = doc.find(path) else {
        return Err(EditError::NotSet(path.to_owned()));
    };
    let mut items = doc.list_items(path, &found)?;
    for value in values {
        let Some(index) = items.iter().position(|item| item == value) else {
            return Err(EditError::NotThere {
                key: path.to_owned(),
                value: value.clone(),
            });
        };
        items.remove(index);
    }
    let edited = if doc.is_block_sequence(&found) && !items.is_empty() {
        doc.drop_items(&found, values)
    } else {
        doc.write(
            path,
            &Written::List(items.iter().map(|v| render_text(v)).collect()),
        )?
    };
    checked(text, edited)
}

fn list_key(path: &str, values: &[String]) -> Result<(), EditError> {
    if key_shape(path)? != List {
        return Err(EditError::NotAList(path.to_owned()));
    }
    if values.is_empty() {
        return Err(EditError::NoValue(path.to_owned()));
    }
    Ok(())
}

/// Refuses an edit that makes a file that loaded fail to load (one that did not load stays
/// the operator's to fix).
fn checked(before: &str, after: String) -> Result<String, EditError> {
    if let Err(error) = Config::parse("config.yaml", &after)
        && Config::parse("config.yaml", before).is_ok()
    {
        return Err(EditError::WouldBreak(error.to_string()));
    }
    Ok(after)
}

fn is_scalar(node: &Node) -> bool {
    matches!(node.kind, NodeKind::Scalar(_))
}

/// A value typed for its key and written as YAML.
fn render(path: &str, kind: ValueKind, value: &str) -> Result<String, EditError> {
    let bad = |what| EditError::BadValue {
        key: path.to_owned(),
        value: value.to_owned(),
        what,
    };
    Ok(match kind {
        Text => render_text(value),
        // As Go's strconv.ParseBool, which the Gitea runner's `config set` uses.
        Bool => match value {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => "true".to_owned(),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => "false".to_owned(),
            _ => return Err(bad("a boolean (true or false)")),
        },
        Integer => value
            .trim()
            .parse::<i64>()
            .map_err(|_| bad("an integer"))?
            .to_string(),
        Duration => format_duration(
            parse_duration(value).map_err(|_| bad("a duration such as 30s, 5m or 3h"))?,
        ),
        Size => {
            parse_size(value).map_err(|_| bad("a size such as 10GB or 512MB"))?;
            render_text(value.trim())
        }
    })
}

/// A text as a YAML scalar: plain when it reads back as the same string, else quoted.
fn render_text(value: &str) -> String {
    let plain = !value.is_empty()
        && value.trim() == value
        && !value.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !value.contains(": ")
        && !value.contains(" #")
        && !value.ends_with(':')
        && !value.contains(|c: char| c.is_control())
        && runnel_yaml::resolve_plain(value) == ScalarValue::String
        // YAML 1.1's booleans, which the Gitea runner's reader and older tools take as such.
        && !matches!(
            value.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off"
        );
    if plain {
        return value.to_owned();
    }
    if !value.contains(|c: char| c.is_control()) {
        return format!("'{}'", value.replace('\'', "''"));
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
