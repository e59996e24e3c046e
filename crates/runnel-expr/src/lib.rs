//! GitHub Actions expressions, evaluated exactly as GitHub's runner does.
//!
//! Owns: the lexer, the parser (with the set of allowed named-values and functions decided by the
//! caller), the evaluator, `Value` with GitHub's coercion and number formatting rules, `${{ }}`
//! templates inside strings, and the `if:` condition rules (implicit `success() &&`).
//! Must not: do IO or know about YAML. `hashFiles` and the status functions get their answers
//! from the caller through [`Host`].
//!
//! The reference is the C# engine of `actions/runner` (`src/Sdk/Expressions`): where the npm
//! package `@actions/expressions` disagrees with it, the runner wins.
//!
//! API CONTRACT (other crates build against these names; keep them stable):
//! - [`Value`], [`Object`]: values; arrays and objects are shared (`Arc`) so `==` on them is
//!   reference identity, as in GitHub.
//! - [`parse`] + [`ParseOptions`] -> [`Expr`] or [`ParseError`] (message is GitHub's text,
//!   `offset` is the 0-based char index inside the expression).
//! - [`Expr::evaluate`] with an [`EvalContext`] -> [`Value`] or [`EvalError`].
//! - [`Template::parse`]: a YAML scalar that may contain `${{ }}`.
//! - [`IfCondition::parse`]: an `if:` value with GitHub's rules.
//!
//! Invariants: no input makes this crate panic; the parser rejects trees deeper than
//! [`MAX_DEPTH`], so evaluating a parsed tree recurses at most that deep; evaluation memory is
//! bounded as in the runner ([`EvalOptions`]).

mod ast;
mod eval;
mod functions;
mod json;
mod lexer;
mod memory;
mod number;
mod parser;
mod template;
mod value;

pub use template::{IfCondition, Template, TemplateError, TemplatePart};
pub use value::{Object, Value};

/// Longest expression text accepted, in UTF-16 code units (GitHub's `MaxLength`).
pub const MAX_LENGTH: usize = 21_000;
/// Deepest parse tree accepted (GitHub's `MaxDepth`).
pub const MAX_DEPTH: usize = 50;

/// What a parse may reference: decided by where the expression appears.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Allowed named-values (contexts), compared case-insensitively, e.g. `github`, `matrix`.
    pub named_values: Vec<String>,
    /// Allow `success()`, `failure()`, `always()`, `cancelled()`.
    pub status_functions: bool,
    /// Allow `hashFiles(...)`.
    pub hash_files: bool,
    /// Allow job ids as arguments of `success(...)` and `failure(...)`, as a job-level `if:`
    /// does on GitHub.
    pub job_status_arguments: bool,
}

/// Every context name a workflow or action can reference (plus Gitea's `gitea` alias).
const ALL_CONTEXTS: &[&str] = &[
    "github", "gitea", "env", "vars", "secrets", "job", "jobs", "steps", "runner", "strategy",
    "matrix", "needs", "inputs",
];

impl ParseOptions {
    /// Allows every context and function; for `runnel eval` and tests.
    pub fn permissive() -> ParseOptions {
        ParseOptions {
            named_values: ALL_CONTEXTS.iter().map(|name| (*name).to_owned()).collect(),
            status_functions: true,
            hash_files: true,
            job_status_arguments: false,
        }
    }
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub struct Expr {
    /// `None` for an empty (all-whitespace) expression, which evaluates to null.
    root: Option<ast::Node>,
    /// Depth of the tree (0 when empty), at most [`MAX_DEPTH`].
    depth: usize,
}

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// `lexing` or `parsing`, as in GitHub's test data.
    pub kind: ParseErrorKind,
    /// GitHub's full message, e.g. "Unexpected symbol: ')'. Located at position 5 within
    /// expression: 1 < )".
    pub message: String,
    /// 0-based char offset of the offending token inside the expression text.
    pub offset: usize,
}

/// Which stage rejected the expression (the classification of GitHub's test data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// A token could not be formed at all (bad character, unterminated string, bad number).
    Lexing,
    /// Tokens in an illegal order, unknown names, wrong argument counts, limits.
    Parsing,
}

/// Why an evaluation failed (GitHub's message, e.g. from `format` or `fromJSON`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// GitHub's message, e.g. "The following format string is invalid: {0".
    pub message: String,
}

/// Answers the expression needs from its caller.
pub trait Host {
    /// `success()`, `failure()`, `cancelled()` inputs.
    fn job_status(&self) -> JobStatus {
        JobStatus::Success
    }
    /// `success()`; at job level `success('a', 'b')` names the needed jobs to test (`jobs` is
    /// empty otherwise). By default: the job status is `Success`. At job level GitHub's answer
    /// is "every needed job (transitively) succeeded", which is false after a skipped need
    /// even though nothing failed: a job-level host overrides this.
    fn success(&self, jobs: &[String]) -> bool {
        let _ = jobs;
        self.job_status() == JobStatus::Success
    }
    /// `failure()`; at job level `failure('a')` names the needed jobs to test. By default: the
    /// job status is `Failure`.
    fn failure(&self, jobs: &[String]) -> bool {
        let _ = jobs;
        self.job_status() == JobStatus::Failure
    }
    /// `hashFiles(patterns...)`: the engine reads files; `Ok("")` when nothing matches.
    fn hash_files(&self, follow_symlinks: bool, patterns: &[String]) -> Result<String, String> {
        let _ = (follow_symlinks, patterns);
        Err("hashFiles is not available here".to_owned())
    }
}

/// The status the status functions test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Nothing failed so far: `success()` is true.
    Success,
    /// A step (or needed job) failed: `failure()` is true.
    Failure,
    /// The run was cancelled: `cancelled()` is true, `success()` false.
    Cancelled,
}

/// Everything an evaluation reads: the named contexts plus the host.
pub struct EvalContext<'a> {
    /// Context name (`github`, `matrix`, ...) to value; looked up case-insensitively.
    pub contexts: &'a Object,
    /// Job status and `hashFiles`.
    pub host: &'a dyn Host,
}

/// Limits of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalOptions {
    /// Bytes of intermediate results an evaluation may hold, counted the way the runner counts
    /// them (a string costs 26 + 2 per UTF-16 unit). Past it evaluation fails with "The maximum
    /// allowed memory size was exceeded ...".
    pub max_memory_bytes: usize,
}

impl EvalOptions {
    /// The expression engine's own default (1 MiB), used by [`Expr::evaluate`] and by GitHub's
    /// expression test data.
    pub const EXPRESSION: EvalOptions = EvalOptions {
        max_memory_bytes: 1024 * 1024,
    };
    /// The limit the runner uses for workflow values (10 MiB), used by [`Template::evaluate`]
    /// and [`IfCondition::evaluate`].
    pub const TEMPLATE: EvalOptions = EvalOptions {
        max_memory_bytes: 10 * 1024 * 1024,
    };
}

impl Expr {
    /// Evaluates with the engine's default memory limit ([`EvalOptions::EXPRESSION`]).
    pub fn evaluate(&self, cx: &EvalContext<'_>) -> Result<Value, EvalError> {
        self.evaluate_with(cx, EvalOptions::EXPRESSION)
    }
    /// Evaluates with explicit limits.
    pub fn evaluate_with(
        &self,
        cx: &EvalContext<'_>,
        options: EvalOptions,
    ) -> Result<Value, EvalError> {
        match &self.root {
            Some(root) => eval::evaluate(root, cx, options),
            None => Ok(Value::Null),
        }
    }
    /// True if the tree calls `success`, `failure`, `cancelled` or `always` anywhere.
    pub fn has_status_function(&self) -> bool {
        self.root
            .as_ref()
            .is_some_and(ast::Node::has_status_function)
    }
    /// True for an expression with no tokens (it evaluates to null).
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }
    /// Names of the contexts the expression reads (as written, deduplicated
    /// case-insensitively, in order of first use), e.g. to know whether it needs `matrix`.
    pub fn named_values(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if let Some(root) = &self.root {
            root.collect_named_values(&mut names);
        }
        names
    }
}

/// Prints the expression in the runner's canonical form (`github.sha`, `(a == 'b')`).
impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.root {
            Some(root) => std::fmt::Display::fmt(root, f),
            None => Ok(()),
        }
    }
}

/// Parses one expression (the text inside `${{ }}`, or a bare `if:`).
pub fn parse(source: &str, options: &ParseOptions) -> Result<Expr, ParseError> {
    Ok(match parser::parse(source, options)? {
        Some((root, depth)) => Expr {
            root: Some(root),
            depth,
        },
        None => Expr {
            root: None,
            depth: 0,
        },
    })
}
