//! One job instance from setup to result: evaluate the job's keys, prepare the environment,
//! run the steps in order with GitHub's status rules, evaluate `outputs`, tear down.
//!
//! Owns: [`JobRequest`], [`run_job`], the job's running state (env, `PATH` additions, the
//! `steps` context, the job status) and the job timeout. One step's execution lives in `step`.
//! Must not: order jobs (the driver does) or know what backend it runs on.

mod action;
mod files;
mod setup;
mod step;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use indexmap::IndexMap;
use runnel_expr::{EvalContext, Host, JobStatus, Object, Template, Value};
use runnel_plan::{Event, JobInstance, JobResult, NeedOutcome};
use runnel_workflow::{LiteralOrExpr, TemplateMap, TemplateString, Workflow};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backend::{Backend, JobEnvironment};
use crate::contexts::{self, StrategyInfo};
use crate::hash_files::hash_files;
use crate::options::{JobOutcome, RunOptions, StepSummary};
use crate::output::Masker;
use crate::reusable::{self, CallFrame};
use crate::sink::{JobRef, LogEvent, LogRecord, LogSink, RunnerLevel, StepRef};

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

/// Runs one job instance and reports it to `sink`. Never fails: problems become a failed
/// job with the reason logged. A job that calls a reusable workflow (`uses:`) runs the
/// called workflow's jobs here, in `needs` order, on the same backend.
pub async fn run_job(
    request: &JobRequest<'_>,
    backend: &dyn Backend,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
) -> JobOutcome {
    run_job_in(request, None, backend, sink, cancel).await
}

/// [`run_job`] for a job of the workflow `frame` calls (`None`: a top-level workflow).
pub(crate) async fn run_job_in(
    request: &JobRequest<'_>,
    frame: Option<&CallFrame>,
    backend: &dyn Backend,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
) -> JobOutcome {
    if request
        .workflow
        .jobs
        .iter()
        .any(|(id, job)| id.eq_ignore_ascii_case(&request.instance.id) && job.call.is_some())
    {
        return reusable::run_call(request, frame, backend, sink, cancel).await;
    }
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
    let mut job = JobState {
        request,
        sink,
        job_ref,
        masker,
        contexts: contexts::job_contexts(
            request.workflow,
            request.event,
            request.instance,
            request.needs,
            request.strategy,
            request.options,
            frame,
        ),
        env: IndexMap::new(),
        path_entries: Vec::new(),
        steps: Object::new(),
        status: JobStatus::Success,
        timed_out: false,
        hash_root: request.options.workspace_source.clone(),
        step_summaries: Vec::new(),
        pending_outputs: Vec::new(),
        file_counter: 0,
        frames: Vec::new(),
        actions: action::JobActions::default(),
    };
    job.emit(None, LogEvent::JobStarted);
    let span = tracing::info_span!("job", job_key = %request.key);
    let (continue_on_error, outputs) =
        match job.prepare_and_run(backend, cancel).instrument(span).await {
            Ok(done) => done,
            Err(message) => {
                job.runner(None, RunnerLevel::Error, &message);
                job.status = JobStatus::Failure;
                (false, Vec::new())
            }
        };
    let result = match job.status {
        JobStatus::Success => JobResult::Success,
        JobStatus::Failure => JobResult::Failure,
        JobStatus::Cancelled if job.timed_out => JobResult::Failure,
        JobStatus::Cancelled => JobResult::Cancelled,
    };
    let duration = started.elapsed();
    job.emit(None, LogEvent::JobFinished { result, duration });
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

/// The state of a running job that steps read and update.
pub(crate) struct JobState<'a> {
    request: &'a JobRequest<'a>,
    sink: &'a dyn LogSink,
    job_ref: JobRef,
    masker: Masker,
    /// `github`, `vars`, `inputs`, `secrets`, `needs`, `matrix`, `strategy`, and once the
    /// environment exists `runner` and `job`.
    contexts: Object,
    /// Workflow and job `env`, then `GITHUB_ENV` writes, in order.
    env: IndexMap<String, String>,
    /// `GITHUB_PATH` additions, most recent first.
    path_entries: Vec<String>,
    /// The `steps` context.
    steps: Object,
    status: JobStatus,
    /// The job's `timeout-minutes` ran out (the status is then `Cancelled`, the result
    /// `failure`).
    timed_out: bool,
    hash_root: Option<PathBuf>,
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

/// `event` with every text but output lines masked.
fn mask_event(masker: &Masker, event: LogEvent) -> LogEvent {
    if masker.is_empty() {
        return event;
    }
    let mask = |text: String| match masker.mask(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(masked) => masked,
    };
    match event {
        LogEvent::GroupStart { title } => LogEvent::GroupStart { title: mask(title) },
        LogEvent::Debug { text } => LogEvent::Debug { text: mask(text) },
        LogEvent::Runner { level, text } => LogEvent::Runner {
            level,
            text: mask(text),
        },
        LogEvent::StepSummary { markdown } => LogEvent::StepSummary {
            markdown: mask(markdown),
        },
        LogEvent::Annotation(mut annotation) => {
            annotation.message = mask(annotation.message);
            annotation.title = annotation.title.map(mask);
            annotation.file = annotation.file.map(mask);
            LogEvent::Annotation(annotation)
        }
        other => other,
    }
}

/// Answers the status functions and `hashFiles` for step-level expressions.
pub(crate) struct StepHost<'a> {
    status: JobStatus,
    hash_root: Option<&'a std::path::Path>,
}

impl Host for StepHost<'_> {
    fn job_status(&self) -> JobStatus {
        self.status
    }

    fn hash_files(&self, follow_symlinks: bool, patterns: &[String]) -> Result<String, String> {
        match self.hash_root {
            Some(root) => hash_files(root, follow_symlinks, patterns),
            None => Err(
                "hashFiles needs the job's workspace on this machine, and this job's \
                 environment keeps it elsewhere"
                    .to_owned(),
            ),
        }
    }
}

impl<'a> JobState<'a> {
    /// Sends a record to the sink. Every text in it passes the masker here — the step's
    /// name, group titles, annotations, runner messages — except output lines, which the
    /// output pipeline has masked already (they are most of the volume).
    fn emit(&self, step: Option<&StepRef>, event: LogEvent) {
        let step = step.map(|step| StepRef {
            index: step.index,
            name: self.masker.mask(&step.name).into_owned(),
        });
        self.sink.record(LogRecord {
            job: self.job_ref.clone(),
            step,
            time: SystemTime::now(),
            event: mask_event(&self.masker, event),
        });
    }

    /// A message of the runner itself, masked like step output.
    fn runner(&self, step: Option<&StepRef>, level: RunnerLevel, text: &str) {
        let text = self.masker.mask(text).into_owned();
        self.emit(step, LogEvent::Runner { level, text });
    }

    fn host(&self) -> StepHost<'_> {
        StepHost {
            status: self.status,
            hash_root: self.hash_root.as_deref(),
        }
    }

    /// Evaluates `template` with `contexts`; errors name the key and its raw text.
    fn evaluate(
        &self,
        contexts: &Object,
        key: &str,
        template: &TemplateString,
    ) -> Result<Value, String> {
        let host = self.host();
        let cx = EvalContext {
            contexts,
            host: &host,
        };
        template
            .template
            .evaluate(&cx)
            .map_err(|error| format!("{key} `{}`: {error}", template.raw))
    }

    /// Evaluates an `env:`-like map, whose keys may be expressions or `${{ insert }}`
    /// (`runnel_workflow::TemplateMap::evaluate`), with `contexts`; values as strings.
    fn evaluate_map(
        &self,
        contexts: &Object,
        map: &TemplateMap,
    ) -> Result<IndexMap<String, String>, String> {
        let host = self.host();
        let cx = EvalContext {
            contexts,
            host: &host,
        };
        map.evaluate(&cx).map_err(|error| error.to_string())
    }

    fn evaluate_string(
        &self,
        contexts: &Object,
        key: &str,
        template: &TemplateString,
    ) -> Result<String, String> {
        self.evaluate(contexts, key, template)
            .map(|value| value.to_display_string())
    }

    fn evaluate_bool(
        &self,
        contexts: &Object,
        key: &str,
        value: Option<&LiteralOrExpr<bool>>,
    ) -> Result<bool, String> {
        match value {
            None => Ok(false),
            Some(LiteralOrExpr::Literal(literal)) => Ok(literal.value),
            Some(LiteralOrExpr::Expr(template)) => self
                .evaluate(contexts, key, template)
                .map(|v| v.is_truthy()),
        }
    }

    /// `timeout-minutes` as a duration; `None` when absent.
    fn evaluate_minutes(
        &self,
        contexts: &Object,
        key: &str,
        value: Option<&LiteralOrExpr<f64>>,
    ) -> Result<Option<Duration>, String> {
        let minutes = match value {
            None => return Ok(None),
            Some(LiteralOrExpr::Literal(literal)) => literal.value,
            Some(LiteralOrExpr::Expr(template)) => match self.evaluate(contexts, key, template)? {
                Value::Number(n) => n,
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{key} `{}`: `{s}` is not a number", template.raw))?,
                other => {
                    return Err(format!(
                        "{key} `{}`: expected a number, got {}",
                        template.raw,
                        other.kind_name()
                    ));
                }
            },
        };
        if !minutes.is_finite() || minutes <= 0.0 {
            return Err(format!(
                "{key}: {minutes} is not a positive number of minutes"
            ));
        }
        Ok(Some(Duration::from_secs_f64(minutes * 60.0)))
    }

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

    /// The contexts for step-level keys: the job's plus `env`, `steps` and a fresh `job`.
    fn step_contexts(
        &self,
        env: &IndexMap<String, String>,
        environment: &dyn JobEnvironment,
    ) -> Object {
        let mut contexts = self.contexts.clone();
        contexts::set_env(&mut contexts, env);
        contexts.insert("steps", Value::Object(self.steps.clone().into()));
        let status = match self.status {
            JobStatus::Success => "success",
            JobStatus::Failure => "failure",
            JobStatus::Cancelled => "cancelled",
        };
        contexts.insert(
            "job",
            Value::Object(contexts::job_context(environment.info(), status).into()),
        );
        contexts
    }

    /// Prepares the environment, runs the steps, evaluates outputs and tears down.
    /// Returns the job's `continue-on-error` and its outputs.
    async fn prepare_and_run(
        &mut self,
        backend: &dyn Backend,
        cancel: &CancellationToken,
    ) -> Result<(bool, Vec<(String, String)>), String> {
        let job = self.job_model()?;
        let contexts = self.contexts.clone();
        let continue_on_error = self.evaluate_bool(
            &contexts,
            "continue-on-error",
            job.continue_on_error.as_ref(),
        )?;
        let timeout = self
            .evaluate_minutes(&contexts, "timeout-minutes", job.timeout_minutes.as_ref())?
            .unwrap_or(self.request.options.default_job_timeout);
        let spec = setup::job_spec(self, job)?;
        let environment = self
            .prepare_logged(backend, &spec, cancel)
            .await
            .map_err(|error| format!("preparing the job environment failed: {error}"))?;
        // The runner's variables for every process (`runner.envs`, `--env`).
        let environment = if self.request.options.env.is_empty() {
            environment
        } else {
            crate::backend::EnvironmentLayer {
                env: self.request.options.env.clone(),
                ..crate::backend::EnvironmentLayer::default()
            }
            .wrap(environment)
        };
        let environment = setup::attach_services(self, environment, timeout).await;
        // `hashFiles` reads the workspace the steps see (a job's copy, a job directory), not
        // the tree the run started from, wherever the environment has it on this machine.
        if let Some(workspace) = environment.workspace_on_host() {
            self.hash_root = Some(workspace);
        }
        contexts::add_environment(
            &mut self.contexts,
            environment.paths(),
            environment.info(),
            self.request.options,
        );
        // Workflow and job `env` may use what only the environment knows
        // (`${{ github.workspace }}`, `runner.temp`): evaluated once it exists.
        let ready = match self.workflow_and_job_env() {
            Ok(env) => {
                self.env = env;
                setup::write_event_file(self, environment.as_ref()).await
            }
            Err(message) => Err(message),
        };
        let outputs = match ready {
            Ok(()) => {
                self.run_steps(environment.as_ref(), cancel, timeout).await;
                self.evaluate_outputs(environment.as_ref())
            }
            Err(message) => {
                self.runner(None, RunnerLevel::Error, &message);
                self.status = JobStatus::Failure;
                Vec::new()
            }
        };
        if let Err(error) = environment.teardown().await {
            self.runner(
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
                Some(line) = lines.recv() => self.runner(None, RunnerLevel::Info, &line),
            }
        };
        while let Ok(line) = lines.try_recv() {
            self.runner(None, RunnerLevel::Info, &line);
        }
        result
    }

    fn job_model(&self) -> Result<&'a runnel_workflow::Job, String> {
        let id = &self.request.instance.id;
        self.request
            .workflow
            .jobs
            .iter()
            .find(|(job_id, _)| job_id.eq_ignore_ascii_case(id))
            .map(|(_, job)| job)
            .ok_or_else(|| format!("workflow has no job `{id}`"))
    }

    /// Workflow `env`, then job `env` (later wins), each value evaluated in order.
    fn workflow_and_job_env(&self) -> Result<IndexMap<String, String>, String> {
        let job = self.job_model()?;
        let mut env = self.evaluate_map(&self.contexts, &self.request.workflow.env)?;
        env.extend(self.evaluate_map(&self.contexts, &job.env)?);
        Ok(env)
    }

    async fn run_steps(
        &mut self,
        environment: &dyn JobEnvironment,
        cancel: &CancellationToken,
        timeout: Duration,
    ) {
        let job = match self.job_model() {
            Ok(job) => job,
            Err(message) => {
                self.runner(None, RunnerLevel::Error, &message);
                self.status = JobStatus::Failure;
                return;
            }
        };
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
            if self.status != JobStatus::Cancelled {
                if cancel.is_cancelled() {
                    self.status = JobStatus::Cancelled;
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
        self.status = JobStatus::Cancelled;
        self.runner(
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
        let Ok(job) = self.job_model() else {
            return Vec::new();
        };
        let contexts = self.step_contexts(&self.env, environment);
        let mut outputs = Vec::new();
        for (name, template) in &job.outputs {
            match self.evaluate_string(&contexts, &format!("outputs.{name}"), template) {
                Ok(value) if self.masker.mask(&value) != value => self.runner(
                    None,
                    RunnerLevel::Warning,
                    &format!("Skip output '{name}' since it may contain secret."),
                ),
                Ok(value) => outputs.push((name.clone(), value)),
                Err(message) => self.runner(None, RunnerLevel::Warning, &message),
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
