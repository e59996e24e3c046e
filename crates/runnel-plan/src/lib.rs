//! Planning: from a loaded workflow and an event to the job instances that would run.
//!
//! Owns: event matching (GitHub's filter globs, `-ignore`, `!` negation, activity types), matrix
//! expansion (include/exclude exactly as GitHub), job naming, the `needs` graph in order, and
//! job-level `if` evaluated with the contexts known at plan time.
//! Must not: spawn processes, read files or know about Docker.
//!
//! Entry points: [`plan_workflow`] (the CLI's `runnel plan`), [`plan_job`] (the engine, once
//! a job's needs have finished), and the building blocks [`trigger_matches`],
//! [`expand_matrix`], [`matrix_job_name`] and [`needs_order`].

mod contexts;
mod event;
mod glob;
mod graph;
mod job;
mod job_if;
mod matrix;
mod matrix_eval;
mod naming;
mod plan;
mod trigger;

pub use contexts::{
    JobResult, NeedOutcome, NeedsState, github_context, inputs_context, needs_context, vars_context,
};
pub use event::{
    DEFAULT_ACTOR, DEFAULT_REPOSITORY, Event, RefKind, ZERO_SHA, full_ref, ref_kind, short_ref,
};
pub use glob::{FilterList, FilterPattern, PatternError};
pub use graph::{NeedsOrder, needs_order, workflow_needs_order};
pub use job::{
    JobInstance, JobPlan, NoteSeverity, PlanNote, UnknownJob, plan_job, plan_job_with_contexts,
};
pub use matrix::{MAX_MATRIX_LEGS, MatrixError, MatrixSpec, deep_equal, expand_matrix};
pub use naming::matrix_job_name;
pub use plan::{WorkflowPlan, plan_workflow, trigger_from_model, workflow_triggered};
pub use trigger::{NotTriggered, Trigger, trigger_matches};
