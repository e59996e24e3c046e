//! The reporter: one task's engine records → Gitea log rows and step states.
//!
//! Owns: the row buffer (rows are kept until Gitea acknowledges their index, and resent from
//! the acknowledged index after a failure; the server trims overlaps), the step ranges
//! (`log_index`/`log_length`, contiguous and in step order), heartbeats, noticing a cancel in
//! Gitea's UpdateTask answer, outputs resent until acknowledged, and the final sequence (the
//! step summaries uploaded or logged by `summary`, last rows with `no_more`, then the
//! result). Must not: run the job or format for a terminal.
//!
//! Latency design. There is no flush timer: a record wakes the sender at once, so a line
//! written while nothing is in flight leaves within one round trip. While a request is in
//! flight, new rows pile up and leave together in the next one, so a chatty step costs one
//! request per round trip, not one per line. State goes out on every step transition and as a
//! heartbeat every `state_report_interval` (which also bounds how late a cancel is seen).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use prost_types::Timestamp;
use runnel_engine::{AnnotationLevel, JobResult, LogEvent, LogRecord, LogSink, StepStatus};
use runnel_protocol::Client;
use runnel_protocol::proto::runner::{self, LogRow, StepState, TaskState};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::context::result_to_proto;
use crate::job_log::JobLogCopy;
use crate::metrics::Metrics;
use crate::spool::{Parked, Recovered, TaskSpool};
use crate::summary::{SummaryPart, SummaryTarget, SummaryUploads};

/// Most rows in one UpdateLog request; a backlog leaves in several.
const MAX_ROWS_PER_REQUEST: usize = 1000;
/// Gitea keeps at most 64 KiB of a row.
const MAX_ROW_BYTES: usize = 64 * 1024;
/// Bound of one report call while the job runs; the client's own retries fit inside it.
const RUNNING_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Keys Gitea refuses (it skips longer ones).
const MAX_OUTPUT_KEY_BYTES: usize = 255;
/// How long the final report is retried while the daemon keeps running (Gitea fails a task
/// silent for 10 minutes as a zombie, so trying longer in one go is pointless). What is not
/// delivered by then stays in the spool, parked for the daemon's background redelivery (and
/// the next start).
pub(crate) const CLOSE_PATIENCE: Duration = Duration::from_secs(15 * 60);

/// How the reporter paces itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReporterTiming {
    pub(crate) state_interval: Duration,
    pub(crate) close_timeout: Duration,
    /// How long one final report is retried before it is parked ([`CLOSE_PATIENCE`]).
    pub(crate) close_patience: Duration,
}

/// What every reporter of the daemon shares.
#[derive(Clone)]
pub(crate) struct ReportContext {
    pub(crate) client: Client,
    pub(crate) timing: ReporterTiming,
    pub(crate) metrics: Arc<Metrics>,
    /// Cancelled when the daemon shuts down: a final report still undelivered then gets one
    /// `close_timeout` more, and the spool keeps the rest for the next start.
    pub(crate) stopping: CancellationToken,
    /// Where a final report that gave up is parked for the background redelivery.
    pub(crate) parked: Parked,
    /// Set when the server takes job summaries (its last Declare said `job-summary`).
    pub(crate) summary_uploads: Option<SummaryUploads>,
}

struct ReportState {
    task_id: i64,
    /// Rows not yet acknowledged; `rows[0]` has absolute index `acked`.
    rows: VecDeque<LogRow>,
    acked: i64,
    started_at: Option<Timestamp>,
    stopped_at: Option<Timestamp>,
    steps: Vec<StepState>,
    current_step: Option<usize>,
    /// A step started or ended since the last UpdateTask.
    state_dirty: bool,
    /// Outputs not yet listed in `sent_outputs`.
    outputs: BTreeMap<String, String>,
    /// Set at close; until then Gitea sees UNSPECIFIED so it does not finalize early.
    result: Option<runner::Result>,
    /// Where rows and states go before they are sent; `None` when spooling is off or failed.
    spool: Option<TaskSpool>,
    metrics: Arc<Metrics>,
    /// Step summaries, uploaded or logged as one block when the job closes.
    summaries: Vec<SummaryPart>,
    /// `log.job`: the copy of the log on this machine.
    copy: Option<JobLogCopy>,
}

impl ReportState {
    fn total(&self) -> i64 {
        self.acked + self.rows.len() as i64
    }

    /// Adds rows (one per text) and writes them to the spool in one record.
    fn add_rows(&mut self, time: SystemTime, texts: impl IntoIterator<Item = String>) {
        let from = self.rows.len();
        for text in texts {
            self.push_row(time, text);
        }
        let added = self.rows.len() - from;
        if added == 0 {
            return;
        }
        let spooled = match &mut self.spool {
            Some(spool) => {
                let new_rows: Vec<LogRow> = self.rows.iter().skip(from).cloned().collect();
                spool.rows(&new_rows);
                spool.is_active()
            }
            None => false,
        };
        self.metrics.rows_added(added as u64, spooled);
        if let Some(copy) = &mut self.copy {
            copy.rows(
                time,
                self.rows.iter().skip(from).map(|row| row.content.as_str()),
            );
        }
    }

    /// Writes the step states to the spool (after a step starts or ends).
    fn spool_state(&mut self) {
        if let Some(spool) = &mut self.spool {
            let state = TaskState {
                id: self.task_id,
                result: runner::Result::Unspecified as i32,
                started_at: self.started_at,
                stopped_at: None,
                steps: self.steps.clone(),
            };
            spool.state(&state, self.current_step);
        }
    }

    fn push_row(&mut self, time: SystemTime, mut content: String) {
        if content.len() > MAX_ROW_BYTES {
            let mut end = MAX_ROW_BYTES;
            while !content.is_char_boundary(end) {
                end -= 1;
            }
            content.truncate(end);
        }
        if self.started_at.is_none() {
            self.started_at = Some(Timestamp::from(time));
        }
        if let Some(step) = self.current_step.and_then(|i| self.steps.get_mut(i)) {
            step.log_length += 1;
        }
        self.rows.push_back(LogRow {
            time: Some(Timestamp::from(time)),
            content,
        });
    }

    fn step_started(&mut self, index: usize, time: SystemTime) {
        let at = self.total();
        if let Some(step) = self.steps.get_mut(index) {
            step.started_at = Some(Timestamp::from(time));
            step.log_index = at;
            step.log_length = 0;
            self.current_step = Some(index);
            self.state_dirty = true;
        }
        self.spool_state();
    }

    fn step_finished(&mut self, index: usize, conclusion: StepStatus, time: SystemTime) {
        let at = self.total();
        if let Some(step) = self.steps.get_mut(index) {
            if step.started_at.is_none() {
                // Skipped: an empty range at the current end keeps ranges in order.
                step.started_at = Some(Timestamp::from(time));
                step.log_index = at;
                step.log_length = 0;
            }
            step.stopped_at = Some(Timestamp::from(time));
            step.result = step_result(conclusion) as i32;
            self.state_dirty = true;
        }
        if self.current_step == Some(index) {
            self.current_step = None;
        }
        self.spool_state();
    }

    fn task_state(&self, result: runner::Result) -> TaskState {
        TaskState {
            id: self.task_id,
            result: result as i32,
            started_at: self.started_at,
            stopped_at: if result == runner::Result::Unspecified {
                None
            } else {
                self.stopped_at
            },
            steps: self.steps.clone(),
        }
    }
}

fn step_result(status: StepStatus) -> runner::Result {
    match status {
        StepStatus::Success => runner::Result::Success,
        StepStatus::Failure => runner::Result::Failure,
        StepStatus::Cancelled => runner::Result::Cancelled,
        StepStatus::Skipped => runner::Result::Skipped,
    }
}

struct Shared {
    state: Mutex<ReportState>,
    wake: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ReportState> {
        // A panic while holding the lock leaves plain data behind; keep reporting.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The engine's sink for one task.
#[derive(Clone)]
pub(crate) struct ReporterSink {
    shared: Arc<Shared>,
}

impl LogSink for ReporterSink {
    fn record(&self, record: LogRecord) {
        let mut state = self.shared.lock();
        let time = record.time;
        let text = match record.event {
            LogEvent::StepStarted => {
                if let Some(step) = &record.step {
                    state.step_started(step.index, time);
                }
                None
            }
            LogEvent::StepFinished { conclusion, .. } => {
                if let Some(step) = &record.step {
                    state.step_finished(step.index, conclusion, time);
                }
                None
            }
            LogEvent::JobStarted | LogEvent::JobFinished { .. } => None,
            LogEvent::Line { text, .. } => Some(text),
            LogEvent::GroupStart { title } => Some(format!("::group::{title}")),
            LogEvent::GroupEnd => Some("::endgroup::".to_owned()),
            LogEvent::Debug { text } => Some(format!("::debug::{text}")),
            LogEvent::Annotation(annotation) => {
                let level = match annotation.level {
                    AnnotationLevel::Notice => "notice",
                    AnnotationLevel::Warning => "warning",
                    AnnotationLevel::Error => "error",
                };
                Some(format!("::{level}::{}", annotation.message))
            }
            LogEvent::Runner { text, .. } => Some(text),
            LogEvent::StepSummary { markdown } => {
                let (index, step) = record
                    .step
                    .map(|step| (step.index, step.name))
                    .unwrap_or_default();
                state.summaries.push(SummaryPart {
                    index,
                    step,
                    markdown,
                });
                None
            }
        };
        if let Some(text) = text {
            state.add_rows(
                time,
                text.split('\n')
                    .map(|line| line.trim_end_matches('\r').to_owned()),
            );
        }
        drop(state);
        self.shared.wake.notify_one();
    }
}

/// Sends one task's rows and state until closed.
pub(crate) struct Reporter {
    shared: Arc<Shared>,
    context: ReportContext,
    /// Cancelled when Gitea says the task is over (a cancel in the UI).
    job_cancel: CancellationToken,
    stop_sender: CancellationToken,
    sender: Option<tokio::task::JoinHandle<()>>,
    /// Where the job's summaries are uploaded; `None`: they end the job log.
    summary_target: Option<SummaryTarget>,
}

impl Reporter {
    /// Starts reporting task `task_id` with `steps` steps, spooling to `spool` first; a cancel
    /// seen in Gitea's answers cancels `job_cancel`. Step summaries go to `summary_target`
    /// when there is one, else to the end of the log.
    pub(crate) fn start(
        context: ReportContext,
        task_id: i64,
        steps: usize,
        spool: Option<TaskSpool>,
        copy: Option<JobLogCopy>,
        job_cancel: CancellationToken,
        summary_target: Option<SummaryTarget>,
    ) -> Reporter {
        let steps = (0..steps)
            .map(|id| StepState {
                id: id as i64,
                ..StepState::default()
            })
            .collect();
        let mut state = ReportState {
            task_id,
            rows: VecDeque::new(),
            acked: 0,
            started_at: Some(Timestamp::from(SystemTime::now())),
            stopped_at: None,
            steps,
            current_step: None,
            state_dirty: true,
            outputs: BTreeMap::new(),
            result: None,
            spool,
            metrics: context.metrics.clone(),
            summaries: Vec::new(),
            copy,
        };
        // The step count goes to the spool first, so a recovery reports every step.
        state.spool_state();
        let mut reporter = Reporter::new(context, state, job_cancel);
        reporter.summary_target = summary_target;
        let worker = reporter.worker(RUNNING_CALL_TIMEOUT);
        reporter.sender = Some(tokio::spawn(worker.run()));
        reporter
    }

    fn new(context: ReportContext, state: ReportState, job_cancel: CancellationToken) -> Reporter {
        Reporter {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                wake: Notify::new(),
            }),
            context,
            job_cancel,
            stop_sender: CancellationToken::new(),
            sender: None,
            summary_target: None,
        }
    }

    /// Finishes a task from its spool file — one an earlier daemon process left, or one whose
    /// report this process parked: its unacknowledged rows, then its result — the recorded one
    /// when the job had ended, else a failure with a row saying the runner restarted (the
    /// job's processes died with it). Returns whether Gitea took everything.
    pub(crate) async fn recover(context: ReportContext, recovered: Recovered) -> bool {
        let spool = match recovered.reopen() {
            Ok(spool) => Some(spool),
            Err(error) => {
                tracing::warn!(task_id = recovered.task_id, %error, "cannot reopen the spool file; delivering from memory");
                None
            }
        };
        let skip = usize::try_from(recovered.acked - recovered.first_row_index).unwrap_or(0);
        let rows: VecDeque<LogRow> = recovered.rows.into_iter().skip(skip).collect();
        let acked = recovered.acked.max(recovered.first_row_index);
        let current_step = recovered
            .current_step
            .filter(|_| recovered.finished.is_none());
        let (snapshot, outputs, result) = match recovered.finished {
            Some((state, outputs)) => {
                let result =
                    runner::Result::try_from(state.result).unwrap_or(runner::Result::Failure);
                (Some(state), outputs, Some(result))
            }
            None => (recovered.state, BTreeMap::new(), None),
        };
        let snapshot = snapshot.unwrap_or_default();
        context.metrics.rows_added(rows.len() as u64, false);
        let mut state = ReportState {
            task_id: recovered.task_id,
            rows,
            acked,
            started_at: snapshot.started_at,
            stopped_at: snapshot.stopped_at,
            steps: snapshot.steps,
            current_step,
            state_dirty: true,
            outputs,
            result,
            spool,
            metrics: context.metrics.clone(),
            summaries: Vec::new(),
            // A recovered task's copy, if any, stopped with the runner that died.
            copy: None,
        };
        if let Some(index) = state.current_step {
            let total = state.total();
            if let Some(step) = state.steps.get_mut(index) {
                step.log_length = (total - step.log_index).max(0);
            }
        }
        let task_id = state.task_id;
        if state.result.is_none() {
            tracing::warn!(
                task_id,
                "the runner restarted while this task ran: reporting it failed"
            );
            state.current_step = None;
            state.add_rows(
                SystemTime::now(),
                ["The runner restarted while this job was running; its processes are gone, so the job failed.".to_owned()],
            );
            state.close(JobResult::Failure, Vec::new());
        } else {
            tracing::info!(
                task_id,
                "delivering the task's recorded report from the spool"
            );
        }
        let reporter = Reporter::new(context, state, CancellationToken::new());
        reporter
            .worker(reporter.context.timing.close_timeout)
            .close()
            .await
    }

    pub(crate) fn sink(&self) -> ReporterSink {
        ReporterSink {
            shared: self.shared.clone(),
        }
    }

    /// A row outside any step (setup and closing messages).
    pub(crate) fn runner_row(&self, text: &str) {
        self.sink().record_runner_text(text);
    }

    /// A worker whose calls each get `call_timeout` (retries inside the client included).
    fn worker(&self, call_timeout: Duration) -> Worker {
        Worker {
            shared: self.shared.clone(),
            context: self.context.clone(),
            call_timeout,
            job_cancel: self.job_cancel.clone(),
            stop: self.stop_sender.clone(),
        }
    }

    /// Ends the task: the step summaries are uploaded (Gitea takes them only while the task
    /// is not finished), unfinished steps become cancelled (skipped when the job was), a
    /// closing row is added, then the outputs, the last rows with `no_more`, and the result
    /// are sent, each retried (the task's own cancellation does not stop this).
    pub(crate) async fn finish(mut self, result: JobResult, outputs: Vec<(String, String)>) {
        self.stop_sender.cancel();
        if let Some(sender) = self.sender.take() {
            let _ = sender.await;
        }
        if let Some(target) = &self.summary_target {
            let parts = std::mem::take(&mut self.shared.lock().summaries);
            let uploaded = target.upload(parts).await;
            let mut state = self.shared.lock();
            state.summaries = uploaded.left;
            // Like the closing rows, outside every step's range.
            state.current_step = None;
            state.add_rows(SystemTime::now(), uploaded.row);
        }
        self.shared.lock().close(result, outputs);
        let worker = self.worker(self.context.timing.close_timeout);
        worker.close().await;
    }
}

impl ReportState {
    /// The job is over with `result`: leftover steps closed, outputs kept, the closing row
    /// added, and all of it spooled as the task's final record.
    fn close(&mut self, result: JobResult, outputs: Vec<(String, String)>) {
        let now = SystemTime::now();
        let leftover = if result == JobResult::Skipped {
            runner::Result::Skipped
        } else {
            runner::Result::Cancelled
        };
        self.current_step = None;
        for step in &mut self.steps {
            if step.result == runner::Result::Unspecified as i32 {
                step.result = leftover as i32;
                if step.started_at.is_none() {
                    step.started_at = Some(Timestamp::from(now));
                    step.log_index = self.acked + self.rows.len() as i64;
                }
                step.stopped_at = Some(Timestamp::from(now));
            }
        }
        for (key, value) in outputs {
            if key.len() <= MAX_OUTPUT_KEY_BYTES {
                self.outputs.insert(key, value);
            } else {
                tracing::warn!(
                    task_id = self.task_id,
                    key,
                    "output key longer than 255 bytes dropped"
                );
            }
        }
        let summaries = std::mem::take(&mut self.summaries);
        self.add_rows(now, crate::summary::log_rows(&summaries));
        // The final UpdateLog must carry a row Gitea does not hold yet, or it ignores
        // `no_more` (tests/gitea/README.md).
        self.add_rows(now, [format!("Job {}", result.as_str())]);
        if let Some(copy) = self.copy.take() {
            copy.finish(result.as_str());
        }
        self.stopped_at = Some(Timestamp::from(now));
        let proto = result_to_proto(result);
        self.result = Some(proto);
        let final_state = self.task_state(proto);
        if let Some(spool) = &mut self.spool {
            spool.finished(&final_state, &self.outputs);
        }
    }
}

impl ReporterSink {
    fn record_runner_text(&self, text: &str) {
        let mut state = self.shared.lock();
        state.add_rows(SystemTime::now(), [text.to_owned()]);
        drop(state);
        self.shared.wake.notify_one();
    }
}

struct Worker {
    shared: Arc<Shared>,
    context: ReportContext,
    call_timeout: Duration,
    job_cancel: CancellationToken,
    stop: CancellationToken,
}

/// Why a report attempt failed (already logged).
struct Failed {
    /// Repeating the call cannot help (the runner or task is gone for Gitea).
    permanent: bool,
    /// Gitea already finalized the log (an earlier `no_more` arrived, its answer did not).
    archived: bool,
}

impl Failed {
    fn from_error(error: &runnel_protocol::Error) -> Failed {
        let text = error.to_string();
        Failed {
            permanent: !error.is_transient(),
            archived: text.contains("has been archived"),
        }
    }

    fn timeout() -> Failed {
        Failed {
            permanent: false,
            archived: false,
        }
    }
}

impl Worker {
    async fn run(self) {
        let mut next_heartbeat = Instant::now();
        let mut backoff = Duration::from_millis(200);
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            let (need_log, need_state) = {
                let state = self.shared.lock();
                (!state.rows.is_empty(), state.state_dirty)
            };
            let heartbeat_due = Instant::now() >= next_heartbeat;
            if !need_log && !need_state && !heartbeat_due {
                tokio::select! {
                    () = self.shared.wake.notified() => {}
                    () = tokio::time::sleep_until(next_heartbeat) => {}
                    () = self.stop.cancelled() => return,
                }
                continue;
            }
            // A call in flight when the job ends is dropped: the final sequence resends what it
            // carried (Gitea trims repeated rows), and the job's end need not wait for a call
            // to an unreachable Gitea to time out.
            let mut ok = true;
            if need_log {
                tokio::select! {
                    sent = self.send_rows(false) => ok &= sent.is_ok(),
                    () = self.stop.cancelled() => return,
                }
            }
            if ok && (need_state || heartbeat_due) {
                tokio::select! {
                    sent = self.send_state(runner::Result::Unspecified) => ok &= sent.is_ok(),
                    () = self.stop.cancelled() => {
                        self.shared.lock().state_dirty = true;
                        return;
                    }
                }
                next_heartbeat = Instant::now() + self.context.timing.state_interval;
            }
            if ok {
                backoff = Duration::from_millis(200);
            } else {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = self.stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }

    /// One UpdateLog with the unacknowledged rows (up to a batch); drops what Gitea acked.
    async fn send_rows(&self, no_more: bool) -> Result<(), Failed> {
        let (request, sent_until) = {
            let state = self.shared.lock();
            let rows: Vec<LogRow> = state
                .rows
                .iter()
                .take(if no_more {
                    usize::MAX
                } else {
                    MAX_ROWS_PER_REQUEST
                })
                .cloned()
                .collect();
            let until = state.acked + rows.len() as i64;
            (
                runner::UpdateLogRequest {
                    task_id: state.task_id,
                    index: state.acked,
                    rows,
                    no_more,
                },
                until,
            )
        };
        let task_id = request.task_id;
        let call = self.context.client.update_log(request);
        let began = Instant::now();
        let answer = tokio::time::timeout(self.call_timeout, call).await;
        self.context
            .metrics
            .report_call(began.elapsed(), matches!(answer, Ok(Ok(_))));
        let response = match answer {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                tracing::warn!(task_id, error = %error_chain(&error), "sending log rows failed; will resend");
                return Err(Failed::from_error(&error));
            }
            Err(_) => {
                tracing::warn!(task_id, "sending log rows timed out; will resend");
                return Err(Failed::timeout());
            }
        };
        let mut state = self.shared.lock();
        let ack = response.ack_index;
        if ack < state.acked {
            tracing::error!(
                task_id,
                ack,
                held = state.acked,
                "Gitea acknowledged fewer rows than before: rows were lost on the server"
            );
        } else {
            let drop_count = usize::try_from(ack - state.acked)
                .unwrap_or(0)
                .min(state.rows.len());
            if drop_count > 0 {
                state.rows.drain(..drop_count);
                state.acked += drop_count as i64;
                state.metrics.rows_sent(drop_count as u64);
                if let Some(mut spool) = state.spool.take() {
                    if spool.wants_compaction() {
                        let unacked: Vec<LogRow> = state.rows.iter().cloned().collect();
                        let snapshot = state.task_state(runner::Result::Unspecified);
                        spool.compact(state.acked, &unacked, &snapshot, state.current_step);
                    } else {
                        spool.acked(state.acked);
                    }
                    state.spool = Some(spool);
                }
            }
        }
        if ack < sent_until {
            // Gitea did not take everything (a gap or a restart): the rest is resent from
            // `acked` on the next round.
            tracing::debug!(task_id, ack, sent_until, "log rows partly acknowledged");
        }
        Ok(())
    }

    /// One UpdateTask with the current state and unacknowledged outputs.
    async fn send_state(&self, result: runner::Result) -> Result<(), Failed> {
        let request = {
            let mut state = self.shared.lock();
            state.state_dirty = false;
            runner::UpdateTaskRequest {
                state: Some(state.task_state(result)),
                outputs: state
                    .outputs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }
        };
        let task_id = request.state.as_ref().map_or(0, |s| s.id);
        let call = self.context.client.update_task(request);
        let began = Instant::now();
        let answer = tokio::time::timeout(self.call_timeout, call).await;
        self.context
            .metrics
            .report_call(began.elapsed(), matches!(answer, Ok(Ok(_))));
        let response = match answer {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                tracing::warn!(task_id, error = %error_chain(&error), "sending task state failed; will resend");
                self.shared.lock().state_dirty = true;
                return Err(Failed::from_error(&error));
            }
            Err(_) => {
                tracing::warn!(task_id, "sending task state timed out; will resend");
                self.shared.lock().state_dirty = true;
                return Err(Failed::timeout());
            }
        };
        {
            let mut state = self.shared.lock();
            for key in &response.sent_outputs {
                state.outputs.remove(key);
            }
        }
        let server_result = response.state.map_or(0, |s| s.result);
        if result == runner::Result::Unspecified
            && server_result != runner::Result::Unspecified as i32
            && !self.job_cancel.is_cancelled()
        {
            tracing::info!(
                task_id,
                server_result,
                "Gitea ended the task (cancelled); stopping the job"
            );
            self.job_cancel.cancel();
        }
        Ok(())
    }
}

mod close;
#[cfg(test)]
mod tests;

/// An error and its causes on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
