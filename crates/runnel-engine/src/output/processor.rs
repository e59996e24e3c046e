//! What each workflow command does, and the per-step state commands change (`stop-commands`,
//! `echo`).
//!
//! Mirrors the runner's behaviour: command names are matched ignoring ASCII case; a line whose
//! name is not a command is plain output; a command that fails to process is reported and
//! fails the step but does not stop the process; `add-mask`, `debug` and the annotation
//! commands are never echoed (their content is already in the log, or secret).
//!
//! `add-matcher` and `remove-matcher` are accepted and ignored (a debug note says so): problem
//! matchers turn tool output into annotations, which we do not do yet; the lines themselves
//! still reach the log.
//!
//! Must not: do IO; every text it puts into an event for the log goes through the masker.

use super::command::{ParsedCommand, parse_command};
use super::event::{Annotation, AnnotationLevel, OutputEvent, Stream};
use super::masker::Masker;
use super::step::StepOutputOptions;

/// Every command name the runner registers. A stop token equal to one of them is refused:
/// ordinary command output would end the pause.
const COMMANDS: &[&str] = &[
    "add-mask",
    "add-matcher",
    "add-path",
    "debug",
    "echo",
    "endgroup",
    "error",
    "group",
    "notice",
    "remove-matcher",
    "save-state",
    "set-env",
    "set-output",
    "stop-commands",
    "warning",
];

/// Stop tokens longer than this are registered as secrets (semantics.md 4.2), so a log reader
/// cannot learn the token and inject commands into a paused step's output.
const MASKED_STOP_TOKEN_LENGTH: usize = 6;

const UNSECURE_COMMANDS_VARIABLE: &str = "ACTIONS_ALLOW_UNSECURE_COMMANDS";
const UNSECURE_STOP_TOKENS_VARIABLE: &str = "ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS";

#[derive(Debug)]
pub(crate) struct CommandProcessor {
    masker: Masker,
    options: StepOutputOptions,
    echo: bool,
    /// While `Some`, commands are plain output until a command named like the token.
    stop_token: Option<String>,
}

impl CommandProcessor {
    pub(crate) fn new(masker: Masker, options: StepOutputOptions) -> CommandProcessor {
        CommandProcessor {
            masker,
            echo: options.echo_commands,
            options,
            stop_token: None,
        }
    }

    /// Handles one complete line from `stream`, appending the resulting events.
    pub(crate) fn process_line(
        &mut self,
        stream: Stream,
        line: &str,
        events: &mut Vec<OutputEvent>,
    ) {
        let Some(command) = parse_command(line) else {
            events.push(self.plain(stream, line));
            return;
        };
        if let Some(token) = &self.stop_token {
            if command.name.eq_ignore_ascii_case(token) {
                self.stop_token = None;
                events.push(self.plain(stream, line));
                events.push(OutputEvent::Debug(
                    "Resuming workflow command processing".to_owned(),
                ));
            } else {
                events.push(self.plain(stream, line));
            }
            return;
        }
        let name = command.name.to_ascii_lowercase();
        if !COMMANDS.contains(&name.as_str()) {
            events.push(self.plain(stream, line));
            return;
        }
        let omit_echo = matches!(
            name.as_str(),
            "add-mask" | "debug" | "notice" | "warning" | "error"
        );
        // `stop-commands` echoes itself (after masking a long token) whatever the echo state.
        if self.echo && !omit_echo && name != "stop-commands" {
            events.push(self.plain(stream, line));
        }
        if let Err(message) = self.run(stream, line, &name, &command, events) {
            let command_text = if omit_echo {
                name
            } else {
                self.masker.mask(line).into_owned()
            };
            events.push(OutputEvent::CommandFailed {
                command: command_text,
                message: self.masker.mask(&message).into_owned(),
            });
        }
    }

    fn run(
        &mut self,
        stream: Stream,
        line: &str,
        name: &str,
        command: &ParsedCommand,
        events: &mut Vec<OutputEvent>,
    ) -> Result<(), String> {
        let data = command.data.as_str();
        match name {
            "add-mask" => {
                if data.trim().is_empty() {
                    events.push(OutputEvent::Warning(
                        "add-mask: an empty value cannot be masked; ignored".to_owned(),
                    ));
                    return Ok(());
                }
                self.masker.add(data);
                if self.echo {
                    events.push(OutputEvent::Line {
                        stream,
                        text: "::add-mask::***".to_owned(),
                    });
                }
            }
            "debug" => events.push(OutputEvent::Debug(self.mask(data))),
            "notice" | "warning" | "error" => {
                let level = match name {
                    "notice" => AnnotationLevel::Notice,
                    "warning" => AnnotationLevel::Warning,
                    _ => AnnotationLevel::Error,
                };
                let annotation = self.annotation(level, command, events);
                events.push(OutputEvent::Annotation(annotation));
            }
            "group" => events.push(OutputEvent::Group(self.mask(data))),
            "endgroup" => events.push(OutputEvent::EndGroup),
            "echo" => match data.trim().to_ascii_lowercase().as_str() {
                "on" => {
                    self.echo = true;
                    events.push(OutputEvent::Debug("Command echo turned on".to_owned()));
                }
                "off" => {
                    self.echo = false;
                    events.push(OutputEvent::Debug("Command echo turned off".to_owned()));
                }
                _ => {
                    return Err(format!(
                        "echo: the value must be 'on' or 'off', not '{data}'"
                    ));
                }
            },
            "stop-commands" => self.stop(stream, line, data, events)?,
            "set-output" | "save-state" => {
                let name_value = required_name(command, name)?;
                events.push(OutputEvent::Warning(format!(
                    "The `{name}` command is deprecated and will be disabled: write to the \
                     {} file instead (https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/)",
                    if name == "set-output" { "GITHUB_OUTPUT" } else { "GITHUB_STATE" }
                )));
                let value = command.data.clone();
                events.push(if name == "set-output" {
                    OutputEvent::SetOutput {
                        name: name_value,
                        value,
                    }
                } else {
                    OutputEvent::SaveState {
                        name: name_value,
                        value,
                    }
                });
            }
            "set-env" => {
                self.require_unsecure(name)?;
                let variable = required_name(command, name)?;
                if variable.eq_ignore_ascii_case("NODE_OPTIONS") {
                    events.push(OutputEvent::Error(format!(
                        "set-env: {variable} cannot be set with a workflow command; ignored"
                    )));
                    return Ok(());
                }
                events.push(OutputEvent::SetEnv {
                    name: variable,
                    value: command.data.clone(),
                });
            }
            "add-path" => {
                self.require_unsecure(name)?;
                if data.is_empty() {
                    return Err("add-path: the path is empty".to_owned());
                }
                events.push(OutputEvent::AddPath(command.data.clone()));
            }
            // "add-matcher" | "remove-matcher": accepted, see the module doc.
            _ => events.push(OutputEvent::Debug(format!(
                "{name}: problem matchers are not supported; ignored"
            ))),
        }
        Ok(())
    }

    fn stop(
        &mut self,
        stream: Stream,
        line: &str,
        token: &str,
        events: &mut Vec<OutputEvent>,
    ) -> Result<(), String> {
        let weak = token.is_empty()
            || token.eq_ignore_ascii_case("pause-logging")
            || COMMANDS
                .iter()
                .any(|command| command.eq_ignore_ascii_case(token));
        if weak && !self.options.allow_unsecure_stop_command_tokens {
            return Err(format!(
                "stop-commands: the token must not be empty, 'pause-logging' or a workflow \
                 command name (set {UNSECURE_STOP_TOKENS_VARIABLE}=true to allow it)"
            ));
        }
        // A weak token let through by the opt-in is a command name or similar: masking it
        // would blank out ordinary words in the rest of the job's log.
        if !weak && token.chars().count() > MASKED_STOP_TOKEN_LENGTH {
            self.masker.add(token);
        }
        events.push(self.plain(stream, line));
        events.push(OutputEvent::Debug(
            "Workflow commands paused until the stop token is written".to_owned(),
        ));
        self.stop_token = Some(token.to_owned());
        Ok(())
    }

    fn require_unsecure(&self, name: &str) -> Result<(), String> {
        if self.options.allow_unsecure_commands {
            return Ok(());
        }
        Err(format!(
            "The `{name}` command is disabled. Use environment files instead, or set \
             {UNSECURE_COMMANDS_VARIABLE}=true to allow unsecure commands \
             (https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/)"
        ))
    }

    /// Builds an annotation, fixing inconsistent positions as GitHub does (each fix leaves a
    /// debug note).
    fn annotation(
        &self,
        level: AnnotationLevel,
        command: &ParsedCommand,
        events: &mut Vec<OutputEvent>,
    ) -> Annotation {
        let number = |key: &str| {
            command
                .property(key)
                .and_then(|text| text.trim().parse::<u32>().ok())
        };
        let mut line = number("line");
        let mut end_line = number("endLine");
        let mut col = number("col");
        let mut end_column = number("endColumn");
        let mut note = |text: &str| {
            events.push(OutputEvent::Debug(format!("{}: {text}", command.name)));
        };
        if line.is_none() && end_line.is_some() {
            note("'endLine' without 'line': using it as 'line'");
            line = end_line;
        }
        if col.is_none() && end_column.is_some() {
            note("'endColumn' without 'col': using it as 'col'");
            col = end_column;
        }
        let has_column = col.is_some() || end_column.is_some();
        if line.is_none() && has_column {
            note("columns need a 'line'; dropped");
            col = None;
            end_column = None;
        }
        if end_line.is_some() && end_line != line && has_column {
            note("columns need 'line' and 'endLine' to be equal; dropped");
            col = None;
            end_column = None;
        }
        if let (Some(start), Some(end)) = (line, end_line)
            && end < start
        {
            note("'endLine' is before 'line'; both dropped");
            line = None;
            end_line = None;
        }
        if let (Some(start), Some(end)) = (col, end_column)
            && end < start
        {
            note("'endColumn' is before 'col'; both dropped");
            col = None;
            end_column = None;
        }
        let text = |key: &str| {
            command
                .property(key)
                .filter(|value| !value.is_empty())
                .map(|value| self.mask(value))
        };
        Annotation {
            level,
            message: self.mask(&command.data),
            title: text("title"),
            file: text("file"),
            line,
            end_line,
            col,
            end_column,
        }
    }

    fn plain(&self, stream: Stream, text: &str) -> OutputEvent {
        OutputEvent::Line {
            stream,
            text: self.mask(text),
        }
    }

    fn mask(&self, text: &str) -> String {
        self.masker.mask(text).into_owned()
    }
}

fn required_name(command: &ParsedCommand, name: &str) -> Result<String, String> {
    match command.property("name") {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        _ => Err(format!("{name}: the required property 'name' is missing")),
    }
}
