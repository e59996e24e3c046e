//! A whole workflow planned for an event: is it triggered, and which job instances follow in
//! `needs` order, each with whether it would run.
//!
//! Owns: [`plan_workflow`], [`WorkflowPlan`], and the bridge from the workflow model's `on:`
//! to [`Trigger`]. Must not: run anything.

use runnel_expr::{EvalContext, Host};
use runnel_workflow::{EventTrigger, PatternFilter, Workflow};

use crate::contexts::{JobResult, NeedOutcome, NeedsState};
use crate::event::Event;
use crate::graph::workflow_needs_order;
use crate::job::{JobInstance, NoteSeverity, PlanNote, base_contexts, plan_job_with};
use crate::trigger::{NotTriggered, Trigger, trigger_matches};

/// What running a workflow for an event would do.
#[derive(Debug, Clone)]
pub struct WorkflowPlan {
    /// The file name the caller passed.
    pub file: String,
    /// `name:`, or the file name when the workflow has none (as GitHub shows it).
    pub name: String,
    /// `run-name:` evaluated with `github`, `inputs` and `vars`, when the workflow has one.
    pub run_name: Option<String>,
    /// Whether the event triggers the workflow.
    pub triggered: bool,
    /// Why not, when `triggered` is false.
    pub not_triggered: Option<NotTriggered>,
    /// Job instances in `needs` order. Jobs are planned even when the workflow is not
    /// triggered (so `runnel run --job` can run one anyway); `would_run` then says what
    /// would happen if it were.
    pub jobs: Vec<JobInstance>,
    pub notes: Vec<PlanNote>,
}

struct PlanHost;

impl Host for PlanHost {}

/// Converts one `on.<event>` entry of the model into the filter form [`trigger_matches`]
/// takes. `crons` comes from `on.schedule`.
pub fn trigger_from_model(event: &EventTrigger, crons: &[String]) -> Trigger {
    let patterns = |filter: &PatternFilter| {
        filter
            .patterns
            .iter()
            .map(|p| p.value.clone())
            .collect::<Vec<_>>()
    };
    let split = |filter: Option<&PatternFilter>| match filter {
        Some(f) if f.ignore => (None, Some(patterns(f))),
        Some(f) => (Some(patterns(f)), None),
        None => (None, None),
    };
    let (branches, branches_ignore) = split(event.branches.as_ref());
    let (tags, tags_ignore) = split(event.tags.as_ref());
    let (paths, paths_ignore) = split(event.paths.as_ref());
    Trigger {
        event: event.name.value.clone(),
        types: event
            .types
            .as_ref()
            .map(|types| types.iter().map(|t| t.value.clone()).collect()),
        branches,
        branches_ignore,
        tags,
        tags_ignore,
        paths,
        paths_ignore,
        crons: if event.name.value == "schedule" {
            crons.to_vec()
        } else {
            Vec::new()
        },
    }
}

/// Whether `workflow` is triggered by `event`.
pub fn workflow_triggered(workflow: &Workflow, event: &Event) -> Result<(), NotTriggered> {
    let Some(entry) = workflow.on.events.get(event.name.as_str()) else {
        return Err(NotTriggered::EventNotListed {
            event: event.name.clone(),
        });
    };
    let crons: Vec<String> = workflow
        .on
        .schedule
        .iter()
        .map(|c| c.value.clone())
        .collect();
    trigger_matches(&trigger_from_model(entry, &crons), event)
}

/// Plans `workflow` for `event`. Needed jobs are assumed to succeed when they would run and
/// to be skipped when the plan skips them, so skips cascade as they would on GitHub and
/// `always()` jobs after a skipped job still run.
pub fn plan_workflow(file: &str, workflow: &Workflow, event: &Event) -> WorkflowPlan {
    let not_triggered = workflow_triggered(workflow, event).err();
    let base = base_contexts(workflow, event);
    let mut notes = Vec::new();

    let run_name = workflow.run_name.as_ref().and_then(|template| {
        let cx = EvalContext {
            contexts: &base,
            host: &PlanHost,
        };
        match template.template.evaluate(&cx) {
            Ok(value) => Some(value.to_display_string()),
            Err(error) => {
                notes.push(PlanNote {
                    severity: NoteSeverity::Error,
                    job_id: None,
                    message: format!("run-name `{}`: {error}", template.raw),
                });
                None
            }
        }
    });

    let order = workflow_needs_order(workflow);

    // Results of planned jobs, by id, for the needs of later ones.
    let mut results: Vec<(String, JobResult, bool)> = Vec::new();
    let mut jobs = Vec::new();
    for index in order.order {
        let Some((_, job)) = workflow.jobs.get_index(index) else {
            continue;
        };
        let mut needs = NeedsState::default();
        for need in &job.needs {
            let found = results
                .iter()
                .find(|(id, _, _)| id.eq_ignore_ascii_case(&need.value));
            let (result, failed) = found
                .map_or((JobResult::Skipped, false), |(_, result, failed)| {
                    (*result, *failed)
                });
            needs.any_ancestor_failed |= failed;
            needs.needs.push(NeedOutcome {
                job_id: need.value.clone(),
                result,
                outputs: Vec::new(),
            });
        }
        let plan = plan_job_with(&workflow.file, job, &base, &needs, false);
        let result = if plan.would_run {
            JobResult::Success
        } else {
            JobResult::Skipped
        };
        results.push((job.id.value.clone(), result, needs.any_ancestor_failed));
        notes.extend(plan.notes);
        jobs.extend(plan.instances);
    }
    for index in order.unordered {
        let Some((id, job)) = workflow.jobs.get_index(index) else {
            continue;
        };
        notes.push(PlanNote {
            severity: NoteSeverity::Error,
            job_id: Some(id.clone()),
            message: "job needs an unknown job or is part of a `needs` cycle; it cannot run"
                .to_owned(),
        });
        jobs.push(JobInstance {
            id: id.clone(),
            name: job
                .name
                .as_ref()
                .map_or_else(|| id.clone(), |n| n.raw.clone()),
            matrix: None,
            matrix_deferred: false,
            needs: job.needs.iter().map(|n| n.value.clone()).collect(),
            runs_on: Vec::new(),
            would_run: false,
            job_index: 0,
            job_total: 1,
        });
    }

    let name = workflow
        .name
        .as_ref()
        .map_or_else(|| file.to_owned(), |n| n.value.clone());
    WorkflowPlan {
        file: file.to_owned(),
        name,
        run_name,
        triggered: not_triggered.is_none(),
        not_triggered,
        jobs,
        notes,
    }
}
