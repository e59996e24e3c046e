//! One workflow's schedule: which jobs wait, run or are done, the instances queued for a
//! free slot and the futures running, and the loop that moves them along (plan the jobs
//! whose needs are done, start queued instances while there is room, settle the jobs whose
//! instances have all finished, wait for the next one; `fail-fast` cancels a matrix's other
//! legs).
//! Must not: decide what a job is (the driver's `run_instance` does) or spawn tasks.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use runnel_expr::Object;
use runnel_plan::{Event, JobInstance, JobResult, NeedOutcome, NeedsState, workflow_needs_order};
use runnel_workflow::{Job, Workflow};
use tokio_util::sync::CancellationToken;

use super::{
    Planned, RunError, aggregate, base_contexts, instance_key, job_ref, not_run, plan_contexts,
    plan_one, run_instance, strategy_info,
};
use crate::backend::Backend;
use crate::call_frame::CallFrame;
use crate::contexts::StrategyInfo;
use crate::job::JobRequest;
use crate::options::{JobOutcome, RunOptions, WorkflowResult};
use crate::sink::{LogEvent, LogSink, RunnerLevel, emit};

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

/// What every job of one `drive` shares.
#[derive(Clone, Copy)]
struct Run<'a> {
    workflow: &'a Workflow,
    event: &'a Event,
    options: &'a RunOptions,
    backend: &'a dyn Backend,
    sink: &'a dyn LogSink,
    frame: Option<&'a CallFrame>,
    /// Keys of called jobs start with their caller's (`call/build`): unique within the run.
    key_prefix: &'a str,
    /// `--matrix K:V`, for a top-level workflow only.
    matrix_filter: &'a [(String, String)],
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
    let run = Run {
        workflow,
        event,
        options,
        backend,
        sink,
        frame,
        key_prefix: frame.map_or("", |frame| frame.key_prefix.as_str()),
        matrix_filter: match frame {
            Some(_) => &[],
            None => &options.matrix_filter,
        },
    };
    let selected = selected_jobs(&run)?;
    let mut schedule = Schedule {
        base: base_contexts(workflow, event, frame),
        filtered: options.job_filter.is_some(),
        states: workflow.jobs.iter().map(|_| JobState::Waiting).collect(),
        outcomes: Vec::new(),
        queue: Vec::new(),
        running: Vec::new(),
        running_per_job: vec![0; workflow.jobs.len()],
        max_jobs: options.max_parallel_jobs.max(1),
        selected,
        cancel,
        run,
    };
    loop {
        let planned_any = schedule.plan_ready();
        let started_any = schedule.start_queued();
        let settled_any = schedule.settle_finished_jobs();
        if schedule.running.is_empty() {
            let waiting = schedule
                .selected
                .iter()
                .any(|i| matches!(schedule.states.get(*i), Some(JobState::Waiting)));
            if !waiting && schedule.queue.is_empty() {
                break;
            }
            if !(planned_any || started_any || settled_any) {
                // Nothing runs and nothing more can be planned: cannot happen with an
                // ordered graph, but stop rather than spin.
                break;
            }
            continue;
        }
        schedule.wait_for_one().await;
    }
    Ok(schedule.result(started))
}

/// The jobs to run, in `needs` order: all of them, or the one `-j` names. Jobs in a cycle
/// or needing an unknown job are reported and left out.
fn selected_jobs(run: &Run<'_>) -> Result<Vec<usize>, RunError> {
    let workflow = run.workflow;
    let ids: Vec<&String> = workflow.jobs.keys().collect();
    if let Some(filter) = &run.options.job_filter {
        let index = ids
            .iter()
            .position(|id| id.eq_ignore_ascii_case(filter))
            .ok_or_else(|| RunError::UnknownJob {
                file: workflow.file.clone(),
                job_id: filter.clone(),
            })?;
        return Ok(vec![index]);
    }
    let order = workflow_needs_order(workflow);
    for index in &order.unordered {
        if let Some(id) = ids.get(*index) {
            emit(
                run.sink,
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
    Ok(order.order)
}

/// The moving parts of one `drive`.
struct Schedule<'a> {
    run: Run<'a>,
    cancel: CancellationToken,
    /// `github`, `vars`, `inputs` for planning.
    base: Object,
    selected: Vec<usize>,
    /// `-j`: the job's needs did not run.
    filtered: bool,
    /// By job index.
    states: Vec<JobState>,
    /// By slot: one per planned instance, `None` until it finishes.
    outcomes: Vec<Option<JobOutcome>>,
    queue: Vec<Queued>,
    running: Vec<JobFuture<'a>>,
    /// By job index: its instances running now (for `max-parallel`).
    running_per_job: Vec<usize>,
    /// The run's own limit on jobs at once.
    max_jobs: usize,
}

impl<'a> Schedule<'a> {
    /// Plans every waiting job whose needs are done: its instances are queued, or recorded
    /// as not run when its `if:` (or the matrix filter) says so. True when one was planned.
    fn plan_ready(&mut self) -> bool {
        let run = self.run;
        let mut planned_any = false;
        for &job_index in &self.selected {
            if !matches!(self.states.get(job_index), Some(JobState::Waiting)) {
                continue;
            }
            let Some((id, job)) = run.workflow.jobs.get_index(job_index) else {
                continue;
            };
            let Some(needs_state) =
                needs_state(run.workflow, job, &self.states, self.filtered, &self.cancel)
            else {
                continue;
            };
            planned_any = true;
            let planned = plan_one(
                run.workflow,
                &self.base,
                id,
                &needs_state,
                run.sink,
                run.matrix_filter,
            );
            let state = match planned {
                Planned::Skipped { instances, result } => {
                    for instance in instances {
                        let key = format!("{}{}", run.key_prefix, instance_key(&instance));
                        let outcome = not_run(&instance, key, result);
                        emit(
                            run.sink,
                            &job_ref(&instance.id, &instance.name, &outcome.key),
                            LogEvent::JobFinished {
                                result,
                                duration: std::time::Duration::ZERO,
                            },
                        );
                        self.outcomes.push(Some(outcome));
                    }
                    JobState::Done {
                        result,
                        outputs: Vec::new(),
                        failed_upstream: needs_state.any_ancestor_failed
                            || result == JobResult::Failure,
                    }
                }
                Planned::Run { instances } => {
                    let contexts = plan_contexts(&self.base, &needs_state);
                    let strategy = strategy_info(job, &contexts, instances.len());
                    let mut slots = Vec::new();
                    for instance in instances {
                        let slot = self.outcomes.len();
                        self.outcomes.push(None);
                        slots.push(slot);
                        self.queue.push(Queued {
                            job_index,
                            slot,
                            instance,
                            needs: needs_state.needs.clone(),
                            strategy,
                        });
                    }
                    // After cancellation only jobs whose `if:` allowed it (`always()`) get
                    // this far; they run with a token of their own.
                    let group = if self.cancel.is_cancelled() {
                        CancellationToken::new()
                    } else {
                        self.cancel.child_token()
                    };
                    JobState::Running {
                        slots,
                        group,
                        max_parallel: strategy.max_parallel.max(1.0) as usize,
                        fail_fast: strategy.fail_fast,
                        upstream_failed: needs_state.any_ancestor_failed,
                    }
                }
            };
            if let Some(slot) = self.states.get_mut(job_index) {
                *slot = state;
            }
        }
        planned_any
    }

    /// Starts queued instances while the run's and each job's `max-parallel` leave room; a
    /// leg whose matrix `fail-fast` already cancelled is recorded as cancelled instead.
    /// True when one was taken off the queue.
    fn start_queued(&mut self) -> bool {
        let run = self.run;
        let mut started_any = false;
        let mut position = 0;
        while position < self.queue.len() && self.running.len() < self.max_jobs {
            let Some(queued) = self.queue.get(position) else {
                break;
            };
            let Some(JobState::Running {
                group,
                max_parallel,
                ..
            }) = self.states.get(queued.job_index)
            else {
                position += 1;
                continue;
            };
            let running_here = self
                .running_per_job
                .get(queued.job_index)
                .copied()
                .unwrap_or(0);
            if running_here >= *max_parallel {
                position += 1;
                continue;
            }
            let group = group.clone();
            let queued = self.queue.remove(position);
            started_any = true;
            let key = format!("{}{}", run.key_prefix, instance_key(&queued.instance));
            if group.is_cancelled() {
                // fail-fast cancelled the matrix before this leg started.
                let outcome = not_run(&queued.instance, key, JobResult::Cancelled);
                emit(
                    run.sink,
                    &job_ref(&queued.instance.id, &queued.instance.name, &outcome.key),
                    LogEvent::JobFinished {
                        result: JobResult::Cancelled,
                        duration: std::time::Duration::ZERO,
                    },
                );
                if let Some(slot) = self.outcomes.get_mut(queued.slot) {
                    *slot = Some(outcome);
                }
                continue;
            }
            if let Some(count) = self.running_per_job.get_mut(queued.job_index) {
                *count += 1;
            }
            self.running.push(Box::pin(async move {
                let request = JobRequest {
                    workflow: run.workflow,
                    event: run.event,
                    instance: &queued.instance,
                    key,
                    needs: &queued.needs,
                    strategy: queued.strategy,
                    options: run.options,
                };
                let outcome =
                    run_instance(&request, run.frame, run.backend, run.sink, &group).await;
                (queued.slot, outcome)
            }));
        }
        started_any
    }

    /// Jobs whose instances have all finished are done, with their legs' combined result and
    /// outputs. True when one was.
    fn settle_finished_jobs(&mut self) -> bool {
        let mut settled_any = false;
        for state in &mut self.states {
            if let JobState::Running {
                slots,
                upstream_failed,
                ..
            } = state
                && slots
                    .iter()
                    .all(|s| self.outcomes.get(*s).is_some_and(Option::is_some))
            {
                let finished: Vec<&JobOutcome> = slots
                    .iter()
                    .filter_map(|s| self.outcomes.get(*s)?.as_ref())
                    .collect();
                let (result, outputs) = aggregate(&finished);
                let failed_upstream = result == JobResult::Failure || *upstream_failed;
                settled_any = true;
                *state = JobState::Done {
                    result,
                    outputs,
                    failed_upstream,
                };
            }
        }
        settled_any
    }

    /// Waits for one running instance to finish and records it; a failed leg of a
    /// `fail-fast` matrix cancels the other legs.
    async fn wait_for_one(&mut self) {
        let (slot, outcome) = next_finished(&mut self.running).await;
        let job_index = job_position(self.run.workflow, &outcome.job_id);
        if let Some(count) = self.running_per_job.get_mut(job_index) {
            *count = count.saturating_sub(1);
        }
        if outcome.result == JobResult::Failure
            && !outcome.continue_on_error
            && let Some(JobState::Running {
                group,
                slots,
                fail_fast: true,
                ..
            }) = self.states.get(job_index)
            && slots.len() > 1
        {
            group.cancel();
        }
        if let Some(entry) = self.outcomes.get_mut(slot) {
            *entry = Some(outcome);
        }
    }

    /// The run's result: failed when a job failed (and may not), cancelled when the run or
    /// a job was, else success.
    fn result(self, started: Instant) -> WorkflowResult {
        let jobs: Vec<JobOutcome> = self.outcomes.into_iter().flatten().collect();
        let result = if jobs
            .iter()
            .any(|j| j.result == JobResult::Failure && !j.continue_on_error)
        {
            JobResult::Failure
        } else if self.cancel.is_cancelled()
            || jobs.iter().any(|j| j.result == JobResult::Cancelled)
        {
            JobResult::Cancelled
        } else {
            JobResult::Success
        };
        WorkflowResult {
            result,
            jobs,
            duration: started.elapsed(),
        }
    }
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
