//! Workflow files: YAML with a position on every node, the typed model, and diagnostics.
//!
//! Owns: converting the spanned node tree that `runnel-yaml` reads into the [`Workflow`] model,
//! and collecting every problem (unknown keys, wrong types, bad expressions, unknown `needs`,
//! cycles, duplicate step ids) as [`Diagnostic`]s with file:line:col, all at once.
//! Must not: build runtime contexts or do IO (callers pass file names and text, and the
//! contexts computed keys are evaluated in).
//!
//! Entry points: [`load_workflow`], and [`load_action`] for action metadata (`action.yml`);
//! [`check_call`] and [`check_calls`] check calls of reusable workflows once the caller has
//! the called files; [`TemplateMap::evaluate`] evaluates `env:`-like maps whose keys may be
//! expressions or `${{ insert }}`.
//! Render a diagnostic for a terminal with [`render`].

mod action;
mod calls;
mod convert;
mod diagnostic;
mod evaluate;
mod model;

pub use action::{
    Action, ActionInput, ActionLoadResult, ActionOutput, ActionRuns, CompositeRuns, DockerRuns,
    NodeRuns, load_action,
};
pub use calls::{
    CallCheckOptions, MAX_NESTED_CALL_DEPTH, PermissionsPolicy, check_call, check_calls,
};
pub use diagnostic::{Diagnostic, Severity, render};
pub use evaluate::{MapError, evaluate_key, insert_object};
pub use model::{
    Concurrency, Container, Credentials, Env, Environment, EventTrigger, IfExpr, InputType, Job,
    LiteralOrExpr, MapKey, Matrix, MatrixEntry, MatrixRow, MatrixRows, PatternFilter,
    PermissionLevel, Permissions, ReusableWorkflowCall, RunDefaults, RunStep, RunsOn, Span,
    Spanned, SpannedValue, Step, StepKind, Strategy, TemplateMap, TemplateMapEntry, TemplateString,
    Triggers, UsesStep, Workflow, WorkflowCall, WorkflowCallInput, WorkflowCallOutput,
    WorkflowCallSecret, WorkflowDispatch, WorkflowDispatchInput, WorkflowSecrets,
};

/// What loading a workflow produced: the model (possibly partial when there are errors) and
/// every diagnostic, in source order.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// `None` only when the text is not a YAML mapping at all.
    pub workflow: Option<Workflow>,
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadResult {
    /// True when some diagnostic is an error (warnings don't count).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads a workflow file. `file` names it in diagnostics; `text` is its content.
pub fn load_workflow(file: &str, text: &str) -> LoadResult {
    convert::load(file, text)
}
