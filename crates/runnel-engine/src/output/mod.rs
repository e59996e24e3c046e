//! The output pipeline of a step: bytes → lines → workflow commands → masking → log events.
//! Also the env-file formats (`GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_STATE`, `GITHUB_PATH`).
//!
//! The job runner builds one [`Masker`] per job (job secrets first), then one [`StepOutput`]
//! per step; it feeds every chunk of the step's stdout and stderr to [`StepOutput::feed`],
//! calls [`StepOutput::finish`] when the process has exited, and acts on the returned
//! [`OutputEvent`]s in order. After the step it reads the env files and parses them with
//! [`parse_env_file`] and [`parse_path_file`].
//!
//! Invariant: every text meant for a log (lines, group titles, annotations, debug, the runner's
//! own warnings and errors) is masked before it leaves in an event. Values that are *data*
//! (`SetOutput`, `SaveState`, `SetEnv`, `AddPath`) are returned raw, as GitHub keeps them: a
//! later step must see the real value; whoever prints them masks them.
//!
//! Must not: do IO or async; callers feed bytes and read events.

mod command;
mod envfile;
mod event;
mod lines;
mod masker;
mod processor;
mod step;

#[cfg(test)]
mod tests;

pub use command::{ParsedCommand, escape_data, escape_property, parse_command};
pub use envfile::{EnvFileError, EnvFileKind, parse_env_file, parse_path_file};
pub use event::{Annotation, AnnotationLevel, OutputEvent, Stream};
pub use lines::{LineSplitter, MAX_LINE_BYTES};
pub use masker::Masker;
pub use step::{StepOutput, StepOutputOptions};
