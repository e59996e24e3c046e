//! The terminal log sink of `runnel run`: one line per event, prefixed with the job's name,
//! step starts and ends with their timings, coloured when stdout is a terminal. Step summaries
//! (`$GITHUB_STEP_SUMMARY`) are kept until their job ends and then printed as one headed block
//! of plain Markdown; they stay available for `--summary-dir` ([`TerminalSink::job_summaries`]).
//! Text from jobs passes [`escapes::sanitize`] first: colours only, so a step cannot forge or
//! erase runnel's lines.
//!
//! Must not: decide anything about the run; it only prints what the engine reports.

mod escapes;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use runnel_engine::{
    AnnotationLevel, JobResult, LogEvent, LogRecord, LogSink, RunnerLevel, StepStatus, Stream,
};

pub(crate) struct TerminalSink {
    colour: bool,
    show_debug: bool,
    /// Serialises writes so that lines of concurrent jobs never interleave mid-line.
    out: Mutex<std::io::Stdout>,
    summaries: Mutex<Summaries>,
}

/// The step summaries of running jobs, and those of finished jobs in the order they ended.
#[derive(Default)]
struct Summaries {
    /// Job instance key → (step name, Markdown) in the order the steps wrote them.
    running: HashMap<String, Vec<(String, String)>>,
    finished: Vec<JobSummary>,
}

/// What a finished job wrote to `$GITHUB_STEP_SUMMARY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobSummary {
    /// The job instance's key (unique in the run: `build`, `test-2`, `call/inner`).
    pub(crate) key: String,
    pub(crate) name: String,
    /// (step name, Markdown), in order.
    pub(crate) steps: Vec<(String, String)>,
}

impl JobSummary {
    /// The job's summary as GitHub shows it: the steps' Markdown one after another.
    pub(crate) fn markdown(&self) -> String {
        let mut text = String::new();
        for (_, markdown) in &self.steps {
            text.push_str(markdown);
            if !markdown.ends_with('\n') {
                text.push('\n');
            }
        }
        text
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Colour {
    Green,
    Red,
    Yellow,
    Dim,
    Bold,
}

impl TerminalSink {
    pub(crate) fn new(show_debug: bool) -> TerminalSink {
        let stdout = std::io::stdout();
        let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        TerminalSink {
            colour,
            show_debug,
            out: Mutex::new(stdout),
            summaries: Mutex::new(Summaries::default()),
        }
    }

    /// The summaries of the jobs that ended so far (jobs that wrote none are left out).
    pub(crate) fn job_summaries(&self) -> Vec<JobSummary> {
        self.summaries
            .lock()
            .map(|summaries| summaries.finished.clone())
            .unwrap_or_default()
    }

    /// Keeps a step's summary until its job ends.
    fn keep_summary(&self, record: &LogRecord, markdown: &str) {
        let step = record.step.as_ref().map_or("", |s| s.name.as_str());
        if let Ok(mut summaries) = self.summaries.lock() {
            summaries
                .running
                .entry(record.job.key.clone())
                .or_default()
                .push((step.to_owned(), markdown.to_owned()));
        }
    }

    /// At the end of a job: its summaries as one block (after its last line), kept for
    /// `--summary-dir`.
    fn print_job_summary(&self, record: &LogRecord) {
        let steps = match self.summaries.lock() {
            Ok(mut summaries) => match summaries.running.remove(&record.job.key) {
                Some(steps) => {
                    summaries.finished.push(JobSummary {
                        key: record.job.key.clone(),
                        name: record.job.name.clone(),
                        steps: steps.clone(),
                    });
                    steps
                }
                None => return,
            },
            Err(_) => return,
        };
        let rule = |text: &str| self.paint(Colour::Bold, text);
        let job = self.clean(&record.job.name);
        let mut block = vec![rule(&format!("== Job summary: {job} =="))];
        for (step, markdown) in &steps {
            let step = self.clean(step);
            block.push(self.paint(Colour::Dim, &format!("-- from step: {step}")));
            block.extend(markdown.lines().map(|line| self.clean(line).into_owned()));
        }
        block.push(rule(&format!("== end of job summary: {job} ==")));
        if let Ok(mut out) = self.out.lock() {
            // One write under the lock: the block stays together among concurrent jobs.
            let _ = writeln!(out, "{}", block.join("\n"));
        }
    }

    pub(crate) fn paint(&self, colour: Colour, text: &str) -> String {
        paint(self.colour, colour, text)
    }

    pub(crate) fn println(&self, text: &str) {
        if let Ok(mut out) = self.out.lock() {
            // A closed stdout (e.g. `| head`) must not kill the run: the jobs go on.
            let _ = writeln!(out, "{text}");
        }
    }

    /// Text that came from a job, with terminal escapes other than colours removed.
    fn clean<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        escapes::sanitize(text, self.colour)
    }

    fn line_for(&self, record: &LogRecord) -> Option<String> {
        let step = record.step.as_ref().map_or("", |s| s.name.as_str());
        let step = self.clean(step);
        let text = match &record.event {
            LogEvent::JobStarted => self.paint(Colour::Dim, "job started"),
            LogEvent::JobFinished { result, duration } => {
                let (colour, mark) = result_style(*result);
                self.paint(
                    colour,
                    &format!("{mark} job {} ({})", result.as_str(), seconds(*duration)),
                )
            }
            LogEvent::StepStarted => self.paint(Colour::Bold, &format!("▶ {step}")),
            LogEvent::StepFinished {
                outcome,
                conclusion,
                duration,
            } => {
                let (colour, mark) = match conclusion {
                    StepStatus::Success => (Colour::Green, "✓"),
                    StepStatus::Failure => (Colour::Red, "✗"),
                    StepStatus::Cancelled => (Colour::Yellow, "⊘"),
                    StepStatus::Skipped => (Colour::Dim, "–"),
                };
                let ignored = match (outcome, conclusion) {
                    (StepStatus::Failure, StepStatus::Success) => " (failed, continue-on-error)",
                    _ => "",
                };
                self.paint(
                    colour,
                    &format!("{mark} {step}{ignored} ({})", seconds(*duration)),
                )
            }
            LogEvent::Line { stream, text } => match stream {
                Stream::Stdout => format!("  {}", self.clean(text)),
                Stream::Stderr => format!("  {}", self.paint(Colour::Dim, &self.clean(text))),
            },
            LogEvent::GroupStart { title } => format!("  ▸ {}", self.clean(title)),
            LogEvent::GroupEnd => return None,
            LogEvent::Annotation(annotation) => {
                let (colour, level) = match annotation.level {
                    AnnotationLevel::Error => (Colour::Red, "error"),
                    AnnotationLevel::Warning => (Colour::Yellow, "warning"),
                    AnnotationLevel::Notice => (Colour::Bold, "notice"),
                };
                let file = annotation.file.as_deref().map(|file| self.clean(file));
                let place = match (&file, annotation.line, annotation.col) {
                    (Some(file), Some(line), Some(col)) => format!(" ({file}:{line}:{col})"),
                    (Some(file), Some(line), None) => format!(" ({file}:{line})"),
                    (Some(file), None, _) => format!(" ({file})"),
                    _ => String::new(),
                };
                format!(
                    "  {}: {}{place}",
                    self.paint(colour, level),
                    self.clean(&annotation.message)
                )
            }
            LogEvent::Debug { text } if self.show_debug => {
                let text = self.clean(text);
                format!("  {}", self.paint(Colour::Dim, &format!("debug: {text}")))
            }
            LogEvent::Debug { .. } => return None,
            LogEvent::StepSummary { .. } => return None,
            LogEvent::Runner { level, text } => match (level, self.clean(text)) {
                (RunnerLevel::Info, text) => format!("  {}", self.paint(Colour::Dim, &text)),
                (RunnerLevel::Warning, text) => {
                    format!("  {}: {text}", self.paint(Colour::Yellow, "warning"))
                }
                (RunnerLevel::Error, text) => {
                    format!("  {}: {text}", self.paint(Colour::Red, "error"))
                }
            },
        };
        Some(format!(
            "{} {text}",
            self.paint(Colour::Dim, &format!("[{}]", self.clean(&record.job.name)))
        ))
    }
}

impl LogSink for TerminalSink {
    fn record(&self, record: LogRecord) {
        if let LogEvent::StepSummary { markdown } = &record.event {
            self.keep_summary(&record, markdown);
        }
        if let Some(line) = self.line_for(&record) {
            self.println(&line);
        }
        if let LogEvent::JobFinished { .. } = record.event {
            self.print_job_summary(&record);
        }
    }
}

pub(crate) fn result_style(result: JobResult) -> (Colour, &'static str) {
    match result {
        JobResult::Success => (Colour::Green, "✓"),
        JobResult::Failure => (Colour::Red, "✗"),
        JobResult::Cancelled => (Colour::Yellow, "⊘"),
        JobResult::Skipped => (Colour::Dim, "–"),
    }
}

pub(crate) fn seconds(duration: Duration) -> String {
    format!("{:.2}s", duration.as_secs_f64())
}

fn paint(enabled: bool, colour: Colour, text: &str) -> String {
    if !enabled {
        return text.to_owned();
    }
    let code = match colour {
        Colour::Green => "32",
        Colour::Red => "31",
        Colour::Yellow => "33",
        Colour::Dim => "2",
        Colour::Bold => "1",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}
