//! One task from Gitea, run to its reported end: the single-job workflow payload loaded and
//! planned with the task's `needs`, its backend chosen by label, the engine run with the
//! reporter as sink, and the result, outputs and last rows sent.
//!
//! Owns: that sequence and the task-level failures (bad payload, no matching label, runner
//! timeout), which become a failed job with the reason in its log. Must not: poll for tasks or
//! decide concurrency (the poller does).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runnel_config::Label;
use runnel_engine::{JobRequest, JobResult, RunOptions, RunnerInfo, ServerUrls, StrategyInfo};
use runnel_protocol::proto::runner;
use runnel_workflow::{LiteralOrExpr, Workflow};
use tokio_util::sync::CancellationToken;

use crate::context::{TaskContext, needs_state};
use crate::metrics::Metrics;
use crate::reporter::{ReportContext, Reporter};
use crate::spool::TaskSpool;
use runnel_assembly::Assembly;
use runnel_assembly::grants::{CacheService, TaskGrants};
use runnel_engine::RunnerGrants;

/// What every task of this runner shares.
#[derive(Clone)]
pub(crate) struct TaskSettings {
    pub(crate) report: ReportContext,
    /// Where task spool files go; `None`: no spool.
    pub(crate) spool_dir: Option<PathBuf>,
    /// The Gitea instance (recorded in spool files).
    pub(crate) address: String,
    pub(crate) runner_name: String,
    pub(crate) version: String,
    pub(crate) labels: Vec<Label>,
    /// The runner's backends, cache service and base options.
    pub(crate) assembly: Arc<Assembly>,
    pub(crate) envs: BTreeMap<String, String>,
    pub(crate) job_timeout: Duration,
    pub(crate) github_mirror: String,
    /// The runner's own credentials, masked in every job's log ([`runner_credentials`]).
    pub(crate) mask: Vec<String>,
    /// `log.job`: where each task's log is copied.
    pub(crate) job_log: runnel_config::LogJobSection,
}

/// What a job must never see in clear: the runner's token, the cache's secret and S3 keys,
/// and the credential variables of the runner's environment or its `runner.envs`.
pub(crate) fn runner_credentials(
    config: &runnel_config::Config,
    runner_token: &str,
) -> Vec<String> {
    let mut values = runnel_engine::runner_env::credential_values();
    values.push(runner_token.to_owned());
    values.push(config.cache.shared_secret.clone());
    if let Some(s3) = &config.cache.s3 {
        values.push(s3.secret_key.clone());
        values.push(s3.access_key.clone());
    }
    for (name, value) in &config.runner.envs {
        if runnel_engine::runner_env::RUNNER_CREDENTIALS.contains(&name.as_str()) {
            values.push(value.clone());
        }
    }
    values.retain(|value| !value.trim().is_empty());
    values
}

/// Runs `task` and reports it; `cancel` stops the job (shutdown), as does a cancel in Gitea.
pub(crate) async fn run_task(
    settings: Arc<TaskSettings>,
    task: runner::Task,
    cancel: CancellationToken,
) {
    let task_id = task.id;
    settings.report.metrics.job_started();
    let payload =
        String::from_utf8_lossy(task.workflow_payload.as_deref().unwrap_or_default()).into_owned();
    let context = TaskContext::new(task.context.as_ref());
    let workflow_file = format!(".gitea/workflows/{}", context.text("workflow"));
    let loaded = runnel_workflow::load_workflow(&workflow_file, &payload);
    // A payload holds one job; its `needs` name jobs that are not in it, which the loader
    // reports as graph errors. Those are expected here: the task carries the needs' results.
    let problems: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && !is_needs_graph_error(&d.message))
        .map(ToString::to_string)
        .collect();
    let steps = loaded
        .workflow
        .as_ref()
        .and_then(|w| w.jobs.values().next())
        .map_or(0, |job| job.steps.len());
    let job_cancel = cancel.child_token();
    let spool = settings.spool_dir.as_deref().and_then(|dir| {
        TaskSpool::create(dir, task_id, &settings.address)
            .map_err(|error| {
                tracing::error!(task_id, dir = %dir.display(), %error, "cannot create the task's spool file; its rows are kept in memory only");
            })
            .ok()
    });
    let summary_target = settings
        .report
        .summary_uploads
        .as_ref()
        .and_then(|uploads| {
            uploads
                .target(&context, steps)
                .map_err(|reason| {
                    tracing::warn!(
                        task_id,
                        reason,
                        "the job's summary goes to its log instead of Gitea"
                    );
                })
                .ok()
        });
    let copy = crate::job_log::JobLogCopy::create(
        &settings.job_log,
        task_id,
        std::time::SystemTime::now(),
    );
    let reporter = Reporter::start(
        settings.report.clone(),
        task_id,
        steps,
        spool,
        copy,
        job_cancel.clone(),
        summary_target,
    );
    reporter.runner_row(&format!(
        "{} on runner {}: task {task_id}",
        settings.version, settings.runner_name
    ));
    let workflow = match (loaded.workflow, problems.is_empty()) {
        (Some(workflow), true) if workflow.jobs.len() == 1 => workflow,
        (Some(workflow), true) => {
            let message = format!(
                "the task's workflow has {} jobs; exactly one was expected",
                workflow.jobs.len()
            );
            return fail(reporter, &settings.report.metrics, &message).await;
        }
        _ => {
            for problem in &problems {
                reporter.runner_row(problem);
            }
            return fail(
                reporter,
                &settings.report.metrics,
                "the task's workflow payload is not valid",
            )
            .await;
        }
    };
    let (result, outputs) = run_job(
        &settings,
        &task,
        &context,
        &workflow,
        &reporter,
        &job_cancel,
    )
    .await;
    tracing::info!(task_id, result = result.as_str(), "job finished");
    settings.report.metrics.job_finished(result);
    reporter.finish(result, outputs).await;
}

async fn fail(reporter: Reporter, metrics: &Metrics, message: &str) {
    reporter.runner_row(message);
    tracing::warn!(message, "task failed before its job could run");
    metrics.job_finished(JobResult::Failure);
    reporter.finish(JobResult::Failure, Vec::new()).await;
}

fn is_needs_graph_error(message: &str) -> bool {
    message.contains("needs unknown job")
        || message.contains("every job has `needs`")
        || message.contains("forms a cycle")
}

/// Plans and runs the payload's job; returns its result and outputs.
async fn run_job(
    settings: &TaskSettings,
    task: &runner::Task,
    context: &TaskContext,
    workflow: &Workflow,
    reporter: &Reporter,
    job_cancel: &CancellationToken,
) -> (JobResult, Vec<(String, String)>) {
    let Some((job_id, job)) = workflow.jobs.iter().next() else {
        reporter.runner_row("the task's workflow has no job");
        return (JobResult::Failure, Vec::new());
    };
    let event = context.event(&task.vars);
    let listed: Vec<String> = job.needs.iter().map(|n| n.value.clone()).collect();
    let needs = needs_state(&listed, &task.needs);
    let plan = match runnel_plan::plan_job(workflow, job_id, &event, &needs) {
        Ok(plan) => plan,
        Err(error) => {
            reporter.runner_row(&error.to_string());
            return (JobResult::Failure, Vec::new());
        }
    };
    for note in &plan.notes {
        reporter.runner_row(&note.message);
    }
    if !plan.would_run {
        reporter.runner_row("the job's `if` condition is false: skipped");
        return (JobResult::Skipped, Vec::new());
    }
    // Gitea expands the matrix: a payload's job is one leg, so one instance.
    let Some(instance) = plan.instances.first() else {
        reporter.runner_row("the job has no instance to run (an empty matrix?)");
        return (JobResult::Failure, Vec::new());
    };
    // Reusable workflows, two server generations. Gitea <= 1.26 sends the call job itself (no
    // `runs-on`, no steps): the engine expands the call here, and each called job picks its
    // backend by its own `runs-on` when it starts. Gitea >= 1.27 expands calls itself and
    // never sends a call job, only the called jobs: a plain job whose context says
    // `event_name: workflow_call`, with the call's inputs in `event.inputs` (typed again by
    // the payload's `on.workflow_call` declarations) and only the secrets the call passes.
    if job.call.is_some() {
        tracing::info!(
            task_id = task.id,
            "a call job: the called workflow's jobs run inside this task"
        );
    } else if context.text("event_name") == "workflow_call" {
        tracing::info!(
            task_id = task.id,
            "a called job of a reusable workflow Gitea expanded: inputs and secrets come with the task"
        );
    }
    // Each job (a called workflow's jobs too) goes where its own `runs-on` says; a plain job
    // that cannot run here is said before anything starts.
    let backend = settings
        .assembly
        .router()
        .with_labels(settings.labels.clone());
    if job.call.is_none()
        && let Err(message) = backend.check(&instance.runs_on)
    {
        reporter.runner_row(&message);
        return (JobResult::Failure, Vec::new());
    }
    let options = run_options(settings, task, context);
    let strategy = StrategyInfo {
        fail_fast: match job.strategy.as_ref().and_then(|s| s.fail_fast.as_ref()) {
            Some(LiteralOrExpr::Literal(value)) => value.value,
            _ => true,
        },
        max_parallel: instance.job_total as f64,
    };
    let request = JobRequest {
        workflow,
        event: &event,
        instance,
        key: format!("gitea-task-{}", task.id),
        needs: &needs.needs,
        strategy,
        options: &options,
    };
    let sink = reporter.sink();
    // runner.timeout caps the whole job whatever its `timeout-minutes` says.
    let limit = job_cancel.clone();
    let job_timeout = settings.job_timeout;
    let watchdog = tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(job_timeout) => { limit.cancel(); true }
            () = limit.cancelled() => false,
        }
    });
    let outcome = runnel_engine::run_job(&request, &backend, &sink, job_cancel).await;
    watchdog.abort();
    let timed_out = matches!(watchdog.await, Ok(true));
    if timed_out {
        reporter.runner_row(&format!(
            "the job exceeded the runner's timeout of {} (runner.timeout)",
            runnel_config::format_duration(job_timeout)
        ));
        return (JobResult::Failure, outcome.outputs);
    }
    (outcome.result, outcome.outputs)
}

fn run_options(settings: &TaskSettings, task: &runner::Task, context: &TaskContext) -> RunOptions {
    let mut options = settings.assembly.options().clone();
    options.runner = RunnerInfo::this_machine(&settings.runner_name);
    let server_url = context.text("server_url");
    if !server_url.is_empty() {
        options.server = ServerUrls::gitea(&server_url);
    }
    let mut actions_url = context.text("gitea_default_actions_url");
    if actions_url.is_empty() {
        actions_url = "https://github.com".to_owned();
    }
    if !settings.github_mirror.is_empty()
        && actions_url.trim_end_matches('/') == "https://github.com"
    {
        actions_url = settings.github_mirror.clone();
    }
    options.actions_url = actions_url;
    options.secrets = task
        .secrets
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The task token is the job's GITHUB_TOKEN (the peer's order: GITEA_TOKEN, GITHUB_TOKEN,
    // then the context's token).
    let token = ["GITEA_TOKEN", "GITHUB_TOKEN"]
        .iter()
        .find_map(|name| task.secrets.get(*name).filter(|v| !v.is_empty()).cloned())
        .unwrap_or_else(|| context.text("token"));
    if !token.is_empty() {
        options.secrets.insert("GITHUB_TOKEN".to_owned(), token);
    }
    options.debug = ["ACTIONS_STEP_DEBUG", "ACTIONS_RUNNER_DEBUG"]
        .iter()
        .any(|name| {
            task.secrets
                .get(*name)
                .or_else(|| task.vars.get(*name))
                .is_some_and(|v| v == "true")
        });
    options.github_overrides = context.github_overrides();
    options.default_job_timeout = settings.job_timeout;
    options.mask = settings.mask.clone();
    options.env = settings.envs.clone();
    // Gitea offers OIDC (`permissions: id-token: write`) through the task's context; the
    // Gitea runner hands both values to the job, the token as a secret (so it is masked).
    // The URL is Gitea's, so the grant hands it out as the job reaches Gitea (`task_grants`).
    let id_token_url = context.text("actions_id_token_request_url");
    if !id_token_url.is_empty() {
        let id_token = context.text("actions_id_token_request_token");
        options.env.insert(
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_owned(),
            id_token.clone(),
        );
        options
            .secrets
            .insert("ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_owned(), id_token);
    }
    options.grants = Some(task_grants(settings.assembly.cache().cloned(), context));
    options
}

/// One task's grants: Gitea's URLs and runtime token (`gitea_runtime_token`, else the task
/// token of older Gitea versions), plus our cache.
fn task_grants(cache: Option<Arc<CacheService>>, context: &TaskContext) -> Arc<dyn RunnerGrants> {
    let mut token = context.text("gitea_runtime_token");
    if token.is_empty() {
        token = context.text("token");
    }
    Arc::new(
        TaskGrants::new(cache, &context.text("server_url"), &token)
            .with_id_token_url(&context.text("actions_id_token_request_url")),
    )
}
