//! One process run as (a phase of) a step, shared by every step kind and hook: the file
//! command files emptied, the process started in the environment (or as a step container),
//! its output fed through the output pipeline to the log as it comes, the file commands read
//! back and `GITHUB_ENV`/`GITHUB_PATH` applied.
//!
//! Owns: [`StepProcess`], the process environment of a step and how an exit becomes a
//! [`StepEnd`]. Must not: decide what outputs and state mean (the step kinds do).

use std::collections::BTreeMap;

use indexmap::IndexMap;
use tokio::sync::mpsc;

use super::JobState;
use super::error::StepError;
use super::files::Effects;
use super::step::{Ended, StepEnd, StepRun};
use crate::backend::{ContainerRun, ExecExit, ExecOutput, ExecRequest, JobEnvironment};
use crate::contexts;
use crate::output::{OutputEvent, StepOutput, StepOutputOptions, Stream};
use crate::sink::{LogEvent, RunnerLevel, StepRef};

/// What a step runs: a process in the job environment, or a step container beside it.
#[derive(Clone, Copy)]
pub(super) enum StepProcess<'r> {
    Exec(&'r ExecRequest),
    Container(&'r ContainerRun),
}

impl<'r> From<&'r ExecRequest> for StepProcess<'r> {
    fn from(request: &'r ExecRequest) -> StepProcess<'r> {
        StepProcess::Exec(request)
    }
}

impl<'r> From<&'r ContainerRun> for StepProcess<'r> {
    fn from(run: &'r ContainerRun) -> StepProcess<'r> {
        StepProcess::Container(run)
    }
}

impl JobState<'_> {
    /// Runs one process as (a phase of) a step: empty file command files first, output
    /// through the pipeline, then the file commands read back and `GITHUB_ENV`/`GITHUB_PATH`
    /// applied. The caller decides what outputs and state mean.
    pub(super) async fn exec_in_step(
        &mut self,
        run: &StepRun<'_>,
        request: impl Into<StepProcess<'_>>,
    ) -> Result<(StepEnd, Effects), StepError> {
        let request = request.into();
        let environment = run.environment;
        let files = &run.files;
        let step_ref = &run.step_ref;
        for path in [
            &files.env,
            &files.output,
            &files.path,
            &files.state,
            &files.step_summary,
        ] {
            write(environment, path, b"", false).await?;
        }
        let options = StepOutputOptions {
            allow_unsecure_commands: env_is_true(
                &run.prepared.env,
                "ACTIONS_ALLOW_UNSECURE_COMMANDS",
            ),
            allow_unsecure_stop_command_tokens: env_is_true(
                &run.prepared.env,
                "ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS",
            ),
            echo_commands: self.request.options.debug,
        };
        let mut effects = Effects::default();
        let exit = self
            .exec_streaming(run, request, options, &mut effects)
            .await?;
        self.read_file_commands(environment, files, step_ref, &mut effects)
            .await;
        self.apply_effects(
            std::mem::take(&mut effects.env),
            std::mem::take(&mut effects.paths),
        );
        let end = match exit {
            ExecExit::Code(0) if !effects.command_failed => StepEnd::Exited(Ended::Success),
            ExecExit::Code(0) => StepEnd::Exited(Ended::Failure),
            ExecExit::Code(code) => {
                self.log.runner(
                    Some(step_ref),
                    RunnerLevel::Error,
                    &format!("Process completed with exit code {code}."),
                );
                StepEnd::Exited(Ended::Failure)
            }
            ExecExit::TimedOut => StepEnd::TimedOut,
            ExecExit::Cancelled => {
                self.log.runner(
                    Some(step_ref),
                    RunnerLevel::Error,
                    "The operation was canceled.",
                );
                StepEnd::Exited(Ended::Cancelled)
            }
        };
        Ok((end, effects))
    }

    /// The process environment: the environment's own variables, the default `GITHUB_*`
    /// and `RUNNER_*` ones, the workflow's env, `GITHUB_PATH` additions in front of `PATH`,
    /// and the file command paths last so no `env:` can redirect them.
    pub(super) fn exec_env(&self, run: &StepRun<'_>) -> BTreeMap<String, String> {
        let environment = run.environment;
        let prepared = &run.prepared;
        let mut env = environment.default_env();
        env.extend(contexts::default_env(
            &prepared.contexts,
            self.request.options,
        ));
        env.insert("HOME".to_owned(), environment.paths().home.clone());
        for (name, value) in &prepared.env {
            env.insert(name.clone(), value.clone());
        }
        if !self.path_entries.is_empty() {
            let base = env.get("PATH").cloned().unwrap_or_default();
            let mut parts = self.path_entries.clone();
            if !base.is_empty() {
                parts.push(base);
            }
            env.insert("PATH".to_owned(), parts.join(":"));
        }
        env.extend(contexts::file_command_env(&run.files, str::to_owned));
        env
    }

    async fn exec_streaming(
        &self,
        run: &StepRun<'_>,
        request: StepProcess<'_>,
        options: StepOutputOptions,
        effects: &mut Effects,
    ) -> Result<ExecExit, StepError> {
        let (environment, step_ref, token) = (run.environment, &run.step_ref, &run.token);
        let mut output = StepOutput::new(&self.log.masker, options);
        let (sender, mut receiver) = mpsc::channel::<ExecOutput>(64);
        let exec = match request {
            StepProcess::Exec(request) => environment.exec(request, sender, token),
            StepProcess::Container(container) => {
                environment.run_container(container, sender, token)
            }
        };
        tokio::pin!(exec);
        let exit = loop {
            tokio::select! {
                biased;
                Some(chunk) = receiver.recv() => {
                    let events = match &chunk {
                        ExecOutput::Stdout(bytes) => output.feed(Stream::Stdout, bytes),
                        ExecOutput::Stderr(bytes) => output.feed(Stream::Stderr, bytes),
                    };
                    self.handle_events(events, step_ref, effects);
                }
                result = &mut exec => break result,
            }
        };
        // A backend may still have chunks queued when `exec` returns.
        while let Ok(chunk) = receiver.try_recv() {
            let events = match &chunk {
                ExecOutput::Stdout(bytes) => output.feed(Stream::Stdout, bytes),
                ExecOutput::Stderr(bytes) => output.feed(Stream::Stderr, bytes),
            };
            self.handle_events(events, step_ref, effects);
        }
        let events = output.finish();
        self.handle_events(events, step_ref, effects);
        exit.map_err(StepError::Run)
    }

    fn handle_events(&self, events: Vec<OutputEvent>, step_ref: &StepRef, effects: &mut Effects) {
        let step = Some(step_ref);
        for event in events {
            match event {
                OutputEvent::Line { stream, text } => {
                    self.log.emit(step, LogEvent::Line { stream, text });
                }
                OutputEvent::Group(title) => self.log.emit(step, LogEvent::GroupStart { title }),
                OutputEvent::EndGroup => self.log.emit(step, LogEvent::GroupEnd),
                OutputEvent::Annotation(annotation) => {
                    self.log.emit(step, LogEvent::Annotation(annotation));
                }
                OutputEvent::Debug(text) => {
                    if self.request.options.debug {
                        self.log.emit(step, LogEvent::Debug { text });
                    }
                }
                OutputEvent::Warning(text) => self.log.runner(step, RunnerLevel::Warning, &text),
                OutputEvent::Error(text) => self.log.runner(step, RunnerLevel::Error, &text),
                OutputEvent::CommandFailed { command, message } => {
                    self.log.runner(
                        step,
                        RunnerLevel::Error,
                        &format!("Unable to process command '{command}' successfully."),
                    );
                    self.log.runner(step, RunnerLevel::Error, &message);
                    effects.command_failed = true;
                }
                OutputEvent::SetOutput { name, value } => effects.outputs.push((name, value)),
                OutputEvent::SaveState { name, value } => effects.state.push((name, value)),
                OutputEvent::SetEnv { name, value } => effects.env.push((name, value)),
                OutputEvent::AddPath(path) => effects.paths.push(path),
            }
        }
    }
}

fn env_is_true(env: &IndexMap<String, String>, name: &str) -> bool {
    env.get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

pub(super) async fn write(
    environment: &dyn JobEnvironment,
    path: &str,
    contents: &[u8],
    executable: bool,
) -> Result<(), StepError> {
    environment
        .write_file(path, contents, executable)
        .await
        .map_err(|source| StepError::Write {
            path: path.to_owned(),
            source,
        })
}
