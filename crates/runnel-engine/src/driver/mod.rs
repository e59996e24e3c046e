//! The workflow driver: runs a workflow's job instances in `needs` order with real results.
//!
//! Owns: planning each job with [`runnel_plan::plan_job_with_contexts`] once its needs have
//! finished (so a matrix from needs outputs and `always()` jobs work), the concurrency limits
//! (the run's and `strategy.max-parallel`), `fail-fast`, job-level `continue-on-error`,
//! passing results and outputs to dependants, the `-j` and `--matrix` filters and the run's
//! overall result; and the one decision per job instance, call or job ([`run_job`]): a job
//! with steps goes to the job runner, a call job becomes a sub-plan that the same loop runs
//! (`drive` with a call frame; see `call`). The scheduling loop and its state live in
//! `schedule`; planning one job, the contexts it is planned with and combining its legs'
//! results live here.
//! Must not: run steps (the job runner does) or spawn tasks: job futures are polled here, in
//! the caller's task, so they may borrow the backend and the workflow.

mod call;
mod schedule;

pub(crate) use schedule::drive;

use std::sync::Arc;

use runnel_expr::{EvalContext, Host, Object, Value};
use runnel_plan::{
    Event, JobInstance, JobResult, NeedsState, NoteSeverity, plan_job_with_contexts,
};
use runnel_workflow::{Job, LiteralOrExpr, Workflow};
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::call_frame::CallFrame;
use crate::contexts::StrategyInfo;
use crate::job::{self, JobRequest, find_job};
use crate::options::{JobOutcome, RunOptions, WorkflowResult};
use crate::sink::{JobRef, LogEvent, LogSink, RunnerLevel, emit};

/// Why a run could not start at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("workflow {file} has no job `{job_id}`")]
    UnknownJob { file: String, job_id: String },
}

/// Runs every job of `workflow` for `event` (or only `options.job_filter`).
pub async fn run_workflow(
    workflow: &Workflow,
    event: &Event,
    options: &RunOptions,
    backend: &dyn Backend,
    sink: Arc<dyn LogSink>,
    cancel: CancellationToken,
) -> Result<WorkflowResult, RunError> {
    let mut result = drive(
        workflow,
        event,
        options,
        backend,
        sink.as_ref(),
        cancel,
        None,
    )
    .await?;
    // Each call job is followed by the job instances of the workflow it called.
    fn flatten(outcome: JobOutcome, into: &mut Vec<JobOutcome>) {
        let called = outcome.called.clone();
        into.push(outcome);
        for inner in called {
            flatten(inner, into);
        }
    }
    let mut jobs = Vec::new();
    for outcome in std::mem::take(&mut result.jobs) {
        flatten(outcome, &mut jobs);
    }
    result.jobs = jobs;
    Ok(result)
}

/// Runs one job instance and reports it to `sink`. Never fails: problems become a failed
/// job with the reason logged. A job that calls a reusable workflow (`uses:`) runs the
/// called workflow's jobs here, in `needs` order, on the same backend.
pub async fn run_job(
    request: &JobRequest<'_>,
    backend: &dyn Backend,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
) -> JobOutcome {
    run_instance(request, None, backend, sink, cancel).await
}

/// The driver's decision for one job instance of the workflow `frame` calls (`None`: a
/// top-level workflow): a call job runs as a sub-plan, any other job runs its steps.
async fn run_instance(
    request: &JobRequest<'_>,
    frame: Option<&CallFrame>,
    backend: &dyn Backend,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
) -> JobOutcome {
    if let Some(job) = find_job(request.workflow, &request.instance.id)
        && let Some(call) = &job.call
    {
        return call::run_call(request, job, call, frame, backend, sink, cancel).await;
    }
    job::run(request, frame, backend, sink, cancel).await
}

enum Planned {
    Skipped {
        instances: Vec<JobInstance>,
        result: JobResult,
    },
    Run {
        instances: Vec<JobInstance>,
    },
}

fn plan_one(
    workflow: &Workflow,
    base: &Object,
    id: &str,
    needs: &NeedsState,
    sink: &dyn LogSink,
    matrix_filter: &[(String, String)],
) -> Planned {
    let mut plan = match plan_job_with_contexts(workflow, id, base, needs) {
        Ok(plan) => plan,
        Err(error) => {
            emit(
                sink,
                &job_ref(id, id, id),
                LogEvent::Runner {
                    level: RunnerLevel::Error,
                    text: error.to_string(),
                },
            );
            return Planned::Skipped {
                instances: Vec::new(),
                result: JobResult::Failure,
            };
        }
    };
    let mut errors = false;
    for note in &plan.notes {
        let level = match note.severity {
            NoteSeverity::Error => {
                errors = true;
                RunnerLevel::Error
            }
            NoteSeverity::Info => RunnerLevel::Info,
        };
        emit(
            sink,
            &job_ref(id, id, id),
            LogEvent::Runner {
                level,
                text: note.message.clone(),
            },
        );
    }
    if !matrix_filter.is_empty() && plan.instances.iter().any(|i| i.matrix.is_some()) {
        plan.instances
            .retain(|instance| matrix_selected(instance, matrix_filter));
        if plan.instances.is_empty() {
            emit(
                sink,
                &job_ref(id, id, id),
                LogEvent::Runner {
                    level: RunnerLevel::Info,
                    text: "no matrix leg matches --matrix: not run".to_owned(),
                },
            );
            return Planned::Skipped {
                instances: Vec::new(),
                result: JobResult::Skipped,
            };
        }
    }
    if plan.would_run && plan.instances.iter().all(|i| i.would_run) {
        Planned::Run {
            instances: plan.instances,
        }
    } else {
        Planned::Skipped {
            instances: plan.instances,
            // A job whose `if:` or matrix could not be evaluated fails, as on GitHub.
            result: if errors {
                JobResult::Failure
            } else {
                JobResult::Skipped
            },
        }
    }
}

/// `--matrix K:V`: a leg runs when each filtered key it has holds one of the given values.
fn matrix_selected(instance: &JobInstance, filter: &[(String, String)]) -> bool {
    let Some(matrix) = &instance.matrix else {
        return true;
    };
    let mut keys: Vec<&str> = filter.iter().map(|(key, _)| key.as_str()).collect();
    keys.dedup();
    keys.iter().all(|key| match matrix.get(key) {
        None => true,
        Some(value) => {
            let value = value.to_display_string();
            filter.iter().any(|(k, v)| k == key && *v == value)
        }
    })
}

/// `github`, `vars` and `inputs`: of the event for a top-level workflow; the caller's
/// `github` and the call's `inputs` for a called one.
fn base_contexts(workflow: &Workflow, event: &Event, frame: Option<&CallFrame>) -> Object {
    let mut contexts = Object::new();
    let object = |o: Object| Value::Object(o.into());
    let (github, inputs) = match frame {
        Some(frame) => (frame.github.clone(), frame.inputs.clone()),
        None => (
            crate::contexts::caller_github(workflow, event),
            runnel_plan::inputs_context(workflow, event),
        ),
    };
    contexts.insert("github", object(github));
    contexts.insert("vars", object(runnel_plan::vars_context(event)));
    contexts.insert("inputs", object(inputs));
    contexts
}

/// `github`, `needs`, `vars`, `inputs` for `strategy` expressions.
fn plan_contexts(base: &Object, needs: &NeedsState) -> Object {
    let mut contexts = base.clone();
    let needs = runnel_plan::needs_context(&needs.needs);
    contexts.insert("needs", Value::Object(needs.into()));
    contexts
}

struct PlanHost;

impl Host for PlanHost {}

fn strategy_info(job: &Job, contexts: &Object, legs: usize) -> StrategyInfo {
    let cx = EvalContext {
        contexts,
        host: &PlanHost,
    };
    let strategy = job.strategy.as_ref();
    let fail_fast = match strategy.and_then(|s| s.fail_fast.as_ref()) {
        Some(LiteralOrExpr::Literal(value)) => value.value,
        Some(LiteralOrExpr::Expr(template)) => template
            .template
            .evaluate(&cx)
            .map_or(true, |v| v.is_truthy()),
        None => true,
    };
    let max_parallel = match strategy.and_then(|s| s.max_parallel.as_ref()) {
        Some(LiteralOrExpr::Literal(value)) => value.value,
        Some(LiteralOrExpr::Expr(template)) => match template.template.evaluate(&cx) {
            Ok(Value::Number(n)) => n,
            Ok(Value::String(s)) => s.trim().parse().unwrap_or(legs as f64),
            _ => legs as f64,
        },
        None => legs as f64,
    };
    StrategyInfo {
        fail_fast,
        max_parallel,
    }
}

/// A matrix job's result from its legs: failure if one failed (not counting
/// `continue-on-error` legs, which count as succeeded), else cancelled if one was, else
/// success. Outputs: every leg's, the later finished overwriting (GitHub: last one wins).
pub(crate) fn aggregate(legs: &[&JobOutcome]) -> (JobResult, Vec<(String, String)>) {
    let effective = |leg: &&&JobOutcome| {
        if leg.result == JobResult::Failure && leg.continue_on_error {
            JobResult::Success
        } else {
            leg.result
        }
    };
    let result = if legs.iter().any(|l| effective(&l) == JobResult::Failure) {
        JobResult::Failure
    } else if legs.iter().any(|l| effective(&l) == JobResult::Cancelled) {
        JobResult::Cancelled
    } else if !legs.is_empty() && legs.iter().all(|l| effective(&l) == JobResult::Skipped) {
        JobResult::Skipped
    } else {
        JobResult::Success
    };
    let mut outputs: Vec<(String, String)> = Vec::new();
    for leg in legs {
        for (name, value) in &leg.outputs {
            match outputs.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = value.clone(),
                None => outputs.push((name.clone(), value.clone())),
            }
        }
    }
    (result, outputs)
}

fn instance_key(instance: &JobInstance) -> String {
    if instance.job_total > 1 {
        format!("{}-{}", instance.id, instance.job_index)
    } else {
        instance.id.clone()
    }
}

fn not_run(instance: &JobInstance, key: String, result: JobResult) -> JobOutcome {
    JobOutcome {
        job_id: instance.id.clone(),
        name: instance.name.clone(),
        key,
        result,
        continue_on_error: false,
        outputs: Vec::new(),
        duration: std::time::Duration::ZERO,
        steps: Vec::new(),
        called: Vec::new(),
    }
}

fn job_ref(job_id: &str, name: &str, key: &str) -> JobRef {
    JobRef {
        job_id: job_id.to_owned(),
        name: name.to_owned(),
        key: key.to_owned(),
    }
}
