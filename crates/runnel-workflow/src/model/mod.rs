//! The typed workflow model that later stages (planning, the engine) consume.
//!
//! Owns: plain data types with public fields, each keeping the source position that an error
//! about it would point at. Values that may hold `${{ }}` keep the parsed template together with
//! the raw text, so callers evaluate them when the key is consumed.
//! Must not: validate or evaluate anything; the `convert` module builds these values.

mod job;
mod triggers;

pub use job::{
    Container, Credentials, Environment, Job, Matrix, MatrixDimension, MatrixRow, MatrixRows,
    ReusableWorkflowCall, RunStep, RunsOn, Step, StepKind, Strategy, UsesStep, WorkflowSecrets,
};
pub use triggers::{
    EventTrigger, InputType, PatternFilter, Triggers, WorkflowCall, WorkflowCallInput,
    WorkflowCallOutput, WorkflowCallSecret, WorkflowDispatch, WorkflowDispatchInput,
};

use indexmap::IndexMap;
use runnel_expr::{IfCondition, Template, Value};

/// A position in the source: 1-based line and column (columns count characters). Defined by
/// the YAML reader, which puts one on every node.
pub use runnel_yaml::Span;

/// A value and where it was written.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// A string value that may contain `${{ }}`: the raw YAML text, its parsed template and position.
///
/// `template` is [`Template::Literal`] when the text holds no expression, so callers can always
/// evaluate it. In a workflow that has error diagnostics, a template that failed to parse is
/// stored as a literal of its raw text.
#[derive(Debug, Clone)]
pub struct TemplateString {
    pub raw: String,
    pub template: Template,
    pub span: Span,
}

/// A key that takes a typed literal (`true`, `30`) or an expression evaluated later.
#[derive(Debug, Clone)]
pub enum LiteralOrExpr<T> {
    Literal(Spanned<T>),
    Expr(TemplateString),
}

/// An `if:` condition: the parsed condition (GitHub's rules applied), its source text and where.
#[derive(Debug, Clone)]
pub struct IfExpr {
    pub source: String,
    pub condition: IfCondition,
    pub span: Span,
}

/// `env:` at any level: names in declaration order.
pub type Env = IndexMap<String, TemplateString>;

/// A whole workflow file.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The file name the caller passed to [`crate::load_workflow`].
    pub file: String,
    pub name: Option<Spanned<String>>,
    pub run_name: Option<TemplateString>,
    pub on: Triggers,
    pub env: Env,
    pub defaults: Option<RunDefaults>,
    pub concurrency: Option<Concurrency>,
    pub permissions: Option<Permissions>,
    /// Jobs in declaration order, keyed by job id.
    pub jobs: IndexMap<String, Job>,
    pub span: Span,
}

/// `defaults.run` (workflow or job level); applies to `run:` steps only.
#[derive(Debug, Clone)]
pub struct RunDefaults {
    pub shell: Option<TemplateString>,
    pub working_directory: Option<TemplateString>,
    pub span: Span,
}

/// `concurrency:` as a group string or `{group, cancel-in-progress}`.
#[derive(Debug, Clone)]
pub struct Concurrency {
    pub group: TemplateString,
    pub cancel_in_progress: Option<LiteralOrExpr<bool>>,
    pub span: Span,
}

/// `permissions:` for the job token.
#[derive(Debug, Clone)]
pub enum Permissions {
    ReadAll(Span),
    WriteAll(Span),
    /// Scope name → level; scopes not listed are `none`.
    Scopes(IndexMap<String, Spanned<PermissionLevel>>, Span),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionLevel {
    Read,
    Write,
    None,
}

/// A YAML value with no expressions resolved, for places that keep arbitrary data (matrix
/// values, `with:` of reusable workflow calls).
pub type SpannedValue = Spanned<Value>;
