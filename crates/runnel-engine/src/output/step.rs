//! The facade the job runner drives for one step: both streams' bytes in, events out.
//!
//! Must not: keep state beyond the step (the job-wide part is the shared [`Masker`]).

use super::event::{OutputEvent, Stream};
use super::lines::LineSplitter;
use super::masker::Masker;
use super::processor::CommandProcessor;

/// What the step's environment decides about command processing.
#[derive(Debug, Clone, Default)]
pub struct StepOutputOptions {
    /// `ACTIONS_ALLOW_UNSECURE_COMMANDS` is `true` in the step's env: `set-env` and `add-path`
    /// work instead of failing the step.
    pub allow_unsecure_commands: bool,
    /// `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` is `true`: `stop-commands` accepts an empty
    /// token, `pause-logging` or a command name.
    pub allow_unsecure_stop_command_tokens: bool,
    /// Commands are echoed to the log from the start. GitHub starts with echo on when step
    /// debug logging (`ACTIONS_STEP_DEBUG`) is enabled; `::echo::on|off` changes it.
    pub echo_commands: bool,
}

/// One step's output pipeline. Lines of stdout and stderr are split separately but share the
/// command state (a `stop-commands` on stdout also pauses stderr), as in the runner.
#[derive(Debug)]
pub struct StepOutput {
    stdout: LineSplitter,
    stderr: LineSplitter,
    processor: CommandProcessor,
}

impl StepOutput {
    /// `masker` is the job's masker; the step keeps a clone (same shared set of values), so
    /// `::add-mask::` here masks later steps too.
    pub fn new(masker: &Masker, options: StepOutputOptions) -> StepOutput {
        StepOutput {
            stdout: LineSplitter::new(),
            stderr: LineSplitter::new(),
            processor: CommandProcessor::new(masker.clone(), options),
        }
    }

    /// Feeds one chunk of a stream; returns the events of the lines it completed.
    pub fn feed(&mut self, stream: Stream, bytes: &[u8]) -> Vec<OutputEvent> {
        let mut lines = Vec::new();
        match stream {
            Stream::Stdout => self.stdout.push(bytes, &mut lines),
            Stream::Stderr => self.stderr.push(bytes, &mut lines),
        }
        let mut events = Vec::new();
        for line in lines {
            self.processor.process_line(stream, &line, &mut events);
        }
        events
    }

    /// Flushes unterminated last lines (stdout first, then stderr) once the process exited.
    pub fn finish(&mut self) -> Vec<OutputEvent> {
        let mut events = Vec::new();
        if let Some(line) = self.stdout.finish() {
            self.processor
                .process_line(Stream::Stdout, &line, &mut events);
        }
        if let Some(line) = self.stderr.finish() {
            self.processor
                .process_line(Stream::Stderr, &line, &mut events);
        }
        events
    }
}
