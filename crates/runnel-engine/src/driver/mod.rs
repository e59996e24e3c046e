//! The workflow driver: runs a workflow's job instances in `needs` order with real results.
//!
//! Owns: planning each job with [`runnel_plan::plan_job_with_contexts`] once its needs have
//! finished (so a matrix from needs outputs and `always()` jobs work), the concurrency limits
//! (the run's and `strategy.max-parallel`), `fail-fast`, job-level `continue-on-error`,
//! passing results and outputs to dependants, the `-j` and `--matrix` filters and the run's
//! overall result; and the one decision per job instance, call or job ([`run_job`]): a job
//! with steps goes to the job runner, a call job becomes a sub-plan that the same loop runs
//! (`drive` with a call frame; see `call`).
//! Must not: run steps (the job runner does) or spawn tasks: job futures are polled here, in
//! the caller's task, so they may borrow the backend and the workflow.

mod call;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use runnel_expr::{EvalContext, Host, Object, Value};
use runnel_plan::{
    Event, JobInstance, JobResult, NeedOutcome, NeedsState, NoteSeverity, plan_job_with_contexts,
    workflow_needs_order,
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

type JobFuture<'a> = Pin<Box<dyn Future<Output = (usize, JobOutcome)> + Send + 'a>>;

/// A job's state in the run.
enum JobState {
    Waiting,
    /// Instances planned; `slots` index into the outcomes.
    Running {
        slots: Vec<usize>,
        group: CancellationToken,
        max_parallel: usize,
        fail_fast: bool,
        /// A job this one depends on failed.
        upstream_failed: bool,
    },
    Done {
        result: JobResult,
        outputs: Vec<(String, String)>,
        /// This job or one it depends on failed (`failure()` for dependants).
        failed_upstream: bool,
    },
}

/// One job instance waiting for a free slot.
struct Queued {
    job_index: usize,
    slot: usize,
    instance: JobInstance,
    needs: Vec<NeedOutcome>,
    strategy: StrategyInfo,
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

/// Runs the jobs of `workflow`: a top-level one (`frame` is `None`), or one that a call job
/// called, whose jobs see the caller's `github`, the call's `inputs` and report through a
/// sink that names them after the caller. Outcomes are the workflow's own jobs; those of
/// nested calls hang off their call job's [`JobOutcome::called`].
pub(crate) async fn drive(
    workflow: &Workflow,
    event: &Event,
    options: &RunOptions,
    backend: &dyn Backend,
    sink: &dyn LogSink,
    cancel: CancellationToken,
    frame: Option<&CallFrame>,
) -> Result<WorkflowResult, RunError> {
    let started = Instant::now();
    let base = base_contexts(workflow, event, frame);
    // Keys of called jobs start with their caller's (`call/build`): unique within the run.
    let key_prefix = frame.map_or("", |frame| frame.key_prefix.as_str());
    let matrix_filter: &[(String, String)] = match frame {
        Some(_) => &[],
        None => &options.matrix_filter,
    };
    let ids: Vec<&String> = workflow.jobs.keys().collect();
    let selected: Vec<usize> = match &options.job_filter {
        Some(filter) => {
            let index = ids
                .iter()
                .position(|id| id.eq_ignore_ascii_case(filter))
                .ok_or_else(|| RunError::UnknownJob {
                    file: workflow.file.clone(),
                    job_id: filter.clone(),
                })?;
            vec![index]
        }
        None => {
            let order = workflow_needs_order(workflow);
            for index in &order.unordered {
                if let Some(id) = ids.get(*index) {
                    emit(
                        sink,
                        &job_ref(id, id, id),
                        LogEvent::Runner {
                            level: RunnerLevel::Error,
                            text: format!(
                                "job `{id}` needs an unknown job or is part of a `needs` cycle; it cannot run"
                            ),
                        },
                    );
                }
            }
            order.order
        }
    };
    let filtered = options.job_filter.is_some();

    let mut states: Vec<JobState> = workflow.jobs.iter().map(|_| JobState::Waiting).collect();
    let mut outcomes: Vec<Option<JobOutcome>> = Vec::new();
    let mut queue: Vec<Queued> = Vec::new();
    let mut running: Vec<JobFuture<'_>> = Vec::new();
    let mut running_per_job: Vec<usize> = vec![0; states.len()];
    let max_jobs = options.max_parallel_jobs.max(1);

    loop {
        // Plan every waiting job whose needs are done.
        let mut planned_any = false;
        let mut started_any = false;
        for &job_index in &selected {
            if !matches!(states.get(job_index), Some(JobState::Waiting)) {
                continue;
            }
            let Some((id, job)) = workflow.jobs.get_index(job_index) else {
                continue;
            };
            let Some(needs_state) = needs_state(workflow, job, &states, filtered, &cancel) else {
                continue;
            };
            planned_any = true;
            let planned = plan_one(workflow, &base, id, &needs_state, sink, matrix_filter);
            match planned {
                Planned::Skipped { instances, result } => {
                    for instance in instances {
                        let key = format!("{key_prefix}{}", instance_key(&instance));
                        let outcome = not_run(&instance, key, result);
                        emit(
                            sink,
                            &job_ref(&instance.id, &instance.name, &outcome.key),
                            LogEvent::JobFinished {
                                result,
                                duration: std::time::Duration::ZERO,
                            },
                        );
                        outcomes.push(Some(outcome));
                    }
                    if let Some(state) = states.get_mut(job_index) {
                        *state = JobState::Done {
                            result,
                            outputs: Vec::new(),
                            failed_upstream: needs_state.any_ancestor_failed
                                || result == JobResult::Failure,
                        };
                    }
                }
                Planned::Run { instances } => {
                    let contexts = plan_contexts(&base, &needs_state);
                    let strategy = strategy_info(job, &contexts, instances.len());
                    let mut slots = Vec::new();
                    for instance in instances {
                        let slot = outcomes.len();
                        outcomes.push(None);
                        slots.push(slot);
                        queue.push(Queued {
                            job_index,
                            slot,
                            instance,
                            needs: needs_state.needs.clone(),
                            strategy,
                        });
                    }
                    // After cancellation only jobs whose `if:` allowed it (`always()`) get
                    // this far; they run with a token of their own.
                    let group = if cancel.is_cancelled() {
                        CancellationToken::new()
                    } else {
                        cancel.child_token()
                    };
                    let max_parallel = strategy.max_parallel.max(1.0) as usize;
                    if let Some(state) = states.get_mut(job_index) {
                        *state = JobState::Running {
                            slots,
                            group,
                            max_parallel,
                            fail_fast: strategy.fail_fast,
                            upstream_failed: needs_state.any_ancestor_failed,
                        };
                    }
                }
            }
        }

        // Start queued instances while there is room.
        let mut position = 0;
        while position < queue.len() && running.len() < max_jobs {
            let Some(queued) = queue.get(position) else {
                break;
            };
            let Some(JobState::Running {
                group,
                max_parallel,
                ..
            }) = states.get(queued.job_index)
            else {
                position += 1;
                continue;
            };
            let running_here = running_per_job.get(queued.job_index).copied().unwrap_or(0);
            if running_here >= *max_parallel {
                position += 1;
                continue;
            }
            let group = group.clone();
            let queued = queue.remove(position);
            started_any = true;
            let key = format!("{key_prefix}{}", instance_key(&queued.instance));
            if group.is_cancelled() {
                // fail-fast cancelled the matrix before this leg started.
                let outcome = not_run(&queued.instance, key, JobResult::Cancelled);
                emit(
                    sink,
                    &job_ref(&queued.instance.id, &queued.instance.name, &outcome.key),
                    LogEvent::JobFinished {
                        result: JobResult::Cancelled,
                        duration: std::time::Duration::ZERO,
                    },
                );
                if let Some(slot) = outcomes.get_mut(queued.slot) {
                    *slot = Some(outcome);
                }
                continue;
            }
            if let Some(count) = running_per_job.get_mut(queued.job_index) {
                *count += 1;
            }
            running.push(Box::pin(async move {
                let request = JobRequest {
                    workflow,
                    event,
                    instance: &queued.instance,
                    key,
                    needs: &queued.needs,
                    strategy: queued.strategy,
                    options,
                };
                let outcome = run_instance(&request, frame, backend, sink, &group).await;
                (queued.slot, outcome)
            }));
        }

        // Jobs whose instances have all finished are done.
        let mut progressed = planned_any || started_any;
        for state in &mut states {
            if let JobState::Running {
                slots,
                upstream_failed,
                ..
            } = state
                && slots
                    .iter()
                    .all(|s| outcomes.get(*s).is_some_and(Option::is_some))
            {
                let finished: Vec<&JobOutcome> = slots
                    .iter()
                    .filter_map(|s| outcomes.get(*s)?.as_ref())
                    .collect();
                let (result, outputs) = aggregate(&finished);
                let failed_upstream = result == JobResult::Failure || *upstream_failed;
                progressed = true;
                *state = JobState::Done {
                    result,
                    outputs,
                    failed_upstream,
                };
            }
        }

        if running.is_empty() {
            let waiting = selected
                .iter()
                .any(|i| matches!(states.get(*i), Some(JobState::Waiting)));
            if !waiting && queue.is_empty() {
                break;
            }
            if !progressed {
                // Nothing runs and nothing more can be planned: cannot happen with an
                // ordered graph, but stop rather than spin.
                break;
            }
            continue;
        }

        let (slot, outcome) = next_finished(&mut running).await;
        if let Some(count) = running_per_job.get_mut(job_position(workflow, &outcome.job_id)) {
            *count = count.saturating_sub(1);
        }
        if outcome.result == JobResult::Failure && !outcome.continue_on_error {
            // fail-fast: cancel the other legs of this matrix.
            let job_index = job_position(workflow, &outcome.job_id);
            if let Some(JobState::Running {
                group,
                slots,
                fail_fast: true,
                ..
            }) = states.get(job_index)
                && slots.len() > 1
            {
                group.cancel();
            }
        }
        if let Some(entry) = outcomes.get_mut(slot) {
            *entry = Some(outcome);
        }
    }

    let jobs: Vec<JobOutcome> = outcomes.into_iter().flatten().collect();
    let result = if jobs
        .iter()
        .any(|j| j.result == JobResult::Failure && !j.continue_on_error)
    {
        JobResult::Failure
    } else if cancel.is_cancelled() || jobs.iter().any(|j| j.result == JobResult::Cancelled) {
        JobResult::Cancelled
    } else {
        JobResult::Success
    };
    Ok(WorkflowResult {
        result,
        jobs,
        duration: started.elapsed(),
    })
}

fn job_position(workflow: &Workflow, job_id: &str) -> usize {
    workflow
        .jobs
        .keys()
        .position(|id| id == job_id)
        .unwrap_or(usize::MAX)
}

/// Polls the running job futures until one finishes.
async fn next_finished(running: &mut Vec<JobFuture<'_>>) -> (usize, JobOutcome) {
    std::future::poll_fn(|cx| {
        for index in 0..running.len() {
            let Some(future) = running.get_mut(index) else {
                break;
            };
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                drop(running.swap_remove(index));
                return Poll::Ready(output);
            }
        }
        Poll::Pending
    })
    .await
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

/// The needs of `job` once all are done; `None` while one is still waiting or running.
/// With the `-j` filter the needs were not run: they count as succeeded with no outputs.
fn needs_state(
    workflow: &Workflow,
    job: &Job,
    states: &[JobState],
    filtered: bool,
    cancel: &CancellationToken,
) -> Option<NeedsState> {
    let mut state = NeedsState {
        cancelled: cancel.is_cancelled(),
        ..NeedsState::default()
    };
    for need in &job.needs {
        let (result, outputs, failed) = if filtered {
            (JobResult::Success, Vec::new(), false)
        } else {
            let index = workflow
                .jobs
                .keys()
                .position(|id| id.eq_ignore_ascii_case(&need.value))?;
            match states.get(index)? {
                JobState::Done {
                    result,
                    outputs,
                    failed_upstream,
                } => (*result, outputs.clone(), *failed_upstream),
                _ => return None,
            }
        };
        state.any_ancestor_failed |= failed;
        state.needs.push(NeedOutcome {
            job_id: need.value.clone(),
            result,
            outputs,
        });
    }
    Some(state)
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
