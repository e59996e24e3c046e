//! `pre` and `post` of JavaScript actions and `pre-entrypoint`/`post-entrypoint` of docker
//! actions, ordered as on GitHub: during job setup every repository action of the job's steps
//! is fetched, then the `pre` hooks run in step order (a docker action's image is pulled or
//! built for it then); after the last step the `post` hooks run in reverse order, one for each
//! step whose main part ran. `pre-if`/`post-if` default to `always()` and their status
//! functions see the job. Local actions have no `pre` (GitHub cannot read them before the
//! checkout step).
//!
//! Must not: run the main part of a step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use runnel_expr::JobStatus;
use runnel_workflow::{ActionRuns, IfExpr, Step, StepKind};
use tokio_util::sync::CancellationToken;

use super::container::{ContainerStep, state_variables};
use super::node::NodeScript;
use super::{ActionStep, LoadedAction};
use crate::actions::ActionReference;
use crate::backend::{BackendError, JobEnvironment};
use crate::contexts;
use crate::job::JobState;
use crate::job::error::StepError;
use crate::job::step::{Ended, Limits, PreparedStep, StepEnd, StepRun};
use crate::options::StepSummary;
use crate::sink::{LogEvent, RunnerLevel, StepRef, StepStatus};

/// A `pre` or `post` hook ready to run.
pub(crate) struct Hook {
    /// `Pre <step name>` / `Post <step name>` at the step's index.
    pub(super) step_ref: StepRef,
    pub(super) step_index: usize,
    pub(super) step_id: Option<String>,
    pub(super) loaded: Arc<LoadedAction>,
    pub(super) run: HookRun,
    /// `None`: `always()`.
    pub(super) condition: Option<IfExpr>,
    /// The step's env as its main part saw it (for `pre`: as it evaluated at setup).
    pub(super) env: IndexMap<String, String>,
    pub(super) inputs: IndexMap<String, String>,
    /// `STATE_*` for this hook.
    pub(super) state: Vec<(String, String)>,
}

/// What a hook runs.
pub(crate) enum HookRun {
    /// A JavaScript file, relative to the action directory.
    Node { script: String },
    /// The action's image with the hook's entrypoint; `STATE_*` is added when it runs.
    Container(ContainerStep),
}

impl Hook {
    /// The `post` hook of the step `run` ran the main part of; `state` is what its `pre`
    /// and main parts saved.
    pub(super) fn post(
        run: &StepRun<'_>,
        action: &ActionStep<'_>,
        hook_run: HookRun,
        condition: Option<IfExpr>,
        state: Vec<(String, String)>,
    ) -> Hook {
        Hook {
            step_ref: StepRef {
                index: run.step_ref.index,
                name: format!("Post {}", run.step_ref.name),
            },
            step_index: action.step.index,
            step_id: action.step.id.as_ref().map(|id| id.value.clone()),
            loaded: Arc::clone(action.loaded),
            run: hook_run,
            condition,
            env: run.prepared.env.clone(),
            inputs: action.inputs.clone(),
            state,
        }
    }
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
            if self.is_local_checkout(uses) {
                continue;
            }
            let reference = ActionReference::parse(
                &uses.uses.value,
                &options.actions_url,
                &options.server.server_url,
            );
            let Some(ActionReference::Remote(remote)) = reference else {
                continue;
            };
            if let Err(error) = self
                .load_remote(environment, &remote, None, limits.cancel)
                .await
            {
                self.log
                    .runner(None, RunnerLevel::Error, &error.to_string());
                self.expressions.status = JobStatus::Failure;
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
            let has_pre = match &loaded.action.runs {
                ActionRuns::Node(node) => node.pre.is_some(),
                ActionRuns::Docker(docker) => docker.pre_entrypoint.is_some(),
                ActionRuns::Composite(_) => false,
            };
            if !has_pre {
                continue;
            }
            match self
                .pre_hook(environment, step, uses, &loaded, limits.cancel)
                .await
            {
                Ok(hook) => self.run_hook(environment, hook, limits, Phase::Pre).await,
                Err(error) => {
                    self.log
                        .runner(None, RunnerLevel::Error, &error.to_string());
                    self.expressions.status = JobStatus::Failure;
                }
            }
        }
        true
    }

    /// The `pre` hook of `step`, whose action has one.
    async fn pre_hook(
        &mut self,
        environment: &dyn JobEnvironment,
        step: &Step,
        uses: &runnel_workflow::UsesStep,
        loaded: &Arc<LoadedAction>,
        token: &CancellationToken,
    ) -> Result<Hook, StepError> {
        let contexts = self
            .expressions
            .step_contexts(&self.base_env(), environment);
        let name = self.display_name(step, &contexts);
        let step_ref = StepRef {
            index: step.index,
            name: format!("Pre {name}"),
        };
        let prepared = self.prepare_step(step, &contexts)?;
        let inputs = self.action_inputs(loaded, uses, &prepared, &step_ref)?;
        let (run, condition) = match &loaded.action.runs {
            ActionRuns::Node(node) => {
                let script = node.pre.as_ref().map(|pre| pre.value.clone());
                let script = script.unwrap_or_default();
                (HookRun::Node { script }, node.pre_if.clone())
            }
            ActionRuns::Docker(docker) => {
                let action = ActionStep {
                    step,
                    loaded,
                    inputs: &inputs,
                };
                let mut container = self
                    .docker_action_container(
                        environment,
                        &action,
                        docker,
                        &prepared.contexts,
                        None,
                        token,
                    )
                    .await?;
                container.entrypoint = docker.pre_entrypoint.as_ref().map(|e| e.value.clone());
                (HookRun::Container(container), docker.pre_if.clone())
            }
            ActionRuns::Composite(_) => {
                return Err(StepError::CompositePre {
                    uses: loaded.uses.clone(),
                });
            }
        };
        Ok(Hook {
            step_ref,
            step_index: step.index,
            step_id: step.id.as_ref().map(|id| id.value.clone()),
            loaded: Arc::clone(loaded),
            run,
            condition,
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
            if self.environment_lost {
                return;
            }
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
        let mut contexts = self.expressions.step_contexts(&hook.env, environment);
        let action = hook.step_id.clone().unwrap_or_else(|| "__run".to_owned());
        contexts::add_step(&mut contexts, &action, &files);
        let run = match &hook.condition {
            None => Ok(true),
            Some(condition) => {
                let key = if phase == Phase::Pre {
                    "pre-if"
                } else {
                    "post-if"
                };
                self.expressions.condition(&contexts, key, condition)
            }
        };
        let step_ref = hook.step_ref.clone();
        match run {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                self.log.emit(Some(&step_ref), LogEvent::StepStarted);
                self.log
                    .runner(Some(&step_ref), RunnerLevel::Error, &error.to_string());
                self.finish_hook(&hook, Ended::Failure, started);
                return;
            }
        }
        self.log.emit(Some(&step_ref), LogEvent::StepStarted);
        let after_cancel = self.expressions.status == JobStatus::Cancelled;
        let run = StepRun {
            environment,
            step_ref,
            prepared: PreparedStep {
                env: hook.env.clone(),
                contexts,
                continue_on_error: false,
                timeout: None,
            },
            files,
            token: if after_cancel {
                CancellationToken::new()
            } else {
                limits.cancel.clone()
            },
            limit: self.time_limit(None, limits, after_cancel),
            limits,
        };
        let result = match &hook.run {
            HookRun::Node { script } => {
                let script = NodeScript {
                    loaded: &hook.loaded,
                    script,
                    inputs: &hook.inputs,
                    state: &hook.state,
                };
                self.run_node_script(&run, &script).await
            }
            HookRun::Container(container) => {
                let mut container = container.clone();
                container.env.extend(state_variables(&hook.state));
                self.run_step_container(&run, &container).await
            }
        };
        let ended = match result {
            Ok((end, effects)) => {
                if phase == Phase::Pre {
                    self.actions
                        .pre_state
                        .insert(hook.step_index, effects.state);
                }
                match end {
                    StepEnd::Exited(ended) => ended,
                    StepEnd::TimedOut if run.limit.job_bound => {
                        self.job_timed_out(limits.job_timeout);
                        Ended::Cancelled
                    }
                    StepEnd::TimedOut => Ended::Failure,
                }
            }
            Err(error) => {
                self.log
                    .runner(Some(&run.step_ref), RunnerLevel::Error, &error.to_string());
                if BackendError::is_lost(&error) {
                    self.lose_environment(Some(&run.step_ref));
                }
                Ended::Failure
            }
        };
        self.finish_hook(&hook, ended, started);
    }

    /// `STATE_*` for the main part of `step`: what its `pre` saved. Only job steps have a
    /// `pre` (GitHub runs it during job setup).
    pub(super) fn pre_state(&self, step: &Step) -> Vec<(String, String)> {
        if !self.frames.is_empty() {
            return Vec::new();
        }
        self.actions
            .pre_state
            .get(&step.index)
            .cloned()
            .unwrap_or_default()
    }

    /// A hook's result counts for the job like a step's; it has no `steps.<id>` entry.
    fn finish_hook(&mut self, hook: &Hook, ended: Ended, started: Instant) {
        let status = match ended {
            Ended::Success => StepStatus::Success,
            Ended::Failure => StepStatus::Failure,
            Ended::Cancelled => StepStatus::Cancelled,
        };
        match status {
            StepStatus::Failure if self.expressions.status == JobStatus::Success => {
                self.expressions.status = JobStatus::Failure;
            }
            StepStatus::Cancelled => self.expressions.status = JobStatus::Cancelled,
            _ => {}
        }
        let duration: Duration = started.elapsed();
        self.log.emit(
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
