//! The terminal log sink of `runnel run`: one line per event, prefixed with the job's name,
//! step starts and ends with their timings, coloured when stdout is a terminal.
//!
//! Must not: decide anything about the run; it only prints what the engine reports.

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

    fn line_for(&self, record: &LogRecord) -> Option<String> {
        let step = record.step.as_ref().map_or("", |s| s.name.as_str());
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
                Stream::Stdout => format!("  {text}"),
                Stream::Stderr => format!("  {}", self.paint(Colour::Dim, text)),
            },
            LogEvent::GroupStart { title } => format!("  ▸ {title}"),
            LogEvent::GroupEnd => return None,
            LogEvent::Annotation(annotation) => {
                let (colour, level) = match annotation.level {
                    AnnotationLevel::Error => (Colour::Red, "error"),
                    AnnotationLevel::Warning => (Colour::Yellow, "warning"),
                    AnnotationLevel::Notice => (Colour::Bold, "notice"),
                };
                let place = match (&annotation.file, annotation.line, annotation.col) {
                    (Some(file), Some(line), Some(col)) => format!(" ({file}:{line}:{col})"),
                    (Some(file), Some(line), None) => format!(" ({file}:{line})"),
                    (Some(file), None, _) => format!(" ({file})"),
                    _ => String::new(),
                };
                format!(
                    "  {}: {}{place}",
                    self.paint(colour, level),
                    annotation.message
                )
            }
            LogEvent::Debug { text } if self.show_debug => {
                format!("  {}", self.paint(Colour::Dim, &format!("debug: {text}")))
            }
            LogEvent::Debug { .. } => return None,
            LogEvent::Runner { level, text } => match level {
                RunnerLevel::Info => format!("  {}", self.paint(Colour::Dim, text)),
                RunnerLevel::Warning => {
                    format!("  {}: {text}", self.paint(Colour::Yellow, "warning"))
                }
                RunnerLevel::Error => format!("  {}: {text}", self.paint(Colour::Red, "error")),
            },
        };
        Some(format!(
            "{} {text}",
            self.paint(Colour::Dim, &format!("[{}]", record.job.name))
        ))
    }
}

impl LogSink for TerminalSink {
    fn record(&self, record: LogRecord) {
        if let Some(line) = self.line_for(&record) {
            self.println(&line);
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
