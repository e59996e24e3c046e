//! The `on:` section: which events start the workflow and their filters.
//!
//! Owns: the trigger data types. Matching events against filters is the plan crate's job.

use indexmap::IndexMap;
use runnel_expr::Value;

use super::{Span, Spanned, TemplateString};

/// Everything under `on:`, whatever form it was written in (string, list or mapping).
#[derive(Debug, Clone)]
pub struct Triggers {
    /// Every event named, in declaration order (including `schedule`, `workflow_dispatch` and
    /// `workflow_call`, whose details are also in the fields below).
    pub events: IndexMap<String, EventTrigger>,
    /// `schedule: [{cron: ...}]` cron lines.
    pub schedule: Vec<Spanned<String>>,
    pub workflow_dispatch: Option<WorkflowDispatch>,
    pub workflow_call: Option<WorkflowCall>,
    pub span: Span,
}

/// One event with its filters; a filter that is `None` was not given.
#[derive(Debug, Clone)]
pub struct EventTrigger {
    pub name: Spanned<String>,
    /// `types:` activity filter.
    pub types: Option<Vec<Spanned<String>>>,
    pub branches: Option<PatternFilter>,
    pub tags: Option<PatternFilter>,
    pub paths: Option<PatternFilter>,
    /// `workflow_run.workflows`.
    pub workflows: Option<Vec<Spanned<String>>>,
}

/// `branches`/`tags`/`paths` or their `-ignore` form (never both, that is a diagnostic).
#[derive(Debug, Clone)]
pub struct PatternFilter {
    /// True for the `-ignore` form.
    pub ignore: bool,
    pub patterns: Vec<Spanned<String>>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct WorkflowDispatch {
    pub inputs: IndexMap<String, WorkflowDispatchInput>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    String,
    Boolean,
    Number,
    Choice,
    Environment,
}

#[derive(Debug, Clone)]
pub struct WorkflowDispatchInput {
    pub id: Spanned<String>,
    pub description: Option<String>,
    /// Absent `type:` means string.
    pub input_type: InputType,
    pub required: bool,
    /// The literal YAML default (string, boolean or number).
    pub default: Option<Spanned<Value>>,
    /// `options:` of a `choice` input.
    pub options: Vec<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub struct WorkflowCall {
    pub inputs: IndexMap<String, WorkflowCallInput>,
    pub secrets: IndexMap<String, WorkflowCallSecret>,
    pub outputs: IndexMap<String, WorkflowCallOutput>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct WorkflowCallInput {
    pub id: Spanned<String>,
    pub description: Option<String>,
    /// `boolean`, `number` or `string` (required by GitHub).
    pub input_type: InputType,
    pub required: bool,
    /// A default may be an expression over `github`, `inputs`, `vars`; a literal boolean or
    /// number keeps its type in `default_value`.
    pub default: Option<TemplateString>,
    pub default_value: Option<Spanned<Value>>,
}

#[derive(Debug, Clone)]
pub struct WorkflowCallSecret {
    pub id: Spanned<String>,
    pub description: Option<String>,
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct WorkflowCallOutput {
    pub id: Spanned<String>,
    pub description: Option<String>,
    /// Expression over `jobs`, `github`, `inputs`, `vars`.
    pub value: TemplateString,
}
