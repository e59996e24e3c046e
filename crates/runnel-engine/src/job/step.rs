//! One step: display name, `if:`, its keys evaluated, the script written and run through the
//! environment, its output fed through the output pipeline to the sink, the file commands read
//! back, and `steps.<id>` and the job status updated.
//!
//! Owns: the step-kind dispatch point (`run:` here, `uses:` in the `action` module), running
//! one process as a step ([`JobState::exec_in_step`], shared with actions) and GitHub's
//! outcome/conclusion rules. Inside a composite action the same code runs the action's steps:
//! they log under the outer step (as groups) and keep no summary of their own.
//! Must not: decide which steps are left (the job does).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use runnel_expr::{EvalContext, JobStatus, Object, Value};
use runnel_workflow::{RunStep, Step, StepKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::files::Effects;
use super::{JobState, format_minutes, literal_text};
use crate::backend::{ContainerRun, ExecExit, ExecOutput, ExecRequest, JobEnvironment};
use crate::contexts::{self, FileCommandPaths};
use crate::options::StepSummary;
use crate::output::{OutputEvent, StepOutput, StepOutputOptions, Stream};
use crate::shell::ShellCommand;
use crate::sink::{LogEvent, RunnerLevel, StepRef, StepStatus};

/// The bounds a step runs within.
pub(super) struct Limits<'t> {
    pub(super) cancel: &'t CancellationToken,
    pub(super) deadline: Instant,
    pub(super) job_timeout: Duration,
}

/// How long a step that runs after cancellation (`always()`, `cancelled()`) may take at most.
const AFTER_CANCEL_LIMIT: Duration = Duration::from_secs(5 * 60);

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

/// How the step's process ended, before `continue-on-error`.
pub(super) enum Ended {
    Success,
    Failure,
    Cancelled,
}

impl JobState<'_> {
    pub(super) async fn run_step(
        &mut self,
        environment: &dyn JobEnvironment,
        step: &Step,
        action: &str,
        limits: &Limits<'_>,
    ) {
        let started = Instant::now();
        let files = self.file_command_paths(environment);
        let mut contexts = self.step_contexts(&self.base_env(), environment);
        contexts::add_step(&mut contexts, action, &files);
        self.apply_frame(&mut contexts);
        let own_name = self.display_name(step, &contexts);
        // Inside a composite action everything is logged under the outer step.
        let step_ref = match self.frames.last() {
            Some(frame) => frame.step_ref.clone(),
            None => StepRef {
                index: step.index,
                name: own_name.clone(),
            },
        };

        let run = match self.step_if(step, &contexts) {
            Ok(run) => run,
            Err(message) => {
                self.runner(Some(&step_ref), RunnerLevel::Error, &message);
                self.finish_step(step, &step_ref, Ended::Failure, false, started);
                return;
            }
        };
        if !run {
            self.finish_skipped(step, &step_ref);
            return;
        }
        if self.frames.is_empty() {
            self.emit(Some(&step_ref), LogEvent::StepStarted);
        } else {
            self.emit(Some(&step_ref), LogEvent::GroupStart { title: own_name });
        }

        // Steps that run after cancellation or a job timeout get their own token: the
        // run's token has already fired.
        let after_cancel = self.status == JobStatus::Cancelled;
        let fresh_token = CancellationToken::new();
        let token = if after_cancel {
            &fresh_token
        } else {
            limits.cancel
        };

        let prepared = self.prepare_step(step, &contexts);
        let (ended, continue_on_error) = match prepared {
            Err(message) => {
                self.runner(Some(&step_ref), RunnerLevel::Error, &message);
                (Ended::Failure, false)
            }
            Ok(prepared) => {
                let limit = self.time_limit(prepared.timeout, limits, after_cancel);
                let ended = match &step.kind {
                    StepKind::Run(run) => {
                        self.run_script(
                            environment,
                            run,
                            &prepared,
                            &step_ref,
                            &files,
                            token,
                            limit,
                        )
                        .await
                    }
                    StepKind::Uses(uses) => {
                        self.run_action(
                            environment,
                            step,
                            uses,
                            &prepared,
                            &step_ref,
                            &files,
                            token,
                            limit,
                            limits,
                        )
                        .await
                    }
                };
                let ended = match ended {
                    StepEnd::Exited(ended) => ended,
                    StepEnd::TimedOut => {
                        if limit.job_bound {
                            self.job_timed_out(limits.job_timeout);
                            Ended::Cancelled
                        } else {
                            let minutes = prepared.timeout.map(format_minutes).unwrap_or_default();
                            self.runner(
                                Some(&step_ref),
                                RunnerLevel::Error,
                                &format!(
                                    "The action '{}' has timed out after {minutes} minutes.",
                                    step_ref.name
                                ),
                            );
                            Ended::Failure
                        }
                    }
                };
                (ended, prepared.continue_on_error)
            }
        };
        self.finish_step(step, &step_ref, ended, continue_on_error, started);
    }

    pub(super) fn file_command_paths(
        &mut self,
        environment: &dyn JobEnvironment,
    ) -> FileCommandPaths {
        self.file_counter += 1;
        let n = self.file_counter;
        let dir = format!("{}/_runner_file_commands", environment.paths().temp);
        FileCommandPaths {
            env: format!("{dir}/set_env_{n}"),
            output: format!("{dir}/set_output_{n}"),
            path: format!("{dir}/add_path_{n}"),
            state: format!("{dir}/save_state_{n}"),
            step_summary: format!("{dir}/step_summary_{n}"),
        }
    }

    /// `name:` evaluated, else `Run <first line>` or the `uses` string.
    /// The step's name as logs show it, masked: `name: deploy ${{ secrets.X }}` must not
    /// print the secret in the terminal, in Gitea or in the job's summary of steps.
    pub(super) fn display_name(&self, step: &Step, contexts: &Object) -> String {
        let name = self.unmasked_name(step, contexts);
        self.masker.mask(&name).into_owned()
    }

    fn unmasked_name(&self, step: &Step, contexts: &Object) -> String {
        if let Some(name) = &step.name {
            if let Some(text) = literal_text(&name.template) {
                return text.to_owned();
            }
            if let Ok(value) = self.evaluate_string(contexts, "name", name) {
                return value;
            }
            return name.raw.clone();
        }
        match &step.kind {
            StepKind::Run(run) => {
                let first = run.run.raw.lines().map(str::trim).find(|l| !l.is_empty());
                format!("Run {}", first.unwrap_or_default())
            }
            StepKind::Uses(uses) => uses.uses.value.clone(),
        }
    }

    fn step_if(&self, step: &Step, contexts: &Object) -> Result<bool, String> {
        let host = self.host();
        let cx = EvalContext {
            contexts,
            host: &host,
        };
        match &step.if_condition {
            None => Ok(self.status == JobStatus::Success),
            Some(condition) => condition
                .condition
                .evaluate(&cx)
                .map_err(|error| format!("`if: {}`: {error}", condition.source)),
        }
    }

    pub(super) fn time_limit(
        &self,
        step_timeout: Option<Duration>,
        limits: &Limits<'_>,
        after_cancel: bool,
    ) -> TimeLimit {
        let remaining = limits.deadline.saturating_duration_since(Instant::now());
        if after_cancel {
            let cap = step_timeout
                .unwrap_or(AFTER_CANCEL_LIMIT)
                .min(AFTER_CANCEL_LIMIT);
            return TimeLimit {
                duration: cap,
                job_bound: false,
            };
        }
        match step_timeout {
            Some(step) if step < remaining => TimeLimit {
                duration: step,
                job_bound: false,
            },
            _ => TimeLimit {
                duration: remaining,
                job_bound: true,
            },
        }
    }

    fn finish_skipped(&mut self, step: &Step, step_ref: &StepRef) {
        self.record_step(step, StepStatus::Skipped, StepStatus::Skipped, Vec::new());
        if !self.frames.is_empty() {
            return;
        }
        self.emit(
            Some(step_ref),
            LogEvent::StepFinished {
                outcome: StepStatus::Skipped,
                conclusion: StepStatus::Skipped,
                duration: Duration::ZERO,
            },
        );
        self.summarize(
            step,
            step_ref,
            StepStatus::Skipped,
            StepStatus::Skipped,
            Duration::ZERO,
        );
    }

    fn finish_step(
        &mut self,
        step: &Step,
        step_ref: &StepRef,
        ended: Ended,
        continue_on_error: bool,
        started: Instant,
    ) {
        let outcome = match ended {
            Ended::Success => StepStatus::Success,
            Ended::Failure => StepStatus::Failure,
            Ended::Cancelled => StepStatus::Cancelled,
        };
        let conclusion = match outcome {
            StepStatus::Failure if continue_on_error => StepStatus::Success,
            other => other,
        };
        match conclusion {
            StepStatus::Failure if self.status == JobStatus::Success => {
                self.status = JobStatus::Failure;
            }
            StepStatus::Cancelled => self.status = JobStatus::Cancelled,
            _ => {}
        }
        let outputs = std::mem::take(&mut self.pending_outputs);
        self.record_step(step, outcome, conclusion, outputs);
        let duration = started.elapsed();
        if !self.frames.is_empty() {
            self.emit(Some(step_ref), LogEvent::GroupEnd);
            return;
        }
        self.emit(
            Some(step_ref),
            LogEvent::StepFinished {
                outcome,
                conclusion,
                duration,
            },
        );
        self.summarize(step, step_ref, outcome, conclusion, duration);
    }

    fn summarize(
        &mut self,
        step: &Step,
        step_ref: &StepRef,
        outcome: StepStatus,
        conclusion: StepStatus,
        duration: Duration,
    ) {
        self.step_summaries.push(StepSummary {
            index: step.index,
            id: step.id.as_ref().map(|id| id.value.clone()),
            name: step_ref.name.clone(),
            outcome,
            conclusion,
            duration,
        });
    }

    /// `steps.<id>`: only steps with an `id`.
    fn record_step(
        &mut self,
        step: &Step,
        outcome: StepStatus,
        conclusion: StepStatus,
        outputs: Vec<(String, String)>,
    ) {
        let Some(id) = &step.id else {
            return;
        };
        let mut output_object = Object::new();
        for (name, value) in outputs {
            output_object.insert(name, Value::String(value));
        }
        let mut entry = Object::new();
        entry.insert("outputs", Value::Object(output_object.into()));
        entry.insert("outcome", Value::String(outcome.as_str().to_owned()));
        entry.insert("conclusion", Value::String(conclusion.as_str().to_owned()));
        self.steps
            .insert(id.value.as_str(), Value::Object(entry.into()));
    }

    /// Evaluates the step's `env`, `continue-on-error` and `timeout-minutes`.
    pub(super) fn prepare_step(
        &self,
        step: &Step,
        contexts: &Object,
    ) -> Result<PreparedStep, String> {
        // Each value of the step's `env` sees the job's env, not its siblings.
        let mut env = self.base_env();
        env.extend(self.evaluate_map(contexts, &step.env)?);
        let mut contexts = contexts.clone();
        contexts::set_env(&mut contexts, &env);
        let continue_on_error = self.evaluate_bool(
            &contexts,
            "continue-on-error",
            step.continue_on_error.as_ref(),
        )?;
        let timeout =
            self.evaluate_minutes(&contexts, "timeout-minutes", step.timeout_minutes.as_ref())?;
        Ok(PreparedStep {
            env,
            contexts,
            continue_on_error,
            timeout,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_script(
        &mut self,
        environment: &dyn JobEnvironment,
        run: &RunStep,
        prepared: &PreparedStep,
        step_ref: &StepRef,
        files: &FileCommandPaths,
        token: &CancellationToken,
        limit: TimeLimit,
    ) -> StepEnd {
        match self
            .run_script_inner(environment, run, prepared, step_ref, files, token, limit)
            .await
        {
            Ok(end) => end,
            Err(message) => {
                self.runner(Some(step_ref), RunnerLevel::Error, &message);
                StepEnd::Exited(Ended::Failure)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_script_inner(
        &mut self,
        environment: &dyn JobEnvironment,
        run: &RunStep,
        prepared: &PreparedStep,
        step_ref: &StepRef,
        files: &FileCommandPaths,
        token: &CancellationToken,
        limit: TimeLimit,
    ) -> Result<StepEnd, String> {
        let contexts = &prepared.contexts;
        let job = self.job_model()?;
        // Workflow defaults do not reach into composite actions.
        let defaults = if self.frames.is_empty() {
            [
                job.defaults.as_ref(),
                self.request.workflow.defaults.as_ref(),
            ]
        } else {
            [None, None]
        };
        let shell_template = run
            .shell
            .as_ref()
            .or_else(|| defaults.iter().flatten().find_map(|d| d.shell.as_ref()));
        let shell = match shell_template {
            Some(t) => Some(self.evaluate_string(contexts, "shell", t)?),
            None => None,
        };
        let directory_template = run.working_directory.as_ref().or_else(|| {
            defaults
                .iter()
                .flatten()
                .find_map(|d| d.working_directory.as_ref())
        });
        let workspace = environment.paths().workspace.clone();
        let workdir = match directory_template {
            Some(t) => {
                let dir = self.evaluate_string(contexts, "working-directory", t)?;
                if dir.starts_with('/') {
                    dir
                } else {
                    format!("{workspace}/{dir}")
                }
            }
            None => workspace,
        };
        let script = self.evaluate_string(contexts, "run", &run.run)?;

        let exec_env = self.exec_env(environment, prepared, files);
        let path_var = exec_env.get("PATH").cloned().unwrap_or_default();
        let command = ShellCommand::resolve(shell.as_deref(), environment.info().has_bash)
            .map_err(|error| error.to_string())?;
        if command.windows_only {
            return Err(format!(
                "shell `{}` runs only on Windows runners; this runner is {}",
                command.program, self.request.options.runner.os
            ));
        }
        let program = self.find_shell(environment, &command, &path_var).await?;

        self.file_counter += 1;
        let script_path = format!(
            "{}/run_{}{}",
            environment.paths().temp,
            self.file_counter,
            command.extension
        );
        write(
            environment,
            &script_path,
            command.script(&script).as_bytes(),
            true,
        )
        .await?;

        let request = ExecRequest {
            argv: command.argv(&program, &script_path),
            env: exec_env,
            workdir,
            timeout: Some(limit.duration),
        };
        let (end, effects) = self
            .exec_in_step(environment, &request, prepared, step_ref, files, token)
            .await?;
        self.pending_outputs = effects.outputs;
        Ok(end)
    }

    /// Runs one process as (a phase of) a step: empty file command files first, output
    /// through the pipeline, then the file commands read back and `GITHUB_ENV`/`GITHUB_PATH`
    /// applied. The caller decides what outputs and state mean.
    pub(super) async fn exec_in_step(
        &mut self,
        environment: &dyn JobEnvironment,
        request: impl Into<StepProcess<'_>>,
        prepared: &PreparedStep,
        step_ref: &StepRef,
        files: &FileCommandPaths,
        token: &CancellationToken,
    ) -> Result<(StepEnd, Effects), String> {
        let request = request.into();
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
            allow_unsecure_commands: env_is_true(&prepared.env, "ACTIONS_ALLOW_UNSECURE_COMMANDS"),
            allow_unsecure_stop_command_tokens: env_is_true(
                &prepared.env,
                "ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS",
            ),
            echo_commands: self.request.options.debug,
        };
        let mut effects = Effects::default();
        let exit = self
            .exec_streaming(environment, request, options, step_ref, token, &mut effects)
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
                self.runner(
                    Some(step_ref),
                    RunnerLevel::Error,
                    &format!("Process completed with exit code {code}."),
                );
                StepEnd::Exited(Ended::Failure)
            }
            ExecExit::TimedOut => StepEnd::TimedOut,
            ExecExit::Cancelled => {
                self.runner(
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
    pub(super) fn exec_env(
        &self,
        environment: &dyn JobEnvironment,
        prepared: &PreparedStep,
        files: &FileCommandPaths,
    ) -> BTreeMap<String, String> {
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
        env.extend(contexts::file_command_env(files, str::to_owned));
        env
    }

    /// The shell program as found on the step's `PATH` (or a fallback such as `python3`).
    async fn find_shell(
        &self,
        environment: &dyn JobEnvironment,
        command: &ShellCommand,
        path_var: &str,
    ) -> Result<String, String> {
        for candidate in std::iter::once(&command.program).chain(&command.fallbacks) {
            match environment.find_program(candidate, path_var).await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(error) => return Err(format!("looking for `{candidate}` failed: {error}")),
            }
        }
        let also = if command.fallbacks.is_empty() {
            String::new()
        } else {
            format!(" (nor {})", command.fallbacks.join(", "))
        };
        Err(format!(
            "shell `{}` is not supported here: `{}`{also} was not found on PATH",
            command.program, command.program
        ))
    }

    async fn exec_streaming(
        &self,
        environment: &dyn JobEnvironment,
        request: StepProcess<'_>,
        options: StepOutputOptions,
        step_ref: &StepRef,
        token: &CancellationToken,
        effects: &mut Effects,
    ) -> Result<ExecExit, String> {
        let mut output = StepOutput::new(&self.masker, options);
        let (sender, mut receiver) = mpsc::channel::<ExecOutput>(64);
        let exec = match request {
            StepProcess::Exec(request) => environment.exec(request, sender, token),
            StepProcess::Container(run) => environment.run_container(run, sender, token),
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
        exit.map_err(|error| format!("running the step failed: {error}"))
    }

    fn handle_events(&self, events: Vec<OutputEvent>, step_ref: &StepRef, effects: &mut Effects) {
        let step = Some(step_ref);
        for event in events {
            match event {
                OutputEvent::Line { stream, text } => {
                    self.emit(step, LogEvent::Line { stream, text });
                }
                OutputEvent::Group(title) => self.emit(step, LogEvent::GroupStart { title }),
                OutputEvent::EndGroup => self.emit(step, LogEvent::GroupEnd),
                OutputEvent::Annotation(annotation) => {
                    self.emit(step, LogEvent::Annotation(annotation));
                }
                OutputEvent::Debug(text) => {
                    if self.request.options.debug {
                        self.emit(step, LogEvent::Debug { text });
                    }
                }
                OutputEvent::Warning(text) => self.runner(step, RunnerLevel::Warning, &text),
                OutputEvent::Error(text) => self.runner(step, RunnerLevel::Error, &text),
                OutputEvent::CommandFailed { command, message } => {
                    self.runner(
                        step,
                        RunnerLevel::Error,
                        &format!("Unable to process command '{command}' successfully."),
                    );
                    self.runner(step, RunnerLevel::Error, &message);
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

/// A step's evaluated keys.
pub(super) struct PreparedStep {
    /// The step's environment: job env and `GITHUB_ENV`, then the step's own `env`.
    pub(super) env: IndexMap<String, String>,
    /// Contexts with `env` set to `env`.
    pub(super) contexts: Object,
    pub(super) continue_on_error: bool,
    pub(super) timeout: Option<Duration>,
}

#[derive(Clone, Copy)]
pub(super) struct TimeLimit {
    pub(super) duration: Duration,
    /// The job's remaining time is the tighter bound: running out means the job timed out.
    pub(super) job_bound: bool,
}

pub(super) enum StepEnd {
    Exited(Ended),
    TimedOut,
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
) -> Result<(), String> {
    environment
        .write_file(path, contents, executable)
        .await
        .map_err(|error| format!("writing {path} failed: {error}"))
}
