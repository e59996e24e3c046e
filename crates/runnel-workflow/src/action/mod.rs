//! Action metadata (`action.yml` / `action.yaml`): the typed [`Action`] model and its loader.
//!
//! Owns: the shape of an action's `name`, `inputs`, `outputs` and `runs` (composite, node,
//! docker) with positions, and the diagnostics about them. GitHub ignores unknown keys at most
//! levels of this file, so those are warnings here; bad expressions and missing required keys
//! are errors. Composite steps share the workflow step model ([`Step`]) and its checks.
//! Must not: read files or evaluate anything; the engine loads the text and evaluates.

mod convert;

use indexmap::IndexMap;

use crate::diagnostic::Diagnostic;
use crate::model::{Env, IfExpr, Span, Spanned, Step, TemplateString};

/// A whole action metadata file.
#[derive(Debug, Clone)]
pub struct Action {
    /// The file name the caller passed to [`load_action`].
    pub file: String,
    pub name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// Declared inputs in order, keyed by id as written.
    pub inputs: IndexMap<String, ActionInput>,
    pub outputs: IndexMap<String, ActionOutput>,
    pub runs: ActionRuns,
    pub span: Span,
}

/// `inputs.<id>`.
#[derive(Debug, Clone)]
pub struct ActionInput {
    pub description: Option<String>,
    /// Advisory only: runners do not fail when a required input is missing.
    pub required: bool,
    /// May hold expressions (`${{ github.token }}`), evaluated when the step runs.
    pub default: Option<TemplateString>,
    pub deprecation_message: Option<String>,
    pub span: Span,
}

/// `outputs.<id>`.
#[derive(Debug, Clone)]
pub struct ActionOutput {
    pub description: Option<String>,
    /// Composite actions only: an expression over the composite's own `steps`.
    pub value: Option<TemplateString>,
    pub span: Span,
}

/// `runs:`.
#[derive(Debug, Clone)]
pub enum ActionRuns {
    Composite(CompositeRuns),
    Node(NodeRuns),
    Docker(DockerRuns),
}

impl ActionRuns {
    /// `composite`, `node20`, `docker`: what `runs.using` said (node versions kept).
    pub fn using(&self) -> &str {
        match self {
            ActionRuns::Composite(_) => "composite",
            ActionRuns::Node(node) => &node.using.value,
            ActionRuns::Docker(_) => "docker",
        }
    }
}

/// `runs.using: composite`.
#[derive(Debug, Clone)]
pub struct CompositeRuns {
    pub steps: Vec<Step>,
    pub span: Span,
}

/// `runs.using: node12|node16|node20|node24`. Paths are relative to the action directory.
#[derive(Debug, Clone)]
pub struct NodeRuns {
    pub using: Spanned<String>,
    pub main: Spanned<String>,
    pub pre: Option<Spanned<String>>,
    /// `None` means GitHub's default `always()`.
    pub pre_if: Option<IfExpr>,
    pub post: Option<Spanned<String>>,
    /// `None` means GitHub's default `always()`.
    pub post_if: Option<IfExpr>,
    pub span: Span,
}

/// `runs.using: docker`.
#[derive(Debug, Clone)]
pub struct DockerRuns {
    /// `Dockerfile` (a path relative to the action directory) or `docker://image:tag`.
    pub image: Spanned<String>,
    pub env: Env,
    /// Each item is one argv element after evaluation (no shell splitting).
    pub args: Vec<TemplateString>,
    pub entrypoint: Option<Spanned<String>>,
    pub pre_entrypoint: Option<Spanned<String>>,
    pub pre_if: Option<IfExpr>,
    pub post_entrypoint: Option<Spanned<String>>,
    pub post_if: Option<IfExpr>,
    pub span: Span,
}

/// What loading an action produced: the model (`None` when `runs` is unusable or the text
/// is not a mapping) and every diagnostic, in source order.
#[derive(Debug, Clone)]
pub struct ActionLoadResult {
    pub action: Option<Action>,
    pub diagnostics: Vec<Diagnostic>,
}

impl ActionLoadResult {
    /// True when some diagnostic is an error (warnings don't count).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads an action metadata file. `file` names it in diagnostics; `text` is its content.
pub fn load_action(file: &str, text: &str) -> ActionLoadResult {
    let (action, diagnostics) =
        crate::convert::load_with(file, text, "action metadata", |cx, root| {
            convert::action(cx, file, root)
        });
    ActionLoadResult {
        action,
        diagnostics,
    }
}
