//! The events a step's output turns into, handed to the job runner in order.
//!
//! Must not: carry unmasked log text (see the invariant in the parent module).

/// Which pipe of the step process a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One thing the job runner must log or apply, in the order the step produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEvent {
    /// A plain output line (no line terminator), masked. Also used for command lines that
    /// GitHub echoes back (`::echo::on`, `stop-commands` and its resume token).
    Line { stream: Stream, text: String },
    /// `::group::title`: start of a collapsible log group. Masked.
    Group(String),
    /// `::endgroup::`.
    EndGroup,
    /// `::notice::`, `::warning::` or `::error::`. Never fails the step by itself.
    Annotation(Annotation),
    /// `::debug::msg` and the runner's own debug notes; shown only when step debug is on.
    Debug(String),
    /// A warning from the runner itself (a deprecated command, an ignored `add-mask`), shown
    /// like a warning annotation without a file.
    Warning(String),
    /// An error from the runner itself that does not fail the step (a blocked `set-env` name).
    Error(String),
    /// A workflow command could not be processed: log
    /// `Unable to process command '{command}' successfully.` and `message` as errors, and the
    /// step fails once it has exited (GitHub sets the step result to failure, it does not
    /// kill the process). `command` is the masked command line, or only the command name for
    /// commands whose line is never echoed.
    CommandFailed { command: String, message: String },
    /// `::set-output name=X::v` (deprecated; a [`OutputEvent::Warning`] precedes it). Raw value.
    SetOutput { name: String, value: String },
    /// `::save-state name=X::v` (deprecated; a [`OutputEvent::Warning`] precedes it). Raw value.
    SaveState { name: String, value: String },
    /// `::set-env name=X::v`, only when unsecure commands are allowed. Raw value.
    SetEnv { name: String, value: String },
    /// `::add-path::dir`, only when unsecure commands are allowed. Raw value.
    AddPath(String),
}

/// Severity of an [`Annotation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnotationLevel {
    Notice,
    Warning,
    Error,
}

/// A `::notice|warning|error ...::message` annotation. Text fields are masked. `file` is the
/// path as the step wrote it: turning a container path into a repository-relative one is the
/// job runner's business. Line and column fields are already checked the way GitHub checks
/// them (an `endLine` before `line` drops both, columns need a line, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: AnnotationLevel,
    pub message: String,
    pub title: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub end_line: Option<u32>,
    pub col: Option<u32>,
    pub end_column: Option<u32>,
}
