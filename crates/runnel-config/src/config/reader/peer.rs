//! Keys the Gitea runner (v1–v3) reads that runnel has no field for: each is accepted, never
//! ignored in silence — a warning at load says what runnel does instead, unless the value asks
//! for what runnel does anyway. Keys runnel applies (`set_act_env`, `service_ready_timeout`,
//! `external_secret`, `readiness_grace` …) are read with the others in the section readers.
//!
//! Must not: change the config; a key that maps onto something runnel has belongs to the
//! section readers, not to this table.

use super::*;

/// When a key of the table gets its warning.
#[derive(Clone, Copy)]
enum When {
    /// Whatever the value: runnel never does what the key configures.
    Always,
    /// Unless the value is this one (what runnel does anyway); an unset (null) value is the
    /// Gitea runner's default, which is this one too.
    Unless(&'static str),
    /// Only meaningful with another key of its feature, which carries the warning.
    WithFeature,
}

/// The Gitea runner's keys runnel reads but does not apply, and what runnel does instead.
const PEER_KEYS: &[(&str, When, &str)] = &[
    (
        "runner.workdir_cleanup_age",
        When::Always,
        "runnel runs no idle sweep: a job's containers and directories are removed when it \
         ends, and what runners that died left behind at the next start",
    ),
    (
        "runner.idle_cleanup_interval",
        When::Always,
        "runnel runs no idle sweep: a job's containers and directories are removed when it \
         ends, and what runners that died left behind at the next start",
    ),
    (
        "runner.allocate_pty",
        When::Unless("false"),
        "runnel runs steps without a terminal, as GitHub does (a step that needs one can run \
         its command through `script -qec`)",
    ),
    (
        "runner.action_shallow_clone",
        When::Unless("true"),
        "runnel always fetches only the commit an action names (git fetch --depth 1)",
    ),
    (
        "runner.log_report_interval",
        When::Always,
        "runnel sends new log rows with each state report (runner.state_report_interval), \
         spooled until Gitea acknowledges them",
    ),
    (
        "runner.log_report_max_latency",
        When::Always,
        "runnel sends new log rows with each state report (runner.state_report_interval), \
         spooled until Gitea acknowledges them",
    ),
    (
        "runner.log_report_batch_size",
        When::Always,
        "runnel sends new log rows with each state report (runner.state_report_interval), \
         spooled until Gitea acknowledges them",
    ),
    (
        "runner.post_task_script",
        When::Unless(""),
        "runnel runs no host script after a task; its teardown removes the job's containers, \
         network and directories itself",
    ),
    ("runner.post_task_script_timeout", When::WithFeature, ""),
    (
        "runner.hooks.job_started",
        When::Unless(""),
        "job hooks are not supported yet: put the commands in the workflow's first step (or \
         a composite action)",
    ),
    (
        "runner.hooks.job_completed",
        When::Unless(""),
        "job hooks are not supported yet: put the commands in a step with `if: always()`",
    ),
    (
        "container.network_create_options",
        When::Always,
        "runnel's own network (the shared `runnel-jobs` bridge) uses Docker's defaults; \
         create a network with the options you need and name it in container.network",
    ),
    (
        "container.bind_workdir",
        When::Unless("true"),
        "runnel always keeps a job's directory on this machine and bind-mounts it at /__w \
         (a volume only when the engine cannot see this machine's files)",
    ),
    (
        "cache.offline_mode",
        When::Unless("false"),
        "runnel resolves an action's ref on every job, reusing the commits it fetched before",
    ),
    (
        "cache.v2",
        When::Unless("true"),
        "runnel's cache service always answers both the v1 and the v2 API",
    ),
    (
        "cache.retention",
        When::Always,
        "runnel keeps cache entries until cache.size_limit (10 GiB by default) is reached, \
         then evicts the least recently used; it has no age limit",
    ),
    (
        "cache.repo_size_limit",
        When::Always,
        "runnel limits the whole cache (cache.size_limit, 10 GiB by default), not each \
         repository's share",
    ),
    (
        "cache.sweep_interval",
        When::Always,
        "runnel evicts cache entries when a save goes over cache.size_limit, not on a timer",
    ),
    (
        "health_check.enabled",
        When::Unless("false"),
        "runnel does not pause fetching on low disk space or a failing script; /readyz \
         (metrics.enabled) says whether the runner is polling Gitea",
    ),
    ("health_check.min_free_disk_space_mb", When::WithFeature, ""),
    ("health_check.script", When::WithFeature, ""),
    ("health_check.interval", When::WithFeature, ""),
    ("health_check.timeout", When::WithFeature, ""),
    (
        "log.job.dir",
        When::Unless(""),
        "runnel keeps no copy of job logs on disk: their rows wait in runner.spool_dir only \
         until Gitea acknowledges them",
    ),
    ("log.job.retention", When::WithFeature, ""),
    ("log.job.max_size", When::WithFeature, ""),
];

impl Reader<'_> {
    /// Reads `path` when it is one of the Gitea runner's keys in [`PEER_KEYS`] (or a mapping
    /// holding some); false when it is none.
    pub(super) fn peer_key(&mut self, path: &str, v: &Node) -> bool {
        if let Some((_, when, message)) = PEER_KEYS.iter().find(|(key, _, _)| *key == path) {
            self.peer_value(path, v, *when, message);
            return true;
        }
        let holds_peer_keys = PEER_KEYS.iter().any(|(key, _, _)| {
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

    fn peer_value(&mut self, path: &str, v: &Node, when: When, message: &str) {
        let differs = match when {
            When::WithFeature => false,
            When::Always => true,
            _ if v.is_null() => false,
            When::Unless(expected @ ("true" | "false")) => self
                .boolean(path, v)
                .is_some_and(|value| value.to_string() != expected),
            When::Unless(expected) => self
                .string(path, v)
                .is_some_and(|value| value.trim() != expected),
        };
        if differs {
            self.warn(v.span, format!("{path}: {message}"));
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
