//! SIGHUP: read `config.yaml` again and apply what can change while jobs run — labels
//! (declared to Gitea again, which also refreshes what the server supports: job summaries),
//! capacity, `envs`/`env_file`, timeouts, fetch intervals, the actions mirror, the report
//! timings and `health_check`. Jobs already running keep the settings they started with. A file that does not
//! load (or labels Gitea refuses) leaves the running config in place and logs why, with
//! file:line:col.
//!
//! Owns: the [`Live`] settings the poller reads, and the list of keys that need a restart
//! (logged, not applied). Must not: stop or restart jobs, or touch the backends.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use runnel_config::{Config, format_duration};
use runnel_protocol::Client;
use runnel_protocol::runner_file::RunnerFile;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::daemon::{effective_labels, ready_window, reporter_timing};
use crate::metrics::Metrics;
use crate::reporter::{ReportContext, error_chain};
use crate::summary::SummaryUploads;
use crate::task::TaskSettings;

/// Takes SIGHUP over from its default action (ending the process).
pub(crate) fn catch_sighup() -> std::io::Result<Signal> {
    signal(SignalKind::hangup())
}

/// The config in effect and the settings new tasks get.
pub(crate) struct Live {
    pub(crate) config: Config,
    pub(crate) settings: Arc<TaskSettings>,
}

/// Reloads on SIGHUP.
pub(crate) struct Reloader {
    pub(crate) config_path: PathBuf,
    pub(crate) runner_file: PathBuf,
    pub(crate) version: String,
    /// `--labels`: when non-empty, they replace the reloaded `runner.labels`.
    pub(crate) labels: Vec<String>,
    pub(crate) client: Client,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) live: watch::Sender<Arc<Live>>,
}

impl Reloader {
    /// Reloads at every SIGHUP until `shutdown`. `hangup` is [`catch_sighup`]'s stream, made
    /// at start: a SIGHUP that arrives before the daemon is ready waits instead of killing it
    /// (the default action).
    pub(crate) fn listen(self, mut hangup: Signal, shutdown: CancellationToken) {
        tracing::info!(path = %self.config_path.display(), "SIGHUP reloads the config");
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    received = hangup.recv() => if received.is_none() { return },
                    () = shutdown.cancelled() => return,
                }
                tracing::info!(path = %self.config_path.display(), "SIGHUP received: reloading the config");
                self.reload().await;
            }
        });
    }

    async fn reload(&self) {
        let loaded = match Config::load(&self.config_path) {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(
                    "reloading the config failed; the running config stays: {}",
                    error_chain(&error)
                );
                return;
            }
        };
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let mut new = loaded.config;
        if !self.labels.is_empty() {
            new.runner.labels = self.labels.clone();
        }
        let old = self.live.borrow().clone();
        let (applied, restart) = changes(&old.config, &new);
        if applied.is_empty() && restart.is_empty() {
            tracing::info!("config reloaded: nothing changed");
            return;
        }
        let mut labels = old.settings.labels.clone();
        let mut summary_uploads = old.settings.report.summary_uploads.clone();
        if new.runner.labels != old.config.runner.labels {
            match self.declare(&new).await {
                Ok((declared, capabilities)) => {
                    labels = declared;
                    // The answer says again what the server supports (it may have been
                    // upgraded or downgraded since the start).
                    summary_uploads = SummaryUploads::for_server(
                        &capabilities,
                        self.client.base_url(),
                        old.config.runner.insecure,
                    );
                }
                Err(message) => {
                    tracing::error!(
                        "reloading the config failed; the running config stays: {message}"
                    );
                    return;
                }
            }
        }
        let settings = TaskSettings {
            report: ReportContext {
                timing: reporter_timing(&new),
                summary_uploads,
                ..old.settings.report.clone()
            },
            labels,
            envs: new.runner.job_envs(),
            job_timeout: new.runner.timeout,
            github_mirror: new.runner.github_mirror.clone(),
            job_log: new.log.job.clone(),
            mask: {
                let mut mask = old.settings.mask.clone();
                mask.extend(crate::task::runner_credentials(&new, ""));
                mask.sort();
                mask.dedup();
                mask
            },
            ..(*old.settings).clone()
        };
        for change in &applied {
            tracing::info!("config reloaded: {change}");
        }
        for key in &restart {
            tracing::warn!("config reloaded: {key} changed; it takes effect at the next start");
        }
        self.metrics.set_capacity(new.runner.capacity.max(1));
        self.metrics.set_ready_window(ready_window(&new));
        self.live.send_replace(Arc::new(Live {
            config: new,
            settings: Arc::new(settings),
        }));
    }

    /// Declares the new labels; returns them and the capabilities the server announces, or
    /// why they were not taken.
    async fn declare(
        &self,
        config: &Config,
    ) -> Result<(Vec<runnel_config::Label>, Vec<String>), String> {
        let mut runner_file = RunnerFile::load(&self.runner_file).map_err(|e| error_chain(&e))?;
        let labels = effective_labels(config, &mut runner_file, &self.runner_file)
            .map_err(|e| error_chain(&e))?;
        let names: Vec<String> = labels.iter().map(|l| l.name.clone()).collect();
        let declared = self
            .client
            .declare_full(&self.version, &names)
            .await
            .map_err(|e| format!("declaring the new labels failed: {}", error_chain(&e)))?;
        tracing::info!(
            labels = ?declared.runner.labels,
            server_capabilities = ?declared.server_capabilities,
            "labels declared to Gitea"
        );
        Ok((labels, declared.server_capabilities))
    }
}

/// What differs between two configs: lines for the keys applied at once, and the names of
/// keys that need a restart. `envs` values are not printed (they may hold secrets).
fn changes(old: &Config, new: &Config) -> (Vec<String>, Vec<String>) {
    let mut applied = Vec::new();
    let mut restart = Vec::new();
    let mut now = |key: &str, before: String, after: String| {
        if before != after {
            applied.push(format!("{key}: {before} -> {after}"));
        }
    };
    let (o, n) = (&old.runner, &new.runner);
    now(
        "runner.labels",
        format!("{:?}", o.labels),
        format!("{:?}", n.labels),
    );
    now(
        "runner.capacity",
        o.capacity.to_string(),
        n.capacity.to_string(),
    );
    let d = |d: std::time::Duration| format_duration(d);
    now("runner.timeout", d(o.timeout), d(n.timeout));
    now(
        "runner.shutdown_timeout",
        d(o.shutdown_timeout),
        d(n.shutdown_timeout),
    );
    now(
        "runner.fetch_interval",
        d(o.fetch_interval),
        d(n.fetch_interval),
    );
    now(
        "runner.fetch_interval_max",
        d(o.fetch_interval_max),
        d(n.fetch_interval_max),
    );
    now(
        "runner.state_report_interval",
        d(o.state_report_interval),
        d(n.state_report_interval),
    );
    now(
        "runner.report_close_timeout",
        d(o.report_close_timeout),
        d(n.report_close_timeout),
    );
    now(
        "runner.github_mirror",
        o.github_mirror.clone(),
        n.github_mirror.clone(),
    );
    now(
        "log.job",
        format!("{:?}", old.log.job),
        format!("{:?}", new.log.job),
    );
    // The poller makes its health checks again from the new config.
    now(
        "health_check",
        format!("{:?}", old.health_check),
        format!("{:?}", new.health_check),
    );
    if let Some(change) = env_change(&o.job_envs(), &n.job_envs()) {
        applied.push(change);
    }
    let mut later = |key: &str, differs: bool| {
        if differs {
            restart.push(key.to_owned());
        }
    };
    later("log.level", old.log.level != new.log.level);
    later("runner.file", o.file != n.file);
    later("runner.insecure", o.insecure != n.insecure);
    later("runner.fetch_timeout", o.fetch_timeout != n.fetch_timeout);
    later("runner.transport", o.transport != n.transport);
    later("runner.patch_actions", o.patch_actions != n.patch_actions);
    later("runner.spool_dir", o.spool_dir != n.spool_dir);
    // Where unmatched jobs run is fixed at start (the assembly's fallback).
    later("runner.default_image", o.default_image != n.default_image);
    later(
        "runner.tool_cache_mode",
        o.tool_cache_mode != n.tool_cache_mode,
    );
    later("cache", old.cache != new.cache);
    later("container", old.container != new.container);
    later("host", old.host != new.host);
    later("metrics", old.metrics != new.metrics);
    (applied, restart)
}

/// `runner.envs: added A; removed B; changed C` (names only).
fn env_change(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Option<String> {
    let names = |pick: &dyn Fn(&String) -> bool, map: &BTreeMap<String, String>| {
        map.keys()
            .filter(|k| pick(k))
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    let added = names(&|k| !old.contains_key(k), new);
    let removed = names(&|k| !new.contains_key(k), old);
    let changed = names(&|k| old.get(k).is_some_and(|v| new.get(k) != Some(v)), old);
    let parts: Vec<String> = [("added", added), ("removed", removed), ("changed", changed)]
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(what, list)| format!("{what} {list}"))
        .collect();
    (!parts.is_empty()).then(|| format!("runner.envs: {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_applied_keys_with_values_and_restart_keys_by_name() {
        let old = Config::default();
        let mut new = Config::default();
        new.runner.capacity = 3;
        new.runner.labels = vec!["a:host".to_owned()];
        new.runner
            .envs
            .insert("TOKEN".to_owned(), "secret".to_owned());
        new.runner.insecure = true;
        new.metrics.enabled = true;
        let (applied, restart) = changes(&old, &new);
        assert_eq!(
            applied,
            [
                "runner.labels: [] -> [\"a:host\"]",
                "runner.capacity: 1 -> 3",
                "runner.envs: added TOKEN",
            ]
        );
        assert_eq!(restart, ["runner.insecure", "metrics"]);
        assert!(!applied.join(" ").contains("secret"));
    }
}
