//! Computed mapping keys as GitHub's template engine evaluates them (`TemplateEvaluator` and
//! `TemplateUnraveler` of the runner's object templating): a key with `${{ }}` becomes a
//! string, `${{ insert }}` merges the mapping its value yields, and every key, written or
//! computed, must be non-empty and unique (compared without case).
//!
//! Owns: [`TemplateMap::evaluate`] and [`evaluate_key`], the one place these rules live, for
//! the engine (`env:`, `with:`, `container.env`) and the plan (matrix keys).
//! Must not: build contexts; callers pass the ones the key is evaluated in.

use std::sync::Arc;

use indexmap::IndexMap;
use runnel_expr::{EvalContext, EvalError, Object, Value};

use crate::model::{MapKey, Span, TemplateMap, TemplateString};

/// Why a mapping with computed keys could not be evaluated. Each variant names the file and
/// position of the entry at fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MapError {
    /// A key or value expression failed.
    #[error("{}:{}:{}: `{raw}`: {source}", .file, .span.line, .span.col)]
    Expression {
        file: Arc<str>,
        span: Span,
        raw: String,
        #[source]
        source: EvalError,
    },
    /// A key evaluated to an array or object (GitHub: "Expected a string").
    #[error(
        "{}:{}:{}: the key `{raw}` must evaluate to a string, not {kind}",
        .file, .span.line, .span.col
    )]
    KeyNotString {
        file: Arc<str>,
        span: Span,
        raw: String,
        kind: &'static str,
    },
    /// A key evaluated to the empty string (GitHub: "Unexpected value ''").
    #[error("{}:{}:{}: the key `{raw}` evaluated to an empty string", .file, .span.line, .span.col)]
    EmptyKey {
        file: Arc<str>,
        span: Span,
        raw: String,
    },
    /// The value of `${{ insert }}` is not a mapping (GitHub: "Expected a mapping").
    #[error(
        "{}:{}:{}: `${{{{ insert }}}}` needs a mapping; `{raw}` gave {kind}",
        .file, .span.line, .span.col
    )]
    InsertNotMapping {
        file: Arc<str>,
        span: Span,
        raw: String,
        kind: &'static str,
    },
    /// An inserted value is an array or object where a string is expected (GitHub: "A
    /// mapping was not expected").
    #[error(
        "{}:{}:{}: `${{{{ insert }}}}` gave `{key}` a value of kind {kind}; only strings, numbers, booleans and null can be inserted here",
        .file, .span.line, .span.col
    )]
    InsertedValueNotScalar {
        file: Arc<str>,
        span: Span,
        key: String,
        kind: &'static str,
    },
    /// Two entries produced the same key (GitHub: "'X' is already defined").
    #[error("{}:{}:{}: `{key}` is already defined", .file, .span.line, .span.col)]
    Duplicate {
        file: Arc<str>,
        span: Span,
        key: String,
    },
}

impl TemplateMap {
    /// Evaluates keys and values in declaration order with `cx`, values converted to strings
    /// as GitHub does. Keys are unique without regard to case: a key defined twice (written,
    /// computed or inserted) is an error, as on GitHub, never a silent override.
    pub fn evaluate(&self, cx: &EvalContext<'_>) -> Result<IndexMap<String, String>, MapError> {
        let mut out = Keys::new(&self.file);
        for entry in &self.entries {
            match &entry.key {
                MapKey::Name(name) => {
                    let key = evaluate_key(name, cx, &self.file)?;
                    let value = evaluate_template(&entry.value, cx, &self.file)?;
                    out.insert(key, value.to_display_string(), name.span)?;
                }
                MapKey::Insert(span) => {
                    let inserted = evaluate_template(&entry.value, cx, &self.file)?;
                    let object = insert_object(&inserted, &entry.value.raw, *span, &self.file)?;
                    for (key, value) in object.iter() {
                        if matches!(value, Value::Array(_) | Value::Object(_)) {
                            return Err(MapError::InsertedValueNotScalar {
                                file: self.file.clone(),
                                span: *span,
                                key: key.to_owned(),
                                kind: value.kind_name(),
                            });
                        }
                        out.insert(key.to_owned(), value.to_display_string(), *span)?;
                    }
                }
            }
        }
        Ok(out.map)
    }
}

/// A computed key as a string: null is `''`, booleans and numbers are converted as GitHub
/// converts them, arrays and objects are refused, and the result must not be empty.
pub fn evaluate_key(
    key: &TemplateString,
    cx: &EvalContext<'_>,
    file: &Arc<str>,
) -> Result<String, MapError> {
    let value = evaluate_template(key, cx, file)?;
    if matches!(value, Value::Array(_) | Value::Object(_)) {
        return Err(MapError::KeyNotString {
            file: file.clone(),
            span: key.span,
            raw: key.raw.clone(),
            kind: value.kind_name(),
        });
    }
    let text = value.to_display_string();
    if text.is_empty() {
        return Err(MapError::EmptyKey {
            file: file.clone(),
            span: key.span,
            raw: key.raw.clone(),
        });
    }
    Ok(text)
}

/// The object an `${{ insert }}` entry at `span` merges in: `value` must be one (an
/// expression yielding null is refused too, as GitHub refuses it). `raw` is the entry's value
/// as written.
pub fn insert_object<'v>(
    value: &'v Value,
    raw: &str,
    span: Span,
    file: &Arc<str>,
) -> Result<&'v Object, MapError> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(MapError::InsertNotMapping {
            file: file.clone(),
            span,
            raw: raw.to_owned(),
            kind: other.kind_name(),
        }),
    }
}

fn evaluate_template(
    template: &TemplateString,
    cx: &EvalContext<'_>,
    file: &Arc<str>,
) -> Result<Value, MapError> {
    template
        .template
        .evaluate(cx)
        .map_err(|source| MapError::Expression {
            file: file.clone(),
            span: template.span,
            raw: template.raw.clone(),
            source,
        })
}

/// Keys collected so far, for GitHub's case-insensitive duplicate rule.
struct Keys<'f> {
    file: &'f Arc<str>,
    map: IndexMap<String, String>,
    folded: std::collections::HashSet<String>,
}

impl<'f> Keys<'f> {
    fn new(file: &'f Arc<str>) -> Keys<'f> {
        Keys {
            file,
            map: IndexMap::new(),
            folded: std::collections::HashSet::new(),
        }
    }

    fn insert(&mut self, key: String, value: String, span: Span) -> Result<(), MapError> {
        if !self.folded.insert(key.to_uppercase()) {
            return Err(MapError::Duplicate {
                file: self.file.clone(),
                span,
                key,
            });
        }
        self.map.insert(key, value);
        Ok(())
    }
}
