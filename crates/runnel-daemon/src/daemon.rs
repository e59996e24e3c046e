//! `runnel daemon`: load the registration, declare labels and version, then one poller that
//! fetches tasks while fewer than `capacity` run, and a clean shutdown.
//!
//! Owns: the effective labels (config over `.runner`), Declare, the fetch loop (one poller
//! whatever the capacity; `tasks_version`; jittered back-off from `fetch_interval` to
//! `fetch_interval_max` while idle or failing), `--once`/ephemeral, and shutdown (stop
//! fetching, let jobs finish up to `shutdown_timeout`, cancel the rest, wait for their
//! reports). Must not: print to a terminal (it logs through `tracing`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runnel_config::{Config, Label};
use runnel_protocol::runner_file::{RunnerFile, RunnerFileError};
use runnel_protocol::{Client, ClientConfig};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::environments::Backends;
use crate::reporter::{ReporterTiming, error_chain};
use crate::task::{TaskSettings, run_task};
use crate::transport;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config: Config,
    /// Run one task, then exit (also implied by an ephemeral registration).
    pub once: bool,
    /// This runner's version, declared to Gitea.
    pub version: String,
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
}

/// Runs the daemon until `shutdown` is cancelled (or, with `once`, one task is done).
pub async fn run_daemon(
    options: DaemonOptions,
    backends: Backends,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let config = &options.config;
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
        .declare(&options.version, &names)
        .await
        .map_err(|source| DaemonError::Declare {
            address: runner_file.address.clone(),
            source,
        })?;
    tracing::info!(
        runner = %declared.name,
        id = declared.id,
        labels = ?declared.labels,
        transport = ?client.transport(),
        "declared to {}", runner_file.address
    );
    let settings = Arc::new(TaskSettings {
        client: client.clone(),
        runner_name: runner_file.name.clone(),
        version: options.version.clone(),
        labels,
        backends,
        envs: config.runner.envs.clone(),
        job_timeout: config.runner.timeout,
        github_mirror: config.runner.github_mirror.clone(),
        timing: ReporterTiming {
            state_interval: config
                .runner
                .state_report_interval
                .max(Duration::from_millis(100)),
            close_timeout: config
                .runner
                .report_close_timeout
                .max(Duration::from_secs(1)),
        },
    });
    let once = options.once || runner_file.ephemeral;
    let jobs_cancel = CancellationToken::new();
    let mut jobs = JoinSet::new();
    let result = poll(
        &client,
        config,
        once,
        &settings,
        &jobs_cancel,
        &mut jobs,
        &shutdown,
    )
    .await;
    finish_jobs(
        &mut jobs,
        &jobs_cancel,
        config.runner.shutdown_timeout,
        &shutdown,
    )
    .await;
    result
}

/// Labels from the config when it lists any, else from `.runner`; invalid ones are skipped
/// with a warning; `.runner` is rewritten when the effective list differs (as the peer does).
fn effective_labels(
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

/// The one poller: a task is fetched only when a slot is free.
async fn poll(
    client: &Client,
    config: &Config,
    once: bool,
    settings: &Arc<TaskSettings>,
    jobs_cancel: &CancellationToken,
    jobs: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<(), DaemonError> {
    let slots = Arc::new(Semaphore::new(config.runner.capacity.max(1)));
    let mut tasks_version = 0i64;
    let mut backoff = Backoff::new(
        config.runner.fetch_interval,
        config.runner.fetch_interval_max,
    );
    loop {
        // Reap finished jobs so the set does not grow.
        while jobs.try_join_next().is_some() {}
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return Ok(()),
            },
            () = shutdown.cancelled() => return Ok(()),
        };
        let fetched = tokio::select! {
            fetched = client.fetch_task(tasks_version) => fetched,
            () = shutdown.cancelled() => return Ok(()),
        };
        let delay = match fetched {
            Ok(response) => match response.task {
                Some(task) => {
                    // 0 makes the next fetch look for more work at once.
                    tasks_version = 0;
                    backoff.reset();
                    let task_id = task.id;
                    tracing::info!(task_id, "task received");
                    let settings = settings.clone();
                    let cancel = jobs_cancel.child_token();
                    let span = tracing::info_span!("task", task_id);
                    jobs.spawn(
                        async move {
                            run_task(settings, task, cancel).await;
                            drop(permit);
                        }
                        .instrument(span),
                    );
                    if once {
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
            Err(error) if error.is_unregistered() => return Err(DaemonError::Unregistered(error)),
            Err(error) => {
                if matches!(error.cause, runnel_protocol::Cause::Timeout(_)) {
                    tracing::debug!("fetching a task timed out");
                } else {
                    tracing::warn!(error = %error_chain(&error), "fetching a task failed");
                }
                backoff.next()
            }
        };
        drop(permit);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return Ok(()),
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
