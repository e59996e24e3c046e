//! One step: display name, `if:`, its keys evaluated into a [`StepRun`], the step kind run,
//! and `steps.<id>` and the job status updated with GitHub's outcome/conclusion rules.
//!
//! Owns: [`StepRun`] (what every phase of a running step needs), the step-kind dispatch point
//! (`run:` in `script`, `uses:` in `action`; one process of a step runs in `exec`), time limits
//! and the step's summary. Inside a composite action the same code runs the action's steps:
//! they log under the outer step (as groups) and keep no summary of their own.
//! Must not: decide which steps are left (the job does).

use std::time::{Duration, Instant};

use indexmap::IndexMap;
use runnel_expr::{JobStatus, Object, Value};
use runnel_workflow::{Step, StepKind};
use tokio_util::sync::CancellationToken;

use super::error::ExprError;
use super::{JobState, format_minutes, literal_text};
use crate::backend::{BackendError, JobEnvironment};
use crate::contexts::{self, FileCommandPaths};
use crate::options::StepSummary;
use crate::sink::{LogEvent, RunnerLevel, StepRef, StepStatus};

/// The bounds a step runs within.
pub(super) struct Limits<'t> {
    pub(super) cancel: &'t CancellationToken,
    pub(super) deadline: Instant,
    pub(super) job_timeout: Duration,
}

/// How long a step that runs after cancellation (`always()`, `cancelled()`) may take at most.
const AFTER_CANCEL_LIMIT: Duration = Duration::from_secs(5 * 60);

/// How the step's process ended, before `continue-on-error`.
pub(super) enum Ended {
    Success,
    Failure,
    Cancelled,
}

/// One step (or a `pre`/`post` hook) being run: everything its phases need, from the
/// environment it runs in to the bounds it runs within.
pub(super) struct StepRun<'r> {
    pub(super) environment: &'r dyn JobEnvironment,
    /// What the step logs under (inside a composite action: the calling step).
    pub(super) step_ref: StepRef,
    pub(super) prepared: PreparedStep,
    /// The file command files of this step.
    pub(super) files: FileCommandPaths,
    /// Cancels the step's processes: the run's token, or a fresh one for a step that runs
    /// after cancellation.
    pub(super) token: CancellationToken,
    /// How long the step's process may run.
    pub(super) limit: TimeLimit,
    /// The job's bounds, for the steps of a composite action and for a job timeout.
    pub(super) limits: &'r Limits<'r>,
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
        let mut contexts = self
            .expressions
            .step_contexts(&self.base_env(), environment);
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
            Err(error) => {
                self.log
                    .runner(Some(&step_ref), RunnerLevel::Error, &error.to_string());
                self.finish_step(step, &step_ref, Ended::Failure, false, started);
                return;
            }
        };
        if !run || self.environment_lost {
            self.finish_skipped(step, &step_ref);
            return;
        }
        if self.frames.is_empty() {
            self.log.emit(Some(&step_ref), LogEvent::StepStarted);
        } else {
            self.log
                .emit(Some(&step_ref), LogEvent::GroupStart { title: own_name });
        }

        // Steps that run after cancellation or a job timeout get their own token: the
        // run's token has already fired.
        let after_cancel = self.expressions.status == JobStatus::Cancelled;
        let prepared = match self.prepare_step(step, &contexts) {
            Ok(prepared) => prepared,
            Err(error) => {
                self.log
                    .runner(Some(&step_ref), RunnerLevel::Error, &error.to_string());
                self.finish_step(step, &step_ref, Ended::Failure, false, started);
                return;
            }
        };
        let run = StepRun {
            environment,
            limit: self.time_limit(prepared.timeout, limits, after_cancel),
            token: if after_cancel {
                CancellationToken::new()
            } else {
                limits.cancel.clone()
            },
            step_ref,
            prepared,
            files,
            limits,
        };
        let ended = match &step.kind {
            StepKind::Run(script) => self.run_script(&run, script).await,
            StepKind::Uses(uses) => self.run_action(&run, step, uses).await,
        };
        let ended = match ended {
            Ok(StepEnd::Exited(ended)) => ended,
            Ok(StepEnd::TimedOut) => self.step_timed_out(&run),
            Err(error) => {
                self.log
                    .runner(Some(&run.step_ref), RunnerLevel::Error, &error.to_string());
                if BackendError::is_lost(&error) {
                    self.lose_environment(Some(&run.step_ref));
                }
                Ended::Failure
            }
        };
        self.finish_step(
            step,
            &run.step_ref,
            ended,
            run.prepared.continue_on_error,
            started,
        );
    }

    /// A step's process ran out of time: the job's time (the job has timed out) or the
    /// step's own `timeout-minutes` (the step fails).
    pub(super) fn step_timed_out(&mut self, run: &StepRun<'_>) -> Ended {
        if run.limit.job_bound {
            self.job_timed_out(run.limits.job_timeout);
            return Ended::Cancelled;
        }
        let minutes = run.prepared.timeout.map(format_minutes).unwrap_or_default();
        self.log.runner(
            Some(&run.step_ref),
            RunnerLevel::Error,
            &format!(
                "The action '{}' has timed out after {minutes} minutes.",
                run.step_ref.name
            ),
        );
        Ended::Failure
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
        self.log.masker.mask(&name).into_owned()
    }

    fn unmasked_name(&self, step: &Step, contexts: &Object) -> String {
        if let Some(name) = &step.name {
            if let Some(text) = literal_text(&name.template) {
                return text.to_owned();
            }
            if let Ok(value) = self.expressions.evaluate_string(contexts, "name", name) {
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

    fn step_if(&self, step: &Step, contexts: &Object) -> Result<bool, ExprError> {
        match &step.if_condition {
            None => Ok(self.expressions.status == JobStatus::Success),
            Some(condition) => self.expressions.condition(contexts, "if", condition),
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

    /// The environment is gone: the job fails whatever `continue-on-error` says, and what is
    /// left of it is skipped (said once).
    pub(super) fn lose_environment(&mut self, step_ref: Option<&StepRef>) {
        if self.environment_lost {
            return;
        }
        self.environment_lost = true;
        if self.expressions.status != JobStatus::Cancelled {
            self.expressions.status = JobStatus::Failure;
        }
        self.log.runner(
            step_ref,
            RunnerLevel::Error,
            "The job's environment is gone: the remaining steps and post steps are skipped.",
        );
    }

    fn finish_skipped(&mut self, step: &Step, step_ref: &StepRef) {
        self.record_step(step, StepStatus::Skipped, StepStatus::Skipped, Vec::new());
        if !self.frames.is_empty() {
            return;
        }
        self.log.emit(
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
            StepStatus::Failure if self.expressions.status == JobStatus::Success => {
                self.expressions.status = JobStatus::Failure;
            }
            StepStatus::Cancelled => self.expressions.status = JobStatus::Cancelled,
            _ => {}
        }
        let outputs = std::mem::take(&mut self.pending_outputs);
        self.record_step(step, outcome, conclusion, outputs);
        let duration = started.elapsed();
        if !self.frames.is_empty() {
            self.log.emit(Some(step_ref), LogEvent::GroupEnd);
            return;
        }
        self.log.emit(
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
        self.expressions
            .steps
            .insert(id.value.as_str(), Value::Object(entry.into()));
    }

    /// Evaluates the step's `env`, `continue-on-error` and `timeout-minutes`.
    pub(super) fn prepare_step(
        &self,
        step: &Step,
        contexts: &Object,
    ) -> Result<PreparedStep, ExprError> {
        // Each value of the step's `env` sees the job's env, not its siblings.
        let mut env = self.base_env();
        env.extend(self.expressions.evaluate_map(contexts, &step.env)?);
        let mut contexts = contexts.clone();
        contexts::set_env(&mut contexts, &env);
        let continue_on_error = self.expressions.evaluate_bool(
            &contexts,
            "continue-on-error",
            step.continue_on_error.as_ref(),
        )?;
        let timeout = self.expressions.evaluate_minutes(
            &contexts,
            "timeout-minutes",
            step.timeout_minutes.as_ref(),
        )?;
        Ok(PreparedStep {
            env,
            contexts,
            continue_on_error,
            timeout,
        })
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
