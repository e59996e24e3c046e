//! The typed workflow model that later stages (planning, the engine) consume.
//!
//! Owns: plain data types with public fields, each keeping the source position that an error
//! about it would point at. Values that may hold `${{ }}` keep the parsed template together with
//! the raw text, so callers evaluate them when the key is consumed.
//! Must not: validate or evaluate anything; the `convert` module builds these values.

mod job;
mod triggers;

pub use job::{
    Container, Credentials, Environment, Job, Matrix, MatrixEntry, MatrixRow, MatrixRows,
    ReusableWorkflowCall, RunStep, RunsOn, Step, StepKind, Strategy, UsesStep, WorkflowSecrets,
};
pub use triggers::{
    EventTrigger, InputType, PatternFilter, Triggers, WorkflowCall, WorkflowCallInput,
    WorkflowCallOutput, WorkflowCallSecret, WorkflowDispatch, WorkflowDispatchInput,
};

use std::sync::Arc;

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

/// `env:` at any level: entries in declaration order, keys possibly computed.
pub type Env = TemplateMap;

/// A mapping where GitHub's template engine evaluates keys too (`env:`, a step's `with:`,
/// `container.env`): each key is literal text, text with `${{ }}` evaluated to a string, or
/// `${{ insert }}`, whose value must evaluate to a mapping that is merged in at that
/// position. Keys and values are evaluated together, in one context, by
/// [`TemplateMap::evaluate`].
#[derive(Debug, Clone, Default)]
pub struct TemplateMap {
    /// Entries in declaration order.
    pub entries: Vec<TemplateMapEntry>,
    /// The file the map was written in, for evaluation errors.
    pub file: Arc<str>,
}

/// One `key: value` of a [`TemplateMap`].
#[derive(Debug, Clone)]
pub struct TemplateMapEntry {
    pub key: MapKey,
    pub value: TemplateString,
}

/// A mapping key where expressions are allowed.
#[derive(Debug, Clone)]
pub enum MapKey {
    /// Literal text ([`Template::Literal`]) or text with `${{ }}`, evaluated to a string.
    Name(TemplateString),
    /// `${{ insert }}`, written at this position.
    Insert(Span),
}

impl MapKey {
    /// The key as written.
    pub fn raw(&self) -> &str {
        match self {
            MapKey::Name(name) => &name.raw,
            MapKey::Insert(_) => "${{ insert }}",
        }
    }

    pub fn span(&self) -> Span {
        match self {
            MapKey::Name(name) => name.span,
            MapKey::Insert(span) => *span,
        }
    }

    /// The key's text when it holds no expression.
    pub fn literal(&self) -> Option<&str> {
        match self {
            MapKey::Name(TemplateString {
                template: Template::Literal(text),
                ..
            }) => Some(text),
            _ => None,
        }
    }
}

impl TemplateMap {
    /// The value written under the literal key `name` (exact spelling), if any. Keys computed
    /// by expressions or inserted are only known after [`TemplateMap::evaluate`].
    pub fn get(&self, name: &str) -> Option<&TemplateString> {
        self.entries
            .iter()
            .find(|entry| entry.key.literal() == Some(name))
            .map(|entry| &entry.value)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when a key is computed (an expression or `${{ insert }}`).
    pub fn has_computed_keys(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.key.literal().is_none())
    }
}

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
    /// A job's `defaults.run` whose keys are computed (an expression key or
    /// `${{ insert }}`, which GitHub evaluates at run time): the whole mapping, evaluated
    /// when a step needs it; `shell` and `working_directory` are then `None`.
    pub computed: Option<TemplateMap>,
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
