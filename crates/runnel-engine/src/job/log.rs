//! The job's log: every record of a job leaves through [`JobLog`], which names the job and
//! masks every text in it.
//!
//! Owns: the sink, the job's [`JobRef`] and its [`Masker`] (the run's secrets, and what the
//! job registers later: registry passwords, service grants).
//! Must not: decide what is logged or when; callers do.

use std::time::SystemTime;

use crate::output::Masker;
use crate::sink::{JobRef, LogEvent, LogRecord, LogSink, RunnerLevel, StepRef};

/// Where a job's records go, masked.
pub(crate) struct JobLog<'a> {
    sink: &'a dyn LogSink,
    job_ref: JobRef,
    pub(super) masker: Masker,
}

impl<'a> JobLog<'a> {
    pub(super) fn new(sink: &'a dyn LogSink, job_ref: JobRef, masker: Masker) -> JobLog<'a> {
        JobLog {
            sink,
            job_ref,
            masker,
        }
    }

    /// Sends a record to the sink. Every text in it passes the masker here — the step's
    /// name, group titles, annotations, runner messages — except output lines, which the
    /// output pipeline has masked already (they are most of the volume).
    pub(super) fn emit(&self, step: Option<&StepRef>, event: LogEvent) {
        let step = step.map(|step| StepRef {
            index: step.index,
            name: self.masker.mask(&step.name).into_owned(),
        });
        self.sink.record(LogRecord {
            job: self.job_ref.clone(),
            step,
            time: SystemTime::now(),
            event: mask_event(&self.masker, event),
        });
    }

    /// A message of the runner itself, masked like step output.
    pub(super) fn runner(&self, step: Option<&StepRef>, level: RunnerLevel, text: &str) {
        let text = self.masker.mask(text).into_owned();
        self.emit(step, LogEvent::Runner { level, text });
    }
}

/// `event` with every text but output lines masked.
fn mask_event(masker: &Masker, event: LogEvent) -> LogEvent {
    if masker.is_empty() {
        return event;
    }
    let mask = |text: String| match masker.mask(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(masked) => masked,
    };
    match event {
        LogEvent::GroupStart { title } => LogEvent::GroupStart { title: mask(title) },
        LogEvent::Debug { text } => LogEvent::Debug { text: mask(text) },
        LogEvent::Runner { level, text } => LogEvent::Runner {
            level,
            text: mask(text),
        },
        LogEvent::StepSummary { markdown } => LogEvent::StepSummary {
            markdown: mask(markdown),
        },
        LogEvent::Annotation(mut annotation) => {
            annotation.message = mask(annotation.message);
            annotation.title = annotation.title.map(mask);
            annotation.file = annotation.file.map(mask);
            LogEvent::Annotation(annotation)
        }
        other => other,
    }
}
