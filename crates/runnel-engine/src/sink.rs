//! Where a run's log goes: the [`LogSink`] trait, the structured [`LogRecord`]s the engine
//! emits, and [`MemorySink`] which keeps them (for tests and for callers that print later).
//!
//! Every record names its job instance, its step (when it belongs to one) and the time it was
//! made, so a terminal printer and the Gitea reporter can both place each line exactly.
//! Must not: format for a terminal or a protocol; sinks do that. Text in records has already
//! been masked by the output pipeline.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

pub use crate::output::{Annotation, AnnotationLevel, Stream};

use runnel_plan::JobResult;

/// Receives a run's log records, possibly from several jobs at once.
pub trait LogSink: Send + Sync {
    fn record(&self, record: LogRecord);
}

/// One thing that happened in a run.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub job: JobRef,
    /// The step the record belongs to; `None` for job-level records (setup, teardown, result).
    pub step: Option<StepRef>,
    pub time: SystemTime,
    pub event: LogEvent,
}

/// The job instance a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// `jobs.<id>`.
    pub job_id: String,
    /// Display name of the instance (`test (linux, 20)` for a matrix leg).
    pub name: String,
    /// Unique key of the instance within the run (`test-2` for the third leg).
    pub key: String,
}

/// The step a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRef {
    /// 0-based position in the job's `steps`.
    pub index: usize,
    /// Display name (`name:`, or `Run <first line>`, or the `uses` string).
    pub name: String,
}

/// `outcome`/`conclusion` of a step, as `steps.<id>` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Success => "success",
            StepStatus::Failure => "failure",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a record says.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// The job instance starts (its environment is about to be prepared).
    JobStarted,
    /// The job instance ended; `result` is what `needs.<id>.result` shows.
    JobFinished {
        result: JobResult,
        duration: Duration,
    },
    /// A step starts running (not emitted for skipped steps, which only finish).
    StepStarted,
    /// A step ended or was skipped.
    StepFinished {
        outcome: StepStatus,
        conclusion: StepStatus,
        duration: Duration,
    },
    /// One line of a step's output (masked, no line terminator).
    Line { stream: Stream, text: String },
    /// `::group::title`.
    GroupStart { title: String },
    /// `::endgroup::`.
    GroupEnd,
    /// `::notice|warning|error::`.
    Annotation(Annotation),
    /// `::debug::` lines; the engine emits them only when debug is on.
    Debug { text: String },
    /// Something the runner itself says: why a step failed (missing shell, timeout, an
    /// unsupported action), a deprecation, cleanup problems.
    Runner { level: RunnerLevel, text: String },
    /// What a step wrote to `$GITHUB_STEP_SUMMARY` (Markdown, masked), once its process has
    /// ended; steps (and `pre`/`post` hooks) that wrote nothing, or more than GitHub's 1 MiB,
    /// have none. The job's summary is these in order; a step of a composite action reports
    /// under the outer step.
    StepSummary { markdown: String },
}

/// Severity of a [`LogEvent::Runner`] message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerLevel {
    Info,
    Warning,
    Error,
}

/// A sink that keeps every record in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<LogRecord>>,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// All records so far, in the order they arrived.
    pub fn records(&self) -> Vec<LogRecord> {
        self.records
            .lock()
            .map(|records| records.clone())
            .unwrap_or_default()
    }

    /// The output lines of one job (by `jobs.<id>` or instance key), in order.
    pub fn lines(&self, job: &str) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r.job.job_id == job || r.job.key == job)
            .filter_map(|r| match r.event {
                LogEvent::Line { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    }

    /// Every text of every record (lines, runner messages, annotations, group titles, step
    /// summaries), to check that something never appears.
    pub fn all_text(&self) -> String {
        let mut text = String::new();
        for record in self.records() {
            let piece = match record.event {
                LogEvent::Line { text, .. }
                | LogEvent::GroupStart { title: text }
                | LogEvent::Debug { text }
                | LogEvent::Runner { text, .. }
                | LogEvent::StepSummary { markdown: text } => text,
                LogEvent::Annotation(annotation) => annotation.message,
                _ => continue,
            };
            text.push_str(&piece);
            text.push('\n');
        }
        text
    }
}

impl LogSink for MemorySink {
    fn record(&self, record: LogRecord) {
        if let Ok(mut records) = self.records.lock() {
            records.push(record);
        }
    }
}

/// Sends a job-level record (no step) to `sink`.
pub(crate) fn emit(sink: &dyn LogSink, job: &JobRef, event: LogEvent) {
    sink.record(LogRecord {
        job: job.clone(),
        step: None,
        time: std::time::SystemTime::now(),
        event,
    });
}
