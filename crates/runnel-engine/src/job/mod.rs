//! One job instance from setup to result: evaluate the job's keys, prepare the environment,
//! run the steps in order with GitHub's status rules, evaluate `outputs`, tear down.
//!
//! Owns: [`JobRequest`], [`run`], [`JobState`] (env, `PATH` additions, the running
//! composite frames and fetched actions, with its log in `log` and what expressions see in
//! `expr`) and the job timeout. One step's execution lives in `step`.
//! Must not: order jobs or run call jobs (the driver does), or know what backend it runs on.

mod action;
mod error;
mod exec;
mod expr;
mod files;
mod log;
mod script;
mod setup;
mod step;

use std::time::{Duration, Instant};

use indexmap::IndexMap;
use runnel_expr::{JobStatus, Object, Template, Value};
use runnel_plan::{Event, JobInstance, JobResult, NeedOutcome};
use runnel_workflow::Workflow;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backend::{Backend, JobEnvironment};
use crate::call_frame::CallFrame;
use crate::contexts::{self, StrategyInfo};
use crate::options::{JobOutcome, RunOptions, StepSummary};
use crate::output::Masker;
use crate::sink::{JobRef, LogEvent, LogSink, RunnerLevel};
use error::{ExprError, JobError};
use expr::ExpressionState;
use log::JobLog;

/// Everything needed to run one job instance.
#[derive(Debug, Clone)]
pub struct JobRequest<'a> {
    pub workflow: &'a Workflow,
    pub event: &'a Event,
    /// The planned instance (a matrix leg or the job itself).
    pub instance: &'a JobInstance,
    /// Unique key of the instance within the run (`test-1`); names the environment.
    pub key: String,
    /// Results and outputs of the direct `needs`.
    pub needs: &'a [NeedOutcome],
    /// `strategy.fail-fast` and `max-parallel` as evaluated for this job.
    pub strategy: StrategyInfo,
    pub options: &'a RunOptions,
}

/// Runs one job instance that has steps and reports it to `sink`, for a job of the workflow
/// `frame` calls (`None`: a top-level workflow). Never fails: problems become a failed job
/// with the reason logged. Call jobs never come here: the driver runs them as sub-plans.
pub(crate) async fn run(
    request: &JobRequest<'_>,
    frame: Option<&CallFrame>,
    backend: &dyn Backend,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
) -> JobOutcome {
    let started = Instant::now();
    let job_ref = JobRef {
        job_id: request.instance.id.clone(),
        name: request.instance.name.clone(),
        key: request.key.clone(),
    };
    let masker = Masker::new();
    for value in request.options.secrets.values() {
        masker.add(value);
    }
    for value in &request.options.mask {
        masker.add(value);
    }
    for value in frame.map_or(&[][..], |frame| frame.mask.as_slice()) {
        masker.add(value);
    }
    let log = JobLog::new(sink, job_ref, masker);
    log.emit(None, LogEvent::JobStarted);
    let id = &request.instance.id;
    let Some(job) = find_job(request.workflow, id) else {
        log.runner(
            None,
            RunnerLevel::Error,
            &format!("workflow has no job `{id}`"),
        );
        let result = JobResult::Failure;
        let duration = started.elapsed();
        log.emit(None, LogEvent::JobFinished { result, duration });
        return JobOutcome {
            job_id: request.instance.id.clone(),
            name: request.instance.name.clone(),
            key: request.key.clone(),
            result,
            continue_on_error: false,
            outputs: Vec::new(),
            duration,
            steps: Vec::new(),
            called: Vec::new(),
        };
    };
    let contexts = contexts::job_contexts(
        request.workflow,
        request.event,
        request.instance,
        request.needs,
        request.strategy,
        request.options,
        frame,
    );
    let mut job = JobState {
        request,
        job,
        log,
        expressions: ExpressionState::new(contexts, request.options.workspace_source.clone()),
        env: IndexMap::new(),
        path_entries: Vec::new(),
        timed_out: false,
        environment_lost: false,
        step_summaries: Vec::new(),
        pending_outputs: Vec::new(),
        file_counter: 0,
        frames: Vec::new(),
        actions: action::JobActions::default(),
    };
    let span = tracing::info_span!("job", job_key = %request.key);
    let (continue_on_error, outputs) =
        match job.prepare_and_run(backend, cancel).instrument(span).await {
            Ok(done) => done,
            Err(error) => {
                job.log.runner(None, RunnerLevel::Error, &error.to_string());
                job.expressions.status = JobStatus::Failure;
                (false, Vec::new())
            }
        };
    let result = match job.expressions.status {
        JobStatus::Success => JobResult::Success,
        JobStatus::Failure => JobResult::Failure,
        JobStatus::Cancelled if job.timed_out => JobResult::Failure,
        JobStatus::Cancelled => JobResult::Cancelled,
    };
    let duration = started.elapsed();
    job.log
        .emit(None, LogEvent::JobFinished { result, duration });
    JobOutcome {
        job_id: request.instance.id.clone(),
        name: request.instance.name.clone(),
        key: request.key.clone(),
        result,
        continue_on_error,
        outputs,
        duration,
        steps: job.step_summaries,
        called: Vec::new(),
    }
}

/// The job `id` names in `workflow` (job ids are matched ignoring case).
pub(crate) fn find_job<'w>(workflow: &'w Workflow, id: &str) -> Option<&'w runnel_workflow::Job> {
    workflow
        .jobs
        .iter()
        .find(|(job_id, _)| job_id.eq_ignore_ascii_case(id))
        .map(|(_, job)| job)
}

/// The state of a running job that steps read and update.
pub(crate) struct JobState<'a> {
    request: &'a JobRequest<'a>,
    /// The job's model in the workflow.
    job: &'a runnel_workflow::Job,
    log: JobLog<'a>,
    expressions: ExpressionState,
    /// Workflow and job `env`, then `GITHUB_ENV` writes, in order.
    env: IndexMap<String, String>,
    /// `GITHUB_PATH` additions, most recent first.
    path_entries: Vec<String>,
    /// The job's `timeout-minutes` ran out (the status is then `Cancelled`, the result
    /// `failure`).
    timed_out: bool,
    /// The environment is gone ([`crate::backend::BackendError::Lost`]): every later step and
    /// post step is skipped.
    environment_lost: bool,
    step_summaries: Vec<StepSummary>,
    /// Outputs of the step that is finishing, for `steps.<id>.outputs`.
    pending_outputs: Vec<(String, String)>,
    /// Makes file command and script names unique within the job.
    file_counter: usize,
    /// The composite actions being run, innermost last; empty for the job's own steps.
    frames: Vec<action::CompositeFrame>,
    /// Repository actions fetched for this job, `pre` state and `post` hooks to run.
    actions: action::JobActions,
}

impl<'a> JobState<'a> {
    /// The env a step starts from: the job's (with `GITHUB_ENV` writes), and inside a
    /// composite action the env of the step that called it on top.
    fn base_env(&self) -> IndexMap<String, String> {
        let mut env = self.env.clone();
        if let Some(frame) = self.frames.last() {
            for (name, value) in &frame.env {
                env.insert(name.clone(), value.clone());
            }
        }
        env
    }

    /// Inside a composite action: its `inputs` and `github.action_*` replace the job's.
    fn apply_frame(&self, contexts: &mut Object) {
        if let Some(frame) = self.frames.last() {
            frame.apply(contexts);
        }
    }

    /// Prepares the environment, runs the steps, evaluates outputs and tears down.
    /// Returns the job's `continue-on-error` and its outputs.
    async fn prepare_and_run(
        &mut self,
        backend: &dyn Backend,
        cancel: &CancellationToken,
    ) -> Result<(bool, Vec<(String, String)>), JobError> {
        let job = self.job;
        let contexts = self.expressions.contexts.clone();
        let continue_on_error = self.expressions.evaluate_bool(
            &contexts,
            "continue-on-error",
            job.continue_on_error.as_ref(),
        )?;
        let timeout = self
            .expressions
            .evaluate_minutes(&contexts, "timeout-minutes", job.timeout_minutes.as_ref())?
            .unwrap_or(self.request.options.default_job_timeout);
        let spec = setup::job_spec(self, job)?;
        let environment = self
            .prepare_logged(backend, &spec, cancel)
            .await
            .map_err(JobError::Prepare)?;
        // The runner's variables for every process: `ImageOS` (as the Gitea runner derives
        // it), then `runner.envs` and `--env`, which may replace it.
        let mut env = std::collections::BTreeMap::new();
        if let Some(os) = crate::image_os::image_os(
            environment.info().image.as_deref(),
            &self.request.instance.runs_on,
        ) {
            env.insert("ImageOS".to_owned(), os);
        }
        env.extend(self.request.options.env.clone());
        let environment = if env.is_empty() {
            environment
        } else {
            crate::backend::EnvironmentLayer {
                env,
                ..crate::backend::EnvironmentLayer::default()
            }
            .wrap(environment)
        };
        let environment = setup::attach_grants(self, environment, timeout).await;
        // `hashFiles` reads the workspace the steps see (a job's copy, a job directory), not
        // the tree the run started from, wherever the environment has it on this machine.
        if let Some(workspace) = environment.workspace_on_host() {
            self.expressions.hash_root = Some(workspace);
        } else if let Some(remote) = environment.remote_workspace() {
            // The pod's files, not the tree they were copied from: steps change them.
            self.expressions.hash_root = None;
            self.expressions.hash_remote = Some(remote);
        }
        contexts::add_environment(
            &mut self.expressions.contexts,
            environment.as_ref(),
            self.request.options,
        );
        // Workflow and job `env` may use what only the environment knows
        // (`${{ github.workspace }}`, `runner.temp`): evaluated once it exists.
        let ready = match self.workflow_and_job_env() {
            Ok(env) => {
                self.env = env;
                setup::write_event_file(self, environment.as_ref()).await
            }
            Err(error) => Err(JobError::from(error)),
        };
        let outputs = match ready {
            Ok(()) => {
                self.run_steps(environment.as_ref(), cancel, timeout).await;
                self.evaluate_outputs(environment.as_ref())
            }
            Err(error) => {
                self.log
                    .runner(None, RunnerLevel::Error, &error.to_string());
                self.expressions.status = JobStatus::Failure;
                Vec::new()
            }
        };
        if let Err(error) = environment.teardown().await {
            self.log.runner(
                None,
                RunnerLevel::Warning,
                &format!("cleaning up the job environment failed: {error}"),
            );
        }
        Ok((continue_on_error, outputs))
    }

    /// `backend.prepare`, with the lines it writes through `backend::setup_log` (image pulls)
    /// shown in the job's log as they come.
    async fn prepare_logged(
        &self,
        backend: &dyn Backend,
        spec: &crate::backend::JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, crate::backend::BackendError> {
        let (log, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let prepared = crate::backend::with_setup_log(log, backend.prepare(spec, cancel));
        tokio::pin!(prepared);
        let result = loop {
            tokio::select! {
                result = &mut prepared => break result,
                Some(line) = lines.recv() => self.log.runner(None, RunnerLevel::Info, &line),
            }
        };
        while let Ok(line) = lines.try_recv() {
            self.log.runner(None, RunnerLevel::Info, &line);
        }
        result
    }

    /// Workflow `env`, then job `env` (later wins), each value evaluated in order.
    fn workflow_and_job_env(&self) -> Result<IndexMap<String, String>, ExprError> {
        let job = self.job;
        let contexts = &self.expressions.contexts;
        let mut env = self
            .expressions
            .evaluate_map(contexts, &self.request.workflow.env)?;
        env.extend(self.expressions.evaluate_map(contexts, &job.env)?);
        Ok(env)
    }

    async fn run_steps(
        &mut self,
        environment: &dyn JobEnvironment,
        cancel: &CancellationToken,
        timeout: Duration,
    ) {
        let job = self.job;
        let deadline = Instant::now() + timeout;
        let limits = step::Limits {
            cancel,
            deadline,
            job_timeout: timeout,
        };
        // As "Set up job" on GitHub: repository actions are fetched and `pre` hooks run
        // before the first step; a fetch that fails fails the job here.
        if !self.prepare_actions(environment, &job.steps, &limits).await {
            return;
        }
        let mut unnamed_runs = 0usize;
        for step in &job.steps {
            if self.expressions.status != JobStatus::Cancelled {
                if cancel.is_cancelled() {
                    self.expressions.status = JobStatus::Cancelled;
                } else if Instant::now() >= deadline {
                    self.job_timed_out(timeout);
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
            let span = tracing::info_span!("step", index = step.index);
            self.run_step(environment, step, &action, &limits)
                .instrument(span)
                .await;
        }
        self.run_post_hooks(environment, &limits).await;
    }

    fn job_timed_out(&mut self, timeout: Duration) {
        self.timed_out = true;
        self.expressions.status = JobStatus::Cancelled;
        self.log.runner(
            None,
            RunnerLevel::Error,
            &format!(
                "The job has exceeded the maximum execution time of {} minutes.",
                format_minutes(timeout)
            ),
        );
    }

    /// `jobs.<id>.outputs`, evaluated after the steps. Values that contain a secret are
    /// dropped, as GitHub does.
    fn evaluate_outputs(&self, environment: &dyn JobEnvironment) -> Vec<(String, String)> {
        let job = self.job;
        let contexts = self.expressions.step_contexts(&self.env, environment);
        let mut outputs = Vec::new();
        for (name, template) in &job.outputs {
            match self
                .expressions
                .evaluate_string(&contexts, &format!("outputs.{name}"), template)
            {
                Ok(value) if self.log.masker.mask(&value) != value => self.log.runner(
                    None,
                    RunnerLevel::Warning,
                    &format!("Skip output '{name}' since it may contain secret."),
                ),
                Ok(value) => outputs.push((name.clone(), value)),
                Err(error) => self
                    .log
                    .runner(None, RunnerLevel::Warning, &error.to_string()),
            }
        }
        outputs
    }
}

/// `0.05` → `0.05`, `6` → `6`: minutes as GitHub prints them.
pub(crate) fn format_minutes(duration: Duration) -> String {
    Value::Number(duration.as_secs_f64() / 60.0).to_display_string()
}

/// A `Template` that is plain text needs no contexts: used for display names.
pub(crate) fn literal_text(template: &Template) -> Option<&str> {
    match template {
        Template::Literal(text) => Some(text),
        _ => None,
    }
}
