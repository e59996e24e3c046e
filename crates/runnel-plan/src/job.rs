//! One job of a workflow planned into its instances: the `if:` decision, the matrix legs,
//! each leg's display name, `runs-on` labels and `strategy` numbers.
//!
//! Owns: [`plan_job`], [`JobPlan`], [`JobInstance`] and [`PlanNote`]. Must not: order jobs or
//! match triggers (see `plan`).

use std::sync::Arc;

use runnel_expr::{EvalContext, Host, Object, Template, Value};
use runnel_workflow::{Job, LiteralOrExpr, RunsOn, TemplateString, Workflow};

use crate::contexts::{NeedsState, github_context, inputs_context, needs_context, vars_context};
use crate::event::Event;
use crate::job_if::{Decision, decide};
use crate::matrix::expand_matrix;
use crate::matrix_eval::{MatrixEvalError, evaluate_matrix};
use crate::naming::matrix_job_name;

/// One job instance: a matrix leg, or the job itself when it has no matrix.
#[derive(Debug, Clone)]
pub struct JobInstance {
    /// The job id (`jobs.<id>`), shared by all legs of a matrix.
    pub id: String,
    /// Display name: `name`/id plus the matrix suffix, or the evaluated `name` expression.
    pub name: String,
    /// This leg's matrix values; `None` for a job without a matrix, or when the matrix was
    /// not expanded (see `matrix_deferred` and the plan's notes).
    pub matrix: Option<Object>,
    /// The matrix reads `needs` outputs, unknown until the needed jobs have run.
    pub matrix_deferred: bool,
    /// Direct `needs`, as written.
    pub needs: Vec<String>,
    /// `runs-on` labels after evaluation (empty for reusable-workflow calls).
    pub runs_on: Vec<String>,
    /// Whether the job's `if:` lets it run (the same for every leg).
    pub would_run: bool,
    /// `strategy.job-index`, 0-based.
    pub job_index: usize,
    /// `strategy.job-total`.
    pub job_total: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteSeverity {
    /// Something the reader should know (a deferred matrix, a job that cannot run).
    Info,
    /// GitHub would fail the run or the job here (bad matrix, failing expression, cycle).
    Error,
}

/// A remark about the plan, usually about one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanNote {
    pub severity: NoteSeverity,
    pub job_id: Option<String>,
    pub message: String,
}

/// A job planned for a given state of its dependencies.
#[derive(Debug, Clone)]
pub struct JobPlan {
    pub would_run: bool,
    pub instances: Vec<JobInstance>,
    pub notes: Vec<PlanNote>,
}

/// The job id is not in the workflow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workflow has no job `{job_id}`")]
pub struct UnknownJob {
    pub job_id: String,
}

/// Host for expressions outside `if:` (no status functions, no `hashFiles`).
struct PlanHost;

impl Host for PlanHost {}

/// Plans one job when its needs have finished with the given results and outputs. This is
/// what the engine calls before starting a job; [`crate::plan_workflow`] uses it with
/// assumed results.
pub fn plan_job(
    workflow: &Workflow,
    job_id: &str,
    event: &Event,
    needs: &NeedsState,
) -> Result<JobPlan, UnknownJob> {
    let job = find_job(workflow, job_id)?;
    let base = base_contexts(workflow, event);
    Ok(plan_job_with(&workflow.file, job, &base, needs, true))
}

/// [`plan_job`] with the `github`, `vars` and `inputs` contexts given by the caller: the jobs
/// of a called reusable workflow see their caller's `github` and the call's `inputs`, which
/// no [`Event`] describes.
pub fn plan_job_with_contexts(
    workflow: &Workflow,
    job_id: &str,
    base: &Object,
    needs: &NeedsState,
) -> Result<JobPlan, UnknownJob> {
    let job = find_job(workflow, job_id)?;
    Ok(plan_job_with(&workflow.file, job, base, needs, true))
}

pub(crate) fn find_job<'a>(workflow: &'a Workflow, job_id: &str) -> Result<&'a Job, UnknownJob> {
    workflow
        .jobs
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(job_id))
        .map(|(_, job)| job)
        .ok_or_else(|| UnknownJob {
            job_id: job_id.to_owned(),
        })
}

/// `github`, `vars` and `inputs`: the same for every job of a run.
pub(crate) fn base_contexts(workflow: &Workflow, event: &Event) -> Object {
    let mut contexts = Object::new();
    contexts.insert(
        "github",
        Value::Object(github_context(workflow, event).into()),
    );
    contexts.insert("vars", Value::Object(vars_context(event).into()));
    contexts.insert(
        "inputs",
        Value::Object(inputs_context(workflow, event).into()),
    );
    contexts
}

/// Plans `job` of the workflow in `file` with `base` contexts. `outputs_known` is false at plan
/// time, when needed jobs have not run and a matrix reading their outputs must wait.
pub(crate) fn plan_job_with(
    file: &str,
    job: &Job,
    base: &Object,
    needs: &NeedsState,
    outputs_known: bool,
) -> JobPlan {
    let job_id = job.id.value.clone();
    let mut notes = Vec::new();
    let mut note = |severity: NoteSeverity, message: String| {
        notes.push(PlanNote {
            severity,
            job_id: Some(job_id.clone()),
            message,
        });
    };
    let mut contexts = base.clone();
    contexts.insert("needs", Value::Object(needs_context(&needs.needs).into()));

    let would_run = match decide(job.if_condition.as_ref(), needs, &contexts) {
        Decision::Run => true,
        Decision::Skip => false,
        Decision::Error(message) => {
            note(NoteSeverity::Error, message);
            false
        }
    };
    let needs_ids: Vec<String> = job.needs.iter().map(|n| n.value.clone()).collect();
    let single = |name: String, matrix_deferred: bool, runs_on: Vec<String>| JobInstance {
        id: job.id.value.clone(),
        name,
        matrix: None,
        matrix_deferred,
        needs: needs_ids.clone(),
        runs_on,
        would_run,
        job_index: 0,
        job_total: 1,
    };

    let matrix = job.strategy.as_ref().and_then(|s| s.matrix.as_ref());
    let Some(matrix) = matrix else {
        let leg = Object::new();
        let runs_on = leg_runs_on(job, &contexts, &leg, (0, 1), &mut note);
        let name = leg_name(job, &contexts, &leg, (0, 1), &mut note);
        return JobPlan {
            would_run,
            instances: vec![single(name, false, runs_on)],
            notes,
        };
    };
    // GitHub decides `if:` before expanding the matrix: a skipped matrix job is one instance
    // whose name is not expanded.
    if !would_run {
        return JobPlan {
            would_run,
            instances: vec![single(unexpanded_name(job), false, Vec::new())],
            notes,
        };
    }

    let cx = EvalContext {
        contexts: &contexts,
        host: &PlanHost,
    };
    let legs = match evaluate_matrix(matrix, &cx, outputs_known, &Arc::from(file)) {
        Ok(spec) => expand_matrix(&spec).map_err(|e| e.to_string()),
        Err(MatrixEvalError::NeedsOutputs) => {
            note(
                NoteSeverity::Info,
                "matrix depends on `needs` outputs; it is expanded when the needed jobs have run"
                    .to_owned(),
            );
            let runs_on = leg_runs_on(job, &contexts, &Object::new(), (0, 1), &mut note);
            return JobPlan {
                would_run,
                instances: vec![single(unexpanded_name(job), true, runs_on)],
                notes,
            };
        }
        Err(MatrixEvalError::Invalid(message)) => Err(message),
    };
    let legs = match legs {
        Ok(legs) => legs,
        Err(message) => {
            // GitHub fails the run when a matrix cannot be expanded: the job does not start.
            note(NoteSeverity::Error, format!("strategy.matrix: {message}"));
            let failed = JobInstance {
                would_run: false,
                ..single(unexpanded_name(job), false, Vec::new())
            };
            return JobPlan {
                would_run: false,
                instances: vec![failed],
                notes,
            };
        }
    };

    let total = legs.len();
    let mut instances = Vec::with_capacity(total);
    for (index, leg) in legs.into_iter().enumerate() {
        let runs_on = leg_runs_on(job, &contexts, &leg, (index, total), &mut note);
        let name = leg_name(job, &contexts, &leg, (index, total), &mut note);
        instances.push(JobInstance {
            id: job.id.value.clone(),
            name,
            matrix: Some(leg),
            matrix_deferred: false,
            needs: needs_ids.clone(),
            runs_on,
            would_run,
            job_index: index,
            job_total: total,
        });
    }
    JobPlan {
        would_run,
        instances,
        notes,
    }
}

/// The name shown when the matrix is not expanded: `name` as written (expressions and all,
/// as GitHub shows it), or the id.
fn unexpanded_name(job: &Job) -> String {
    job.name
        .as_ref()
        .map_or_else(|| job.id.value.clone(), |name| name.raw.clone())
}

/// Contexts for keys evaluated per leg: `matrix` and `strategy` added to the base ones.
fn leg_contexts(
    job: &Job,
    contexts: &Object,
    leg: &Object,
    (index, total): (usize, usize),
) -> Object {
    let mut strategy = Object::new();
    let fail_fast = match job.strategy.as_ref().and_then(|s| s.fail_fast.as_ref()) {
        Some(LiteralOrExpr::Literal(value)) => value.value,
        _ => true,
    };
    let max_parallel = match job.strategy.as_ref().and_then(|s| s.max_parallel.as_ref()) {
        Some(LiteralOrExpr::Literal(value)) => value.value,
        _ => total as f64,
    };
    strategy.insert("fail-fast", Value::Bool(fail_fast));
    strategy.insert("job-index", Value::Number(index as f64));
    strategy.insert("job-total", Value::Number(total as f64));
    strategy.insert("max-parallel", Value::Number(max_parallel));
    let mut leg_contexts = contexts.clone();
    leg_contexts.insert("matrix", Value::Object(leg.clone().into()));
    leg_contexts.insert("strategy", Value::Object(strategy.into()));
    leg_contexts
}

/// GitHub: a `name` with an expression is the evaluated string with no suffix; otherwise
/// `name` (or the id) gets the matrix suffix.
fn leg_name(
    job: &Job,
    contexts: &Object,
    leg: &Object,
    position: (usize, usize),
    note: &mut impl FnMut(NoteSeverity, String),
) -> String {
    match &job.name {
        None => matrix_job_name(&job.id.value, leg),
        Some(TemplateString {
            template: Template::Literal(text),
            ..
        }) => matrix_job_name(text, leg),
        Some(name) => {
            let cx_object = leg_contexts(job, contexts, leg, position);
            let cx = EvalContext {
                contexts: &cx_object,
                host: &PlanHost,
            };
            match name.template.evaluate(&cx) {
                Ok(value) => value.to_display_string(),
                Err(error) => {
                    note(NoteSeverity::Error, format!("name `{}`: {error}", name.raw));
                    name.raw.clone()
                }
            }
        }
    }
}

fn leg_runs_on(
    job: &Job,
    contexts: &Object,
    leg: &Object,
    position: (usize, usize),
    note: &mut impl FnMut(NoteSeverity, String),
) -> Vec<String> {
    let Some(runs_on) = &job.runs_on else {
        return Vec::new();
    };
    let cx_object = leg_contexts(job, contexts, leg, position);
    let cx = EvalContext {
        contexts: &cx_object,
        host: &PlanHost,
    };
    let templates: Vec<&TemplateString> = match runs_on {
        RunsOn::Labels(labels, _) => labels.iter().collect(),
        RunsOn::Group { labels, .. } => labels.iter().collect(),
        RunsOn::Expr(template) => vec![template],
    };
    let mut labels = Vec::new();
    for template in templates {
        match template.template.evaluate(&cx) {
            Ok(Value::Array(items)) => labels.extend(items.iter().map(Value::to_display_string)),
            Ok(value) => labels.push(value.to_display_string()),
            Err(error) => note(
                NoteSeverity::Error,
                format!("runs-on `{}`: {error}", template.raw),
            ),
        }
    }
    labels
}
