//! A call job — a job that `uses:` a reusable workflow — run as a sub-plan: `reusable` turns
//! the call into a [`SubPlan`] (the called workflow, the options and the frame its jobs
//! inherit), the driver runs it with [`drive`] like any workflow, and `reusable` evaluates
//! the call's outputs over the called jobs' aggregated results.
//!
//! Owns: the call job's `JobStarted`/`JobFinished` and its [`JobOutcome`], with the called
//! job instances hanging off [`JobOutcome::called`].
//! Must not: resolve, load or check the called file (`reusable` does).

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use runnel_expr::{Object, Value};
use runnel_plan::JobResult;
use runnel_workflow::{Job, ReusableWorkflowCall, Workflow};
use tokio_util::sync::CancellationToken;

use super::{aggregate, drive};
use crate::backend::Backend;
use crate::call_frame::CallFrame;
use crate::job::JobRequest;
use crate::options::{JobOutcome, WorkflowResult};
use crate::reusable::{self, CallLog};
use crate::sink::{LogEvent, LogSink, RunnerLevel};

type CallFuture<'a> = Pin<Box<dyn Future<Output = JobOutcome> + Send + 'a>>;

/// Runs the call job `request` names (`job`, whose `uses:` is `call`). Boxed: a called
/// workflow may call another one, and the future of a recursive call needs a known size.
pub(super) fn run_call<'a>(
    request: &'a JobRequest<'a>,
    job: &'a Job,
    call: &'a ReusableWorkflowCall,
    frame: Option<&'a CallFrame>,
    backend: &'a dyn Backend,
    sink: &'a dyn LogSink,
    cancel: &'a CancellationToken,
) -> CallFuture<'a> {
    Box::pin(async move {
        let started = Instant::now();
        let log = CallLog::new(request, frame, sink);
        log.emit(LogEvent::JobStarted);
        let (result, outputs, called) =
            match reusable::plan_call(request, job, call, frame, &log, cancel).await {
                Ok(plan) => {
                    let prefixed = plan.sink(sink);
                    match drive(
                        &plan.workflow,
                        request.event,
                        &plan.options,
                        backend,
                        &prefixed,
                        cancel.clone(),
                        Some(&plan.frame),
                    )
                    .await
                    {
                        Ok(result) => {
                            let jobs = called_jobs_context(&plan.workflow, &result);
                            let outputs = reusable::call_outputs(&plan, request.event, jobs, &log);
                            let called = result
                                .jobs
                                .into_iter()
                                .map(|outcome| prefixed.outcome(outcome))
                                .collect();
                            (result.result, outputs, called)
                        }
                        Err(error) => {
                            log.runner(RunnerLevel::Error, &error.to_string());
                            (JobResult::Failure, Vec::new(), Vec::new())
                        }
                    }
                }
                Err(error) => {
                    log.runner(RunnerLevel::Error, &error.to_string());
                    (JobResult::Failure, Vec::new(), Vec::new())
                }
            };
        let duration = started.elapsed();
        log.emit(LogEvent::JobFinished { result, duration });
        JobOutcome {
            job_id: request.instance.id.clone(),
            name: request.instance.name.clone(),
            key: request.key.clone(),
            result,
            continue_on_error: false,
            outputs,
            duration,
            steps: Vec::new(),
            called,
        }
    })
}

/// The `jobs` context of a called workflow's outputs: each called job's result and
/// outputs, its matrix legs aggregated as for `needs`.
fn called_jobs_context(called: &Workflow, result: &WorkflowResult) -> Object {
    let mut jobs = Object::new();
    for id in called.jobs.keys() {
        let legs: Vec<&JobOutcome> = result.jobs.iter().filter(|o| &o.job_id == id).collect();
        if legs.is_empty() {
            continue;
        }
        let (job_result, outputs) = aggregate(&legs);
        let mut output_object = Object::new();
        for (name, value) in outputs {
            output_object.insert(name, Value::String(value));
        }
        let mut entry = Object::new();
        entry.insert("result", Value::String(job_result.as_str().to_owned()));
        entry.insert("outputs", Value::Object(output_object.into()));
        jobs.insert(id.as_str(), Value::Object(entry.into()));
    }
    jobs
}
