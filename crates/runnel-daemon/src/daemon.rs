//! `runnel daemon`: load the registration, declare labels and version, then one poller that
//! fetches tasks while fewer than `capacity` run, and a clean shutdown.
//!
//! Owns: the effective labels (config over `.runner`), Declare, the fetch loop (one poller
//! whatever the capacity; `tasks_version`; jittered back-off from `fetch_interval` to
//! `fetch_interval_max` while idle or failing), `--once`/ephemeral, and shutdown (stop
//! fetching, let jobs finish up to `shutdown_timeout`, cancel the rest, wait for their
//! reports), the spool recovery at start, the background redelivery of reports that gave up
//! while running, and the operator endpoints' counters. Must not: print to a terminal (it logs
//! through `tracing`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runnel_config::{Config, Label};
use runnel_protocol::runner_file::{RunnerFile, RunnerFileError};
use runnel_protocol::{Client, ClientConfig};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::reload::{Live, Reloader};
use crate::reporter::{CLOSE_PATIENCE, ReportContext, Reporter, ReporterTiming, error_chain};
use crate::spool::Parked;
use crate::summary::SummaryUploads;
use crate::task::{TaskSettings, run_task};
use crate::transport;
use runnel_assembly::Assembly;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config: Config,
    /// The file `config` came from, read again on SIGHUP; `None`: nothing to reload.
    pub config_path: Option<PathBuf>,
    /// Run one task, then exit (also implied by an ephemeral registration).
    pub once: bool,
    /// This runner's version, declared to Gitea.
    pub version: String,
    /// `--labels` (or `GITEA_RUNNER_LABELS`): when non-empty, the labels whatever
    /// `runner.labels` and `.runner` say, at start and after each SIGHUP reload, as the Gitea
    /// runner's flag. [`DaemonOptions::config`] already carries them.
    pub labels: Vec<String>,
}

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("the runner is not registered ({path} is missing); run `runnel register` first")]
    NotRegistered { path: PathBuf },
    #[error(transparent)]
    RunnerFile(#[from] RunnerFileError),
    #[error("no valid label: {}", .0.join("; "))]
    NoLabels(Vec<String>),
    #[error("cannot set up a client for {address}")]
    Client {
        address: String,
        #[source]
        source: runnel_protocol::ConfigError,
    },
    #[error("declaring the runner's labels to {address} failed")]
    Declare {
        address: String,
        #[source]
        source: runnel_protocol::Error,
    },
    #[error("Gitea no longer accepts this runner; register it again")]
    Unregistered(#[source] runnel_protocol::Error),
    #[error("cannot serve the metrics endpoints on {addr} (metrics.addr)")]
    Metrics {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the daemon until `shutdown` is cancelled (or, with `once`, one task is done).
pub async fn run_daemon(
    options: DaemonOptions,
    assembly: Arc<Assembly>,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let config = &options.config;
    hide_from_jobs();
    let hangup = match &options.config_path {
        Some(_) => crate::reload::catch_sighup()
            .map_err(|error| {
                tracing::warn!(%error, "cannot listen for SIGHUP; the config cannot be reloaded");
            })
            .ok(),
        None => None,
    };
    let metrics = Arc::new(Metrics::default());
    metrics.set_capacity(config.runner.capacity.max(1));
    metrics.set_ready_window(ready_window(config));
    if config.metrics.enabled {
        let addr = &config.metrics.addr;
        let bound = match addr.parse() {
            Ok(socket) => crate::metrics::serve(socket, metrics.clone(), shutdown.clone()).await,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a socket address",
            )),
        }
        .map_err(|source| DaemonError::Metrics {
            addr: addr.clone(),
            source,
        })?;
        tracing::info!("operator endpoints on http://{bound}/metrics, /healthz, /readyz");
    }
    let path = config.runner.file.clone();
    if !path.exists() {
        return Err(DaemonError::NotRegistered { path });
    }
    let mut runner_file = RunnerFile::load(&path)?;
    let labels = effective_labels(config, &mut runner_file, &path)?;
    let mut client_config = ClientConfig::new(&runner_file.address, &options.version);
    client_config.insecure_tls = config.runner.insecure;
    client_config.fetch_timeout = config.runner.fetch_timeout;
    client_config.transport = transport(config.runner.transport);
    client_config.identity = Some(runner_file.identity());
    let client = Client::new(client_config).map_err(|source| DaemonError::Client {
        address: runner_file.address.clone(),
        source,
    })?;
    let names: Vec<String> = labels.iter().map(|l| l.name.clone()).collect();
    let declared = client
        .declare_full(&options.version, &names)
        .await
        .map_err(|source| DaemonError::Declare {
            address: runner_file.address.clone(),
            source,
        })?;
    tracing::info!(
        runner = %declared.runner.name,
        id = declared.runner.id,
        labels = ?declared.runner.labels,
        server_capabilities = ?declared.server_capabilities,
        transport = ?client.transport(),
        "declared to {}", runner_file.address
    );
    metrics.declared();
    let spool_dir = config.runner.effective_spool_dir();
    let parked = Parked::default();
    let report = ReportContext {
        client: client.clone(),
        timing: reporter_timing(config),
        metrics: metrics.clone(),
        stopping: shutdown.clone(),
        parked: parked.clone(),
        summary_uploads: SummaryUploads::for_server(
            &declared.server_capabilities,
            client.base_url(),
            config.runner.insecure,
        ),
    };
    let mut jobs = JoinSet::new();
    recover_spooled_tasks(&spool_dir, &runner_file.address, &report, &mut jobs);
    let redelivery_stop = shutdown.child_token();
    let redelivery = tokio::spawn(
        redeliver(spool_dir.clone(), report.clone(), redelivery_stop.clone())
            .instrument(tracing::info_span!("redeliver")),
    );
    let settings = Arc::new(TaskSettings {
        report,
        spool_dir: Some(spool_dir),
        address: runner_file.address.clone(),
        runner_name: runner_file.name.clone(),
        version: options.version.clone(),
        labels,
        assembly,
        envs: config.runner.job_envs(),
        job_timeout: config.runner.timeout,
        github_mirror: config.runner.github_mirror.clone(),
        mask: crate::task::runner_credentials(config, &runner_file.token),
        job_log: config.log.job.clone(),
    });
    // Ready for systemd once declared and the cache server (which jobs need) is listening.
    let _systemd = crate::notify::Systemd::start(metrics.clone(), &shutdown);
    let (live_sender, live) = watch::channel(Arc::new(Live {
        config: config.clone(),
        settings,
    }));
    if let (Some(config_path), Some(hangup)) = (&options.config_path, hangup) {
        let reloader = Reloader {
            config_path: config_path.clone(),
            runner_file: path.clone(),
            version: options.version.clone(),
            labels: options.labels.clone(),
            client: client.clone(),
            metrics: metrics.clone(),
            live: live_sender,
        };
        reloader.listen(hangup, shutdown.clone());
    }
    let once = options.once || runner_file.ephemeral;
    let jobs_cancel = CancellationToken::new();
    let poller = Poller {
        health: health_of(&live.borrow().config),
        client: &client,
        live: live.clone(),
        once,
        metrics: &metrics,
        jobs_cancel: &jobs_cancel,
        shutdown: &shutdown,
        parked: &parked,
    };
    let result = poller.run(&mut jobs).await;
    let shutdown_timeout = live.borrow().config.runner.shutdown_timeout;
    finish_jobs(&mut jobs, &jobs_cancel, shutdown_timeout, &shutdown).await;
    // What is still parked waits for the next start; a redelivery in flight gets one
    // `close_timeout` to finish.
    redelivery_stop.cancel();
    let _ = redelivery.await;
    match &result {
        Ok(()) => tracing::info!(
            parked = ?parked.list(),
            "runner stopped: no job running, every report delivered or kept in the spool"
        ),
        Err(error) => tracing::error!(%error, "runner stopped"),
    }
    result
}

/// Overrides how long one final report is retried before it is parked ([`CLOSE_PATIENCE`]);
/// a duration like `20s`. For tests that outlast it; not a config key.
const PATIENCE_ENV: &str = "RUNNEL_REPORT_PATIENCE";

/// How the reporters pace themselves under `config`.
pub(crate) fn reporter_timing(config: &Config) -> ReporterTiming {
    let close_patience = std::env::var(PATIENCE_ENV)
        .ok()
        .and_then(|text| match runnel_config::parse_duration(&text) {
            Ok(duration) => Some(duration),
            Err(error) => {
                tracing::warn!("{PATIENCE_ENV}={text:?} ignored: {error}");
                None
            }
        })
        .unwrap_or(CLOSE_PATIENCE)
        .max(Duration::from_secs(1));
    ReporterTiming {
        state_interval: config
            .runner
            .state_report_interval
            .max(Duration::from_millis(100)),
        close_timeout: config
            .runner
            .report_close_timeout
            .max(Duration::from_secs(1)),
        close_patience,
    }
}

/// First pause before a parked report is tried again; doubled after each round that left
/// something parked, up to [`REDELIVER_MAX_PAUSE`].
const REDELIVER_FIRST_PAUSE: Duration = Duration::from_secs(10);
const REDELIVER_MAX_PAUSE: Duration = Duration::from_secs(5 * 60);
/// How long one redelivery attempt keeps trying before the task is parked again.
const REDELIVER_PATIENCE: Duration = Duration::from_secs(60);

/// Delivers, while the daemon runs, the final reports that gave up (parked in
/// `report.parked`): after a jittered pause that doubles while Gitea stays away, or at once
/// when the poller sees Gitea answer again. One task at a time, each attempt bounded by
/// [`REDELIVER_PATIENCE`], so a long outage costs a few requests and one file in memory, and
/// jobs keep their slots. Stops at shutdown; what is still parked stays in the spool for the
/// next start.
async fn redeliver(dir: PathBuf, report: ReportContext, shutdown: CancellationToken) {
    let parked = report.parked.clone();
    let mut report = report;
    report.timing.close_patience = report.timing.close_patience.min(REDELIVER_PATIENCE);
    report.stopping = shutdown.clone();
    let mut pause = REDELIVER_FIRST_PAUSE;
    loop {
        while parked.is_empty() {
            tokio::select! {
                () = parked.parked() => {}
                () = shutdown.cancelled() => return,
            }
        }
        let jittered = pause.mul_f64(0.8 + 0.4 * fastrand::f64());
        tracing::info!(
            parked = parked.list().len(),
            "retrying parked reports in {jittered:.1?} (sooner when Gitea answers again)"
        );
        tokio::select! {
            () = tokio::time::sleep(jittered) => {}
            () = parked.nudged() => {}
            () = shutdown.cancelled() => return,
        }
        for task_id in parked.list() {
            if shutdown.is_cancelled() {
                return;
            }
            parked.unpark(task_id);
            let Some(recovered) = crate::spool::read_task(&dir, task_id) else {
                continue;
            };
            tracing::info!(task_id, "retrying the report Gitea did not take");
            let delivered = Reporter::recover(report.clone(), recovered)
                .instrument(tracing::info_span!("task", task_id))
                .await;
            if !delivered && parked.list().contains(&task_id) {
                // Gitea is still away (the task was parked again): the rest waits for the
                // next round.
                break;
            }
        }
        pause = if parked.is_empty() {
            REDELIVER_FIRST_PAUSE
        } else {
            (pause * 2).min(REDELIVER_MAX_PAUSE)
        };
    }
}

/// How recent the last good poll must be for `/readyz`: `metrics.readiness_grace` (the Gitea
/// runner's key) but at least one poll pause and a fetch; else three idle poll pauses and a
/// fetch, at least 30 s.
pub(crate) fn ready_window(config: &Config) -> Duration {
    let one_poll = config
        .runner
        .fetch_interval_max
        .max(config.runner.fetch_interval)
        + config.runner.fetch_timeout;
    if let Some(grace) = config.metrics.readiness_grace {
        return grace.max(one_poll);
    }
    (config
        .runner
        .fetch_interval_max
        .max(config.runner.fetch_interval)
        * 3
        + config.runner.fetch_timeout)
        .max(Duration::from_secs(30))
}

/// Finishes, in the background, the tasks an earlier process of this runner left in the
/// spool (killed mid-job, or stopped before Gitea took the last report).
fn recover_spooled_tasks(
    dir: &Path,
    address: &str,
    report: &ReportContext,
    jobs: &mut JoinSet<()>,
) {
    for recovered in crate::spool::read_dir(dir) {
        let task_id = recovered.task_id;
        if recovered.address != address {
            tracing::warn!(
                task_id,
                spooled_for = %recovered.address,
                "a spooled task belongs to another Gitea instance; left in the spool"
            );
            continue;
        }
        tracing::info!(
            task_id,
            rows = recovered.rows.len(),
            "recovering a task from the spool"
        );
        report.metrics.task_recovered();
        let report = report.clone();
        jobs.spawn(
            async move {
                Reporter::recover(report, recovered).await;
            }
            .instrument(tracing::info_span!("recover", task_id)),
        );
    }
}

/// Labels from the config when it lists any, else from `.runner`; invalid ones are skipped
/// with a warning; `.runner` is rewritten when the effective list differs (as the peer does).
pub(crate) fn effective_labels(
    config: &Config,
    runner_file: &mut RunnerFile,
    path: &std::path::Path,
) -> Result<Vec<Label>, DaemonError> {
    let texts = if config.runner.labels.is_empty() {
        runner_file.labels.clone()
    } else {
        config.runner.labels.clone()
    };
    let (labels, errors) = runnel_config::parse_labels(&texts);
    for error in &errors {
        tracing::warn!("{error}; label skipped");
    }
    let (labels, warnings) = runnel_config::resolve_labels(labels, &config.runner.default_image);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    if labels.is_empty() {
        return Err(DaemonError::NoLabels(
            errors.iter().map(ToString::to_string).collect(),
        ));
    }
    let valid: Vec<String> = texts
        .iter()
        .filter(|t| Label::parse(t).is_ok())
        .cloned()
        .collect();
    if valid != runner_file.labels {
        runner_file.labels = valid;
        runner_file.save(path)?;
    }
    Ok(labels)
}

/// The one poller: a task is fetched only when a slot is free. Reads the live settings (which
/// SIGHUP replaces) before each fetch.
struct Poller<'a> {
    /// `health_check:`, made again when the config is reloaded.
    health: Health,
    client: &'a Client,
    live: watch::Receiver<Arc<Live>>,
    once: bool,
    metrics: &'a Metrics,
    jobs_cancel: &'a CancellationToken,
    shutdown: &'a CancellationToken,
    /// Nudged when a fetch succeeds after failures (Gitea is back).
    parked: &'a Parked,
}

impl Poller<'_> {
    async fn run(mut self, jobs: &mut JoinSet<()>) -> Result<(), DaemonError> {
        let shutdown = self.shutdown;
        let initial = self.live.borrow_and_update().config.runner.clone();
        let slots = Slots::new(initial.capacity.max(1));
        let mut tasks_version = 0i64;
        let mut backoff = Backoff::new(initial.fetch_interval, initial.fetch_interval_max);
        let mut failing = false;
        let mut unhealthy = false;
        loop {
            // Reap finished jobs so the set does not grow.
            while jobs.try_join_next().is_some() {}
            if self.live.has_changed().unwrap_or(false) {
                let runner = self.live.borrow_and_update().config.runner.clone();
                slots.set_capacity(runner.capacity.max(1));
                backoff = Backoff::new(runner.fetch_interval, runner.fetch_interval_max);
                self.health = health_of(&self.live.borrow().config);
            }
            let slot = tokio::select! {
                slot = slots.acquire() => slot,
                () = shutdown.cancelled() => return Ok(()),
            };
            match self.health.admit(jobs.is_empty()).await {
                Err(reason) => {
                    if !std::mem::replace(&mut unhealthy, true) {
                        tracing::warn!(%reason, "health check failed: no new task is fetched until it passes");
                    }
                    self.metrics.set_unhealthy(Some(reason));
                    drop(slot);
                    let pause = self.live.borrow().config.runner.fetch_interval;
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.cancelled() => return Ok(()),
                    }
                    continue;
                }
                Ok(()) => {
                    if std::mem::replace(&mut unhealthy, false) {
                        tracing::info!("health check passes again: fetching tasks");
                        self.metrics.set_unhealthy(None);
                    }
                }
            }
            let began = Instant::now();
            let fetched = tokio::select! {
                fetched = self.client.fetch_task(tasks_version) => fetched,
                () = shutdown.cancelled() => return Ok(()),
            };
            self.metrics.poll(began.elapsed(), fetched.is_ok());
            if fetched.is_ok() && std::mem::replace(&mut failing, false) {
                tracing::info!("Gitea answers again");
                self.parked.nudge();
            }
            failing |= fetched.is_err();
            let delay = match fetched {
                Ok(response) => match response.task {
                    Some(task) => {
                        // 0 makes the next fetch look for more work at once.
                        tasks_version = 0;
                        backoff.reset();
                        let task_id = task.id;
                        tracing::info!(task_id, "task received");
                        let settings = self.live.borrow().settings.clone();
                        let cancel = self.jobs_cancel.child_token();
                        let span = tracing::info_span!("task", task_id);
                        jobs.spawn(
                            async move {
                                run_task(settings, task, cancel).await;
                                drop(slot);
                            }
                            .instrument(span),
                        );
                        if self.once {
                            return Ok(());
                        }
                        continue;
                    }
                    None => {
                        if response.tasks_version != tasks_version {
                            // Something changed in Gitea even if nothing was for us: stay quick.
                            backoff.reset();
                            tasks_version = response.tasks_version;
                        }
                        backoff.next()
                    }
                },
                Err(error) if error.is_unregistered() => {
                    return Err(DaemonError::Unregistered(error));
                }
                Err(error) => {
                    if matches!(error.cause, runnel_protocol::Cause::Timeout(_)) {
                        tracing::debug!("fetching a task timed out");
                    } else {
                        tracing::warn!(error = %error_chain(&error), "fetching a task failed");
                    }
                    backoff.next()
                }
            };
            drop(slot);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}

/// The admission checks `config` asks for, on the host backend's job directories.
fn health_of(config: &Config) -> Health {
    let work_dir = config
        .host
        .effective_workdir_parent()
        .unwrap_or_else(std::env::temp_dir);
    Health::new(config.health_check.clone(), work_dir)
}

/// Job slots whose number can change while jobs run (SIGHUP): lowering the capacity lets
/// running jobs finish and only holds back new fetches.
struct Slots {
    /// (taken, capacity)
    counts: Mutex<(usize, usize)>,
    freed: Notify,
}

/// A taken slot; dropping it frees it.
struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.0.lock();
        counts.0 = counts.0.saturating_sub(1);
        drop(counts);
        self.0.freed.notify_waiters();
    }
}

impl Slots {
    fn new(capacity: usize) -> Arc<Slots> {
        Arc::new(Slots {
            counts: Mutex::new((0, capacity)),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, usize)> {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_capacity(&self, capacity: usize) {
        self.lock().1 = capacity;
        self.freed.notify_waiters();
    }

    async fn acquire(self: &Arc<Self>) -> Slot {
        loop {
            // Registered before the check, so a release between the check and the wait is
            // not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut counts = self.lock();
                if counts.0 < counts.1 {
                    counts.0 += 1;
                    return Slot(self.clone());
                }
            }
            freed.await;
        }
    }
}

/// Waits for running jobs: all the way when not shutting down (`--once`), else up to
/// `shutdown_timeout`, then cancels them and waits for their final reports.
async fn finish_jobs(
    jobs: &mut JoinSet<()>,
    jobs_cancel: &CancellationToken,
    shutdown_timeout: Duration,
    shutdown: &CancellationToken,
) {
    if jobs.is_empty() {
        return;
    }
    if !shutdown.is_cancelled() {
        tokio::select! {
            () = drain(jobs) => return,
            () = shutdown.cancelled() => {}
        }
    }
    tracing::info!(running = jobs.len(), timeout = ?shutdown_timeout, "shutting down: waiting for running jobs");
    if tokio::time::timeout(shutdown_timeout, drain(jobs))
        .await
        .is_ok()
    {
        return;
    }
    tracing::info!(running = jobs.len(), "cancelling the jobs still running");
    jobs_cancel.cancel();
    drain(jobs).await;
}

async fn drain(jobs: &mut JoinSet<()>) {
    while jobs.join_next().await.is_some() {}
}

/// The pause between fetches: `fetch_interval` after activity, doubling to `max` while idle or
/// failing, with ±20 % jitter so a fleet restarted together does not poll in lockstep.
struct Backoff {
    base: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(base: Duration, max: Duration) -> Backoff {
        let base = base.max(Duration::from_millis(10));
        Backoff {
            base,
            max: max.max(base),
            current: base,
        }
    }

    fn reset(&mut self) {
        self.current = self.base;
    }

    fn next(&mut self) -> Duration {
        let delay = self.current;
        self.current = (self.current * 2).min(self.max);
        delay.mul_f64(0.8 + 0.4 * fastrand::f64())
    }
}

/// Cancels `shutdown` on the first SIGTERM or SIGINT.
/// Makes this process undumpable: host jobs run as the runner's user, and could otherwise
/// read the runner's environment and memory (`/proc/<pid>/environ`, `ptrace`) — the
/// registration token and S3 keys it started with. Core dumps go too. (A runner running as
/// root gives its host jobs root anyway: no such line holds there.)
fn hide_from_jobs() {
    if let Err(error) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(%error, "cannot make the runner undumpable; host jobs can read its environment");
    }
}

pub fn cancel_on_signals(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        shutdown.cancel();
    });
    Ok(())
}
