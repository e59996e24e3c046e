//! GitHub Actions expressions, evaluated exactly as GitHub's runner does.
//!
//! Owns: the lexer, the parser (with the set of allowed named-values and functions decided by the
//! caller), the evaluator, `Value` with GitHub's coercion and number formatting rules, `${{ }}`
//! templates inside strings, and the `if:` condition rules (implicit `success() &&`).
//! Must not: do IO or know about YAML. `hashFiles` and the status functions get their answers
//! from the caller through [`Host`].
//!
//! API CONTRACT (other crates build against these names; keep them stable):
//! - [`Value`], [`Object`]: values; arrays and objects are shared (`Arc`) so `==` on them is
//!   reference identity, as in GitHub.
//! - [`parse`] + [`ParseOptions`] -> [`Expr`] or [`ParseError`] (message is GitHub's text,
//!   `offset` is the 0-based char index inside the expression).
//! - [`Expr::evaluate`] with an [`EvalContext`] -> [`Value`] or [`EvalError`].
//! - [`Template::parse`]: a YAML scalar that may contain `${{ }}`.
//! - [`IfCondition::parse`]: an `if:` value with GitHub's rules.

// The stubs below are replaced by the real implementation.

use std::sync::Arc;

use indexmap::IndexMap;

/// A value of the expression language: GitHub's JSON with IEEE doubles.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Arc<Vec<Value>>),
    Object(Arc<Object>),
}

/// An object that keeps insertion order and looks keys up case-insensitively (as GitHub's
/// context dictionaries do). Inserting a key that differs only in case replaces the value.
#[derive(Debug, Clone, Default)]
pub struct Object {
    entries: IndexMap<String, Value>,
}

impl Object {
    pub fn new() -> Object {
        Object::default()
    }
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.entries.keys().position(|k| k.eq_ignore_ascii_case(&key)) {
            Some(i) => {
                if let Some((_, v)) = self.entries.get_index_mut(i) {
                    *v = value;
                }
            }
            None => {
                self.entries.insert(key, value);
            }
        }
    }
    /// Case-insensitive lookup.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key).or_else(|| {
            self.entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
        })
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Value {
    /// Converts JSON (keys in document order) to a value.
    pub fn from_json(json: &serde_json::Value) -> Value {
        todo!("{json}")
    }
    /// JSON for presentation: NaN and the infinities become the strings "NaN", "Infinity",
    /// "-Infinity"; -0 becomes 0.
    pub fn to_json(&self) -> serde_json::Value {
        todo!()
    }
    /// GitHub's truthiness.
    pub fn is_truthy(&self) -> bool {
        todo!()
    }
    /// GitHub's conversion to string (numbers as .NET G15; arrays `Array`, objects `Object`).
    pub fn to_display_string(&self) -> String {
        todo!()
    }
    /// GitHub's `toJSON` pretty printing.
    pub fn to_pretty_json(&self) -> String {
        todo!()
    }
    /// `Null`, `Boolean`, `Number`, `String`, `Array`, `Object`.
    pub fn kind_name(&self) -> &'static str {
        todo!()
    }
}

/// What a parse may reference: decided by where the expression appears.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Allowed named-values (contexts), compared case-insensitively, e.g. `github`, `matrix`.
    pub named_values: Vec<String>,
    /// Allow `success()`, `failure()`, `always()`, `cancelled()`.
    pub status_functions: bool,
    /// Allow `hashFiles(...)`.
    pub hash_files: bool,
}

impl ParseOptions {
    /// Allows every context and function; for `runnel eval` and tests.
    pub fn permissive() -> ParseOptions {
        todo!()
    }
}

/// A parsed expression.
#[derive(Debug, Clone)]
pub struct Expr {
    _private: (),
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    Lexing,
    Parsing,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

/// Answers the expression needs from its caller.
pub trait Host {
    /// `success()`, `failure()`, `cancelled()` inputs.
    fn job_status(&self) -> JobStatus {
        JobStatus::Success
    }
    /// `hashFiles(patterns...)`: the engine reads files; `Ok("")` when nothing matches.
    fn hash_files(&self, follow_symlinks: bool, patterns: &[String]) -> Result<String, String> {
        let _ = (follow_symlinks, patterns);
        Err("hashFiles is not available here".to_owned())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Success,
    Failure,
    Cancelled,
}

/// Everything an evaluation reads: the named contexts plus the host.
pub struct EvalContext<'a> {
    pub contexts: &'a Object,
    pub host: &'a dyn Host,
}

impl Expr {
    pub fn evaluate(&self, cx: &EvalContext<'_>) -> Result<Value, EvalError> {
        let _ = cx;
        todo!()
    }
    /// True if the tree calls `success`, `failure`, `cancelled` or `always` anywhere.
    pub fn has_status_function(&self) -> bool {
        todo!()
    }
}

/// Parses one expression (the text inside `${{ }}`, or a bare `if:`).
pub fn parse(source: &str, options: &ParseOptions) -> Result<Expr, ParseError> {
    let _ = (source, options);
    todo!()
}

/// A YAML scalar that may contain `${{ }}`.
#[derive(Debug, Clone)]
pub enum Template {
    /// No expression in it.
    Literal(String),
    /// The whole value is one `${{ expr }}`: evaluates to a typed value.
    Whole(Expr),
    /// Literal text mixed with expressions: evaluates to a string.
    Interpolated(Vec<TemplatePart>),
}

#[derive(Debug, Clone)]
pub enum TemplatePart {
    Literal(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
    /// 0-based char offset inside the scalar where the failing expression (or `${{`) starts
    /// plus the offset inside it.
    pub offset: usize,
}

impl Template {
    pub fn parse(text: &str, options: &ParseOptions) -> Result<Template, TemplateError> {
        let _ = (text, options);
        todo!()
    }
    pub fn evaluate(&self, cx: &EvalContext<'_>) -> Result<Value, EvalError> {
        let _ = cx;
        todo!()
    }
}

/// An `if:` condition after GitHub's rules: whole `${{ }}` or bare expression; interpolated text
/// is a truthy string; empty means `success()`; no status function means `success() && (...)`.
#[derive(Debug, Clone)]
pub struct IfCondition {
    _private: (),
}

impl IfCondition {
    /// `options.status_functions` is forced on: `if:` always allows them.
    pub fn parse(text: &str, options: &ParseOptions) -> Result<IfCondition, TemplateError> {
        let _ = (text, options);
        todo!()
    }
    pub fn evaluate(&self, cx: &EvalContext<'_>) -> Result<bool, EvalError> {
        let _ = cx;
        todo!()
    }
}
