//! `pre` and `post` of JavaScript actions, ordered as on GitHub: during job setup every
//! repository action of the job's steps is fetched, then the `pre` hooks run in step order;
//! after the last step the `post` hooks run in reverse order, one for each step whose main
//! part ran. `pre-if`/`post-if` default to `always()` and their status functions see the job.
//! Local actions have no `pre` (GitHub cannot read them before the checkout step).
//!
//! Must not: run the main part of a step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use runnel_expr::{EvalContext, JobStatus};
use runnel_workflow::{ActionRuns, IfExpr, Step, StepKind};
use tokio_util::sync::CancellationToken;

use super::LoadedAction;
use super::node::NodeScript;
use crate::actions::ActionReference;
use crate::backend::JobEnvironment;
use crate::contexts;
use crate::job::JobState;
use crate::job::step::{Ended, Limits, PreparedStep, StepEnd};
use crate::options::StepSummary;
use crate::sink::{LogEvent, RunnerLevel, StepRef, StepStatus};

/// A `pre` or `post` hook ready to run.
pub(crate) struct Hook {
    /// `Pre <step name>` / `Post <step name>` at the step's index.
    pub(super) step_ref: StepRef,
    pub(super) step_index: usize,
    pub(super) step_id: Option<String>,
    pub(super) loaded: Arc<LoadedAction>,
    pub(super) script: String,
    /// `None`: `always()`.
    pub(super) condition: Option<IfExpr>,
    /// The step's env as its main part saw it (for `pre`: as it evaluated at setup).
    pub(super) env: IndexMap<String, String>,
    pub(super) inputs: IndexMap<String, String>,
    /// `STATE_*` for this hook.
    pub(super) state: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pre,
    Post,
}

impl JobState<'_> {
    /// Fetches the job steps' repository actions and runs their `pre` hooks. `false` when a
    /// fetch failed: the job has failed in setup and no step runs.
    pub(in crate::job) async fn prepare_actions(
        &mut self,
        environment: &dyn JobEnvironment,
        steps: &[Step],
        limits: &Limits<'_>,
    ) -> bool {
        let options = self.request.options;
        for step in steps {
            let StepKind::Uses(uses) = &step.kind else {
                continue;
            };
            let reference = ActionReference::parse(
                &uses.uses.value,
                &options.actions_url,
                &options.server.server_url,
            );
            let Some(ActionReference::Remote(remote)) = reference else {
                continue;
            };
            if let Err(message) = self
                .load_remote(environment, &remote, None, limits.cancel)
                .await
            {
                self.runner(None, RunnerLevel::Error, &message);
                self.status = JobStatus::Failure;
                return false;
            }
        }
        for step in steps {
            let StepKind::Uses(uses) = &step.kind else {
                continue;
            };
            let Some(loaded) = self.actions.remote.get(&uses.uses.value).cloned() else {
                continue;
            };
            let ActionRuns::Node(node) = &loaded.action.runs else {
                continue;
            };
            let Some(pre) = &node.pre else {
                continue;
            };
            match self.pre_hook(environment, step, uses, &loaded, pre.value.clone(), node) {
                Ok(hook) => self.run_hook(environment, hook, limits, Phase::Pre).await,
                Err(message) => {
                    self.runner(None, RunnerLevel::Error, &message);
                    self.status = JobStatus::Failure;
                }
            }
        }
        true
    }

    fn pre_hook(
        &mut self,
        environment: &dyn JobEnvironment,
        step: &Step,
        uses: &runnel_workflow::UsesStep,
        loaded: &Arc<LoadedAction>,
        script: String,
        node: &runnel_workflow::NodeRuns,
    ) -> Result<Hook, String> {
        let contexts = self.step_contexts(&self.base_env(), environment);
        let name = self.display_name(step, &contexts);
        let step_ref = StepRef {
            index: step.index,
            name: format!("Pre {name}"),
        };
        let prepared = self.prepare_step(step, &contexts)?;
        let inputs = self.action_inputs(loaded, uses, &prepared, &step_ref)?;
        Ok(Hook {
            step_ref,
            step_index: step.index,
            step_id: step.id.as_ref().map(|id| id.value.clone()),
            loaded: Arc::clone(loaded),
            script,
            condition: node.pre_if.clone(),
            env: prepared.env,
            inputs,
            state: Vec::new(),
        })
    }

    /// The `post` hooks, last registered first.
    pub(in crate::job) async fn run_post_hooks(
        &mut self,
        environment: &dyn JobEnvironment,
        limits: &Limits<'_>,
    ) {
        let posts = std::mem::take(&mut self.actions.posts);
        for hook in posts.into_iter().rev() {
            self.run_hook(environment, hook, limits, Phase::Post).await;
        }
    }

    async fn run_hook(
        &mut self,
        environment: &dyn JobEnvironment,
        hook: Hook,
        limits: &Limits<'_>,
        phase: Phase,
    ) {
        let started = Instant::now();
        let files = self.file_command_paths(environment);
        let mut contexts = self.step_contexts(&hook.env, environment);
        let action = hook.step_id.clone().unwrap_or_else(|| "__run".to_owned());
        contexts::add_step(&mut contexts, &action, &files);
        let run = match &hook.condition {
            None => Ok(true),
            Some(condition) => {
                let host = self.host();
                let cx = EvalContext {
                    contexts: &contexts,
                    host: &host,
                };
                let key = if phase == Phase::Pre {
                    "pre-if"
                } else {
                    "post-if"
                };
                condition
                    .condition
                    .evaluate(&cx)
                    .map_err(|error| format!("`{key}: {}`: {error}", condition.source))
            }
        };
        let step_ref = hook.step_ref.clone();
        match run {
            Ok(true) => {}
            Ok(false) => return,
            Err(message) => {
                self.emit(Some(&step_ref), LogEvent::StepStarted);
                self.runner(Some(&step_ref), RunnerLevel::Error, &message);
                self.finish_hook(&hook, Ended::Failure, started);
                return;
            }
        }
        self.emit(Some(&step_ref), LogEvent::StepStarted);
        let after_cancel = self.status == JobStatus::Cancelled;
        let fresh_token = CancellationToken::new();
        let token = if after_cancel {
            &fresh_token
        } else {
            limits.cancel
        };
        let limit = self.time_limit(None, limits, after_cancel);
        let prepared = PreparedStep {
            env: hook.env.clone(),
            contexts,
            continue_on_error: false,
            timeout: None,
        };
        let script = NodeScript {
            loaded: &hook.loaded,
            script: &hook.script,
            inputs: &hook.inputs,
            state: &hook.state,
        };
        let result = self
            .run_node_script(
                environment,
                &script,
                &prepared,
                &step_ref,
                &files,
                token,
                limit,
            )
            .await;
        let ended = match result {
            Ok((end, effects)) => {
                if phase == Phase::Pre {
                    self.actions
                        .pre_state
                        .insert(hook.step_index, effects.state);
                }
                match end {
                    StepEnd::Exited(ended) => ended,
                    StepEnd::TimedOut if limit.job_bound => {
                        self.job_timed_out(limits.job_timeout);
                        Ended::Cancelled
                    }
                    StepEnd::TimedOut => Ended::Failure,
                }
            }
            Err(message) => {
                self.runner(Some(&step_ref), RunnerLevel::Error, &message);
                Ended::Failure
            }
        };
        self.finish_hook(&hook, ended, started);
    }

    /// A hook's result counts for the job like a step's; it has no `steps.<id>` entry.
    fn finish_hook(&mut self, hook: &Hook, ended: Ended, started: Instant) {
        let status = match ended {
            Ended::Success => StepStatus::Success,
            Ended::Failure => StepStatus::Failure,
            Ended::Cancelled => StepStatus::Cancelled,
        };
        match status {
            StepStatus::Failure if self.status == JobStatus::Success => {
                self.status = JobStatus::Failure;
            }
            StepStatus::Cancelled => self.status = JobStatus::Cancelled,
            _ => {}
        }
        let duration: Duration = started.elapsed();
        self.emit(
            Some(&hook.step_ref),
            LogEvent::StepFinished {
                outcome: status,
                conclusion: status,
                duration,
            },
        );
        self.step_summaries.push(StepSummary {
            index: hook.step_index,
            id: hook.step_id.clone(),
            name: hook.step_ref.name.clone(),
            outcome: status,
            conclusion: status,
            duration,
        });
    }
}
