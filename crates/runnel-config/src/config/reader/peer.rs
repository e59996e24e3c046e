//! Keys the Gitea runner (v1–v3) reads that runnel has no field for: each is accepted, never
//! ignored in silence. At the Gitea runner's default (what `config generate` documents) or at
//! a value that asks for what runnel does anyway, a key loads quietly and docs/migrating.md
//! says what runnel does instead; any other value gets a warning at load saying it. Keys
//! runnel applies (`set_act_env`, `patch_actions`, `service_ready_timeout`, `external_secret`,
//! `readiness_grace` …) are read with the others in the section readers.
//!
//! Must not: change the config; a key that maps onto something runnel has belongs to the
//! section readers, not to this table.

use super::*;

/// When a key of the table gets its warning.
#[derive(Clone, Copy)]
enum When {
    /// Unless the value is one of these (read as the key's [`Kind`], so `24h` and `1440m`
    /// are one value): the Gitea runner's default, first, then any value that asks for what
    /// runnel does anyway. An unset (null) value is the default. At its default a key asks
    /// for nothing the operator chose, and what runnel does instead is in docs/migrating.md;
    /// a value the operator chose that runnel does not honour is warned about.
    Unless(&'static [&'static str]),
    /// Only meaningful with another key of its feature, which carries the warning.
    WithFeature,
}

/// How a key's values compare with the ones [`When::Unless`] names.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Duration,
    Integer,
    Text,
}

/// The Gitea runner's keys runnel reads but does not apply, and what runnel does instead.
const PEER_KEYS: &[(&str, Kind, When, &str)] = &[
    (
        "runner.workdir_cleanup_age",
        Kind::Duration,
        When::Unless(&["24h", "0s"]),
        "runnel runs no idle sweep: a job's containers and directories are removed when it \
         ends, and what runners that died left behind at the next start",
    ),
    (
        "runner.idle_cleanup_interval",
        Kind::Duration,
        When::Unless(&["10m", "0s"]),
        "runnel runs no idle sweep: a job's containers and directories are removed when it \
         ends, and what runners that died left behind at the next start",
    ),
    (
        "runner.allocate_pty",
        Kind::Bool,
        When::Unless(&["false"]),
        "runnel runs steps without a terminal, as GitHub does (a step that needs one can run \
         its command through `script -qec`)",
    ),
    (
        "runner.action_shallow_clone",
        Kind::Bool,
        When::Unless(&["true"]),
        "runnel always fetches only the commit an action names (git fetch --depth 1)",
    ),
    (
        "runner.log_report_interval",
        Kind::Duration,
        When::Unless(&["5s"]),
        "runnel sends new log rows with each state report (runner.state_report_interval), \
         spooled until Gitea acknowledges them",
    ),
    (
        "runner.log_report_max_latency",
        Kind::Duration,
        When::Unless(&["3s"]),
        "runnel sends new log rows with each state report (runner.state_report_interval), \
         spooled until Gitea acknowledges them",
    ),
    (
        "runner.log_report_batch_size",
        Kind::Integer,
        When::Unless(&["100"]),
        "runnel sends new log rows with each state report (runner.state_report_interval), \
         spooled until Gitea acknowledges them",
    ),
    (
        "runner.post_task_script",
        Kind::Text,
        When::Unless(&[""]),
        "runnel runs no host script after a task; its teardown removes the job's containers, \
         network and directories itself",
    ),
    (
        "runner.post_task_script_timeout",
        Kind::Duration,
        When::WithFeature,
        "",
    ),
    (
        "runner.hooks.job_started",
        Kind::Text,
        When::Unless(&[""]),
        "job hooks are not supported yet: put the commands in the workflow's first step (or \
         a composite action)",
    ),
    (
        "runner.hooks.job_completed",
        Kind::Text,
        When::Unless(&[""]),
        "job hooks are not supported yet: put the commands in a step with `if: always()`",
    ),
    (
        "container.network_create_options.enable_ipv4",
        Kind::Bool,
        When::Unless(&["true"]),
        "runnel's own network (the shared `runnel-jobs` bridge) uses Docker's defaults; \
         create a network with the options you need and name it in container.network",
    ),
    (
        "container.network_create_options.enable_ipv6",
        Kind::Bool,
        When::Unless(&["false"]),
        "runnel's own network (the shared `runnel-jobs` bridge) uses Docker's defaults; \
         create a network with the options you need and name it in container.network",
    ),
    // Either value gets runnel's bind mount of the job's directory at /__w, which is what
    // `true` asks for and what `false` (volumes) looks like from inside the job.
    (
        "container.bind_workdir",
        Kind::Bool,
        When::Unless(&["false", "true"]),
        "",
    ),
    (
        "cache.offline_mode",
        Kind::Bool,
        When::Unless(&["false"]),
        "runnel resolves an action's ref on every job, reusing the commits it fetched before",
    ),
    (
        "cache.v2",
        Kind::Bool,
        When::Unless(&["true"]),
        "runnel's cache service always answers both the v1 and the v2 API",
    ),
];

impl Reader<'_> {
    /// Reads `path` when it is one of the Gitea runner's keys in [`PEER_KEYS`] (or a mapping
    /// holding some); false when it is none.
    pub(super) fn peer_key(&mut self, path: &str, v: &Node) -> bool {
        if let Some((_, kind, when, message)) = PEER_KEYS.iter().find(|(key, ..)| *key == path) {
            self.peer_value(path, v, *kind, *when, message);
            return true;
        }
        let holds_peer_keys = PEER_KEYS.iter().any(|(key, ..)| {
            key.strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.'))
        });
        if !holds_peer_keys {
            return false;
        }
        for (key, value, at) in self.entries(path, v).unwrap_or_default() {
            let inner = format!("{path}.{key}");
            if !self.peer_key(&inner, value) {
                self.unknown(&inner, at);
            }
        }
        true
    }

    /// Checks the value's type (a wrong one is an error, as for any key) and warns when it
    /// asks for what runnel does not do.
    fn peer_value(&mut self, path: &str, v: &Node, kind: Kind, when: When, message: &str) {
        let Some(value) = self.peer_typed(path, v, kind) else {
            return;
        };
        let When::Unless(accepted) = when else {
            return;
        };
        if v.is_null() {
            return;
        }
        let accepted = accepted
            .iter()
            .any(|text| parse_peer_value(text, kind).is_some_and(|expected| expected == value));
        if !accepted {
            self.warn(v.span, format!("{path}: {message}"));
        }
    }

    /// The value read as `kind` (null reads as the kind's zero); `None` after an error.
    fn peer_typed(&mut self, path: &str, v: &Node, kind: Kind) -> Option<PeerValue> {
        match kind {
            Kind::Bool => self.boolean(path, v).map(PeerValue::Bool),
            Kind::Duration => self.duration(path, v).map(PeerValue::Duration),
            Kind::Text => self
                .string(path, v)
                .map(|text| PeerValue::Text(text.trim().to_owned())),
            Kind::Integer if v.is_null() => Some(PeerValue::Integer(0)),
            Kind::Integer => self.integer(path, v).map(PeerValue::Integer),
        }
    }

    /// `container.service_ready_timeout`: the Docker backend's wait for services. The Gitea
    /// runner starts the steps without waiting when it is negative; runnel always waits.
    pub(super) fn service_ready_timeout(&mut self, path: &str, v: &Node) {
        let negative = match &v.kind {
            NodeKind::Scalar(scalar) => scalar.text.trim_start().starts_with('-'),
            _ => false,
        };
        if negative {
            let default = crate::format_duration(DEFAULT_SERVICE_READY_TIMEOUT);
            self.warn(
                v.span,
                format!(
                    "{path}: a negative value (start the steps without waiting) is not \
                     supported: runnel waits for services as GitHub does, up to {default}"
                ),
            );
            return;
        }
        if let Some(timeout) = self.duration(path, v) {
            self.config.container.service_ready_timeout = match timeout.is_zero() {
                true => DEFAULT_SERVICE_READY_TIMEOUT,
                false => timeout,
            };
        }
    }
}

/// A value of one of the table's keys, compared with the values its row accepts.
#[derive(PartialEq)]
enum PeerValue {
    Bool(bool),
    Duration(Duration),
    Integer(i64),
    Text(String),
}

/// `text` read as `kind`.
fn parse_peer_value(text: &str, kind: Kind) -> Option<PeerValue> {
    match kind {
        Kind::Bool => match text {
            "true" => Some(PeerValue::Bool(true)),
            "false" => Some(PeerValue::Bool(false)),
            _ => None,
        },
        Kind::Duration => parse_duration(text).ok().map(PeerValue::Duration),
        Kind::Integer => text.trim().parse().ok().map(PeerValue::Integer),
        Kind::Text => Some(PeerValue::Text(text.trim().to_owned())),
    }
}
