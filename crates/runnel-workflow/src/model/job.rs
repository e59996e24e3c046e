//! Jobs and steps: `jobs.<id>` with its strategy, runner selection, containers and steps.
//!
//! Owns: the job and step data types. Expanding matrices and ordering `needs` is the plan
//! crate's job; running steps is the engine's.

use indexmap::IndexMap;
use runnel_expr::Value;

use super::{
    Concurrency, Env, IfExpr, LiteralOrExpr, MapKey, Permissions, RunDefaults, Span, Spanned,
    SpannedValue, TemplateMap, TemplateString,
};

/// One entry under `jobs:`. A job either has `steps` or calls a reusable workflow (`call`).
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Spanned<String>,
    pub name: Option<TemplateString>,
    pub needs: Vec<Spanned<String>>,
    /// `None` means the default `success()`.
    pub if_condition: Option<IfExpr>,
    pub runs_on: Option<RunsOn>,
    pub strategy: Option<Strategy>,
    pub container: Option<Container>,
    pub services: IndexMap<String, Container>,
    pub outputs: IndexMap<String, TemplateString>,
    pub env: Env,
    pub defaults: Option<RunDefaults>,
    pub timeout_minutes: Option<LiteralOrExpr<f64>>,
    pub continue_on_error: Option<LiteralOrExpr<bool>>,
    pub environment: Option<Environment>,
    pub concurrency: Option<Concurrency>,
    pub permissions: Option<Permissions>,
    pub steps: Vec<Step>,
    /// Set for a job that calls a reusable workflow (`uses:` at job level).
    pub call: Option<ReusableWorkflowCall>,
    pub span: Span,
}

/// `runs-on:`: labels the runner must all have, a group, or an expression.
#[derive(Debug, Clone)]
pub enum RunsOn {
    /// A string or a list of strings (each may contain expressions).
    Labels(Vec<TemplateString>, Span),
    /// `{group, labels}`.
    Group {
        group: Option<TemplateString>,
        labels: Vec<TemplateString>,
        span: Span,
    },
    /// A whole-value expression, e.g. `${{ fromJSON(needs.a.outputs.runner) }}`, which may
    /// evaluate to a string or a list.
    Expr(TemplateString),
}

#[derive(Debug, Clone)]
pub struct Strategy {
    pub matrix: Option<Matrix>,
    pub fail_fast: Option<LiteralOrExpr<bool>>,
    pub max_parallel: Option<LiteralOrExpr<f64>>,
    pub span: Span,
}

/// `strategy.matrix`.
#[derive(Debug, Clone)]
pub enum Matrix {
    /// `matrix: ${{ fromJSON(...) }}`, evaluated at plan time.
    Expr(TemplateString),
    Map {
        /// Every key other than a literal `include`/`exclude`, in declaration order.
        dimensions: Vec<MatrixEntry>,
        include: Option<MatrixRows>,
        exclude: Option<MatrixRows>,
        span: Span,
    },
}

/// One key of a matrix mapping (`strategy.matrix` itself or an `include`/`exclude` row) and
/// its value. Values keep their YAML types; strings inside them may still hold `${{ }}`, and a
/// string that is one whole `${{ }}` yields a typed value: the plan evaluates them, and the
/// key when it is computed. Under `strategy.matrix` a named key's value is a list or an
/// expression producing one; an `${{ insert }}` key's value is a mapping or an expression
/// producing one.
#[derive(Debug, Clone)]
pub struct MatrixEntry {
    pub key: MapKey,
    pub value: SpannedValue,
}

/// One `include`/`exclude` entry: its keys and values in declaration order.
pub type MatrixRow = Spanned<Vec<MatrixEntry>>;

/// `include:`/`exclude:`: a list of rows, or an expression producing one.
pub type MatrixRows = LiteralOrExpr<Vec<MatrixRow>>;

/// `container:` or a `services.<id>` entry.
#[derive(Debug, Clone)]
pub struct Container {
    pub image: TemplateString,
    pub credentials: Option<Credentials>,
    pub env: Env,
    pub ports: Vec<TemplateString>,
    pub volumes: Vec<TemplateString>,
    pub options: Option<TemplateString>,
    /// A service's `entrypoint:` (one program, replacing the image's); `None` on the job
    /// container and when not given.
    pub entrypoint: Option<TemplateString>,
    /// A service's `command:` (the image's `CMD` replaced; split into arguments as a shell
    /// would by the backend); `None` on the job container and when not given.
    pub command: Option<TemplateString>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: Option<TemplateString>,
    pub password: Option<TemplateString>,
    /// `credentials:` whose keys are computed (an expression key or `${{ insert }}`, which
    /// GitHub evaluates at run time): the whole mapping, evaluated when the job starts;
    /// `username` and `password` are then `None`.
    pub computed: Option<TemplateMap>,
    pub span: Span,
}

/// `environment:` as a name or `{name, url}`.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: TemplateString,
    /// Evaluated at job end; may use `steps`.
    pub url: Option<TemplateString>,
    pub span: Span,
}

/// A job-level `uses:` calling a reusable workflow.
#[derive(Debug, Clone)]
pub struct ReusableWorkflowCall {
    pub uses: Spanned<String>,
    /// Inputs: literal values keep their YAML type; strings with `${{ }}` are expressions.
    pub with: IndexMap<String, LiteralOrExpr<Value>>,
    pub secrets: Option<WorkflowSecrets>,
}

#[derive(Debug, Clone)]
pub enum WorkflowSecrets {
    /// `secrets: inherit`.
    Inherit(Span),
    Map(IndexMap<String, TemplateString>, Span),
}

/// One entry of `steps:`.
#[derive(Debug, Clone)]
pub struct Step {
    /// 0-based position in the job's `steps` list.
    pub index: usize,
    pub id: Option<Spanned<String>>,
    pub name: Option<TemplateString>,
    /// `None` means the default `success()`.
    pub if_condition: Option<IfExpr>,
    pub kind: StepKind,
    pub env: Env,
    pub continue_on_error: Option<LiteralOrExpr<bool>>,
    pub timeout_minutes: Option<LiteralOrExpr<f64>>,
    pub span: Span,
}

// A workflow has tens of steps, built once: boxing `Run` would only add indirection to every
// `match` on it in the engine.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum StepKind {
    Run(RunStep),
    Uses(UsesStep),
}

#[derive(Debug, Clone)]
pub struct RunStep {
    pub run: TemplateString,
    pub shell: Option<TemplateString>,
    pub working_directory: Option<TemplateString>,
}

#[derive(Debug, Clone)]
pub struct UsesStep {
    /// `owner/repo@ref`, `./path`, `docker://image`, or a full URL (Gitea); no expressions.
    pub uses: Spanned<String>,
    /// Inputs, all strings (numbers and booleans are converted as GitHub does).
    pub with: TemplateMap,
}
