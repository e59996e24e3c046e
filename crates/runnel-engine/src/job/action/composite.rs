//! Composite actions: the action's steps run through the job's own step code with a
//! [`CompositeFrame`] pushed, so they get a private `steps` context, a status of their own
//! (their `success()`/`failure()` see only the composite's steps), the action's `inputs`, and
//! `github.action_path`; the calling step's env is inherited. Outputs come from `value:`.
//!
//! Must not: log steps of its own; inner steps log under the calling step.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use indexmap::IndexMap;
use runnel_expr::{JobStatus, Object, Value};
use runnel_workflow::CompositeRuns;

use super::ActionStep;
use crate::job::JobState;
use crate::job::error::StepError;
use crate::job::step::{Ended, StepEnd, StepRun};
use crate::sink::{RunnerLevel, StepRef};

/// GitHub stops nesting composite actions at this depth.
const MAX_DEPTH: usize = 9;

/// A composite action being run.
pub(crate) struct CompositeFrame {
    /// The calling step: everything inside is logged under it.
    pub(crate) step_ref: StepRef,
    /// The env the calling step ran with; the inner steps start from it.
    pub(crate) env: IndexMap<String, String>,
    inputs: Object,
    action_path: String,
    action_repository: String,
    action_ref: String,
}

impl CompositeFrame {
    /// `inputs` and `github.action_*` as the inner steps see them.
    pub(crate) fn apply(&self, contexts: &mut Object) {
        contexts.insert("inputs", Value::Object(self.inputs.clone().into()));
        let mut github = match contexts.get("github") {
            Some(Value::Object(github)) => (**github).clone(),
            _ => Object::new(),
        };
        for (name, value) in [
            ("action_path", &self.action_path),
            ("action_repository", &self.action_repository),
            ("action_ref", &self.action_ref),
        ] {
            github.insert(name, Value::String(value.clone()));
        }
        contexts.insert("github", Value::Object(github.into()));
    }
}

/// The future of a composite action's run. A composite's steps may be composite actions, so
/// this future contains itself; the box (with `Send` stated, not inferred) breaks the cycle.
type CompositeRun<'f> = Pin<Box<dyn Future<Output = Result<StepEnd, StepError>> + Send + 'f>>;

impl JobState<'_> {
    pub(super) fn run_composite<'f>(
        &'f mut self,
        run: &'f StepRun<'_>,
        action: &'f ActionStep<'_>,
        composite: &'f CompositeRuns,
    ) -> CompositeRun<'f> {
        Box::pin(self.run_composite_steps(run, action, composite))
    }

    async fn run_composite_steps(
        &mut self,
        run: &StepRun<'_>,
        action: &ActionStep<'_>,
        composite: &CompositeRuns,
    ) -> Result<StepEnd, StepError> {
        let loaded = action.loaded;
        let (environment, limits) = (run.environment, run.limits);
        if self.frames.len() >= MAX_DEPTH {
            return Err(StepError::CompositeTooDeep {
                uses: loaded.uses.clone(),
                depth: MAX_DEPTH,
            });
        }
        let mut input_object = Object::new();
        for (name, value) in action.inputs {
            input_object.insert(name.as_str(), Value::String(value.clone()));
        }
        self.frames.push(CompositeFrame {
            step_ref: run.step_ref.clone(),
            env: run.prepared.env.clone(),
            inputs: input_object,
            action_path: loaded.path.clone(),
            action_repository: loaded.repository.clone(),
            action_ref: loaded.git_ref.clone(),
        });
        let saved_steps = std::mem::take(&mut self.expressions.steps);
        let saved_status = self.expressions.status;
        if self.expressions.status != JobStatus::Cancelled {
            self.expressions.status = JobStatus::Success;
        }
        let mut unnamed_runs = 0usize;
        for step in &composite.steps {
            if self.expressions.status != JobStatus::Cancelled {
                if limits.cancel.is_cancelled() {
                    self.expressions.status = JobStatus::Cancelled;
                } else if Instant::now() >= limits.deadline {
                    self.job_timed_out(limits.job_timeout);
                }
            }
            let action = match &step.id {
                Some(id) => id.value.clone(),
                None => {
                    unnamed_runs += 1;
                    if unnamed_runs == 1 {
                        "__run".to_owned()
                    } else {
                        format!("__run_{unnamed_runs}")
                    }
                }
            };
            self.run_step(environment, step, &action, limits).await;
        }
        let mut contexts = self
            .expressions
            .step_contexts(&self.base_env(), environment);
        self.apply_frame(&mut contexts);
        let mut outputs = Vec::new();
        for (id, output) in &loaded.action.outputs {
            let Some(value) = &output.value else {
                continue;
            };
            match self
                .expressions
                .evaluate_string(&contexts, &format!("outputs.{id}.value"), value)
            {
                Ok(text) => outputs.push((id.clone(), text)),
                Err(error) => {
                    self.log
                        .runner(Some(&run.step_ref), RunnerLevel::Error, &error.to_string());
                }
            }
        }
        self.frames.pop();
        let inner_status = self.expressions.status;
        self.expressions.status = saved_status;
        self.expressions.steps = saved_steps;
        self.pending_outputs = outputs;
        Ok(StepEnd::Exited(match inner_status {
            JobStatus::Success => Ended::Success,
            JobStatus::Failure => Ended::Failure,
            JobStatus::Cancelled => Ended::Cancelled,
        }))
    }
}
