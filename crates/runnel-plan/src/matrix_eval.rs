//! Turning a workflow's `strategy.matrix` into a [`MatrixSpec`] of plain values: whole-value
//! expressions (`${{ fromJSON(...) }}`), `${{ }}` inside matrix strings, computed keys and
//! `${{ insert }}` are evaluated with `github`, `needs`, `vars` and `inputs`.
//!
//! Owns: that evaluation and the rule that a matrix reading `needs` waits until the needed
//! jobs' outputs are known. Must not: expand the matrix (see `matrix`).

use std::sync::Arc;

use runnel_expr::{EvalContext, Object, ParseOptions, Template, Value};
use runnel_workflow::{
    LiteralOrExpr, MapError, MapKey, Matrix, MatrixEntry, MatrixRows, Span, TemplateString,
    evaluate_key, insert_object,
};

use crate::matrix::MatrixSpec;

/// Why a matrix could not be turned into values.
pub(crate) enum MatrixEvalError {
    /// It reads `needs` and the needed jobs have not produced outputs yet.
    NeedsOutputs,
    /// Evaluation failed or produced the wrong shape; the text says where.
    Invalid(String),
}

/// Contexts a matrix may read (semantics.md 2.1, `jobs.<id>.strategy`).
fn parse_options() -> ParseOptions {
    ParseOptions {
        named_values: ["github", "needs", "vars", "inputs"]
            .iter()
            .map(|n| (*n).to_owned())
            .collect(),
        status_functions: false,
        hash_files: false,
        job_status_arguments: false,
    }
}

/// Evaluates the matrix. With `outputs_known` false, any expression mentioning `needs`
/// yields [`MatrixEvalError::NeedsOutputs`] instead of being evaluated against empty outputs.
/// `file` names the workflow in messages about computed keys.
pub(crate) fn evaluate_matrix(
    matrix: &Matrix,
    cx: &EvalContext<'_>,
    outputs_known: bool,
    file: &Arc<str>,
) -> Result<MatrixSpec, MatrixEvalError> {
    if !outputs_known && matrix_mentions_needs(matrix) {
        return Err(MatrixEvalError::NeedsOutputs);
    }
    let value = match matrix {
        Matrix::Expr(template) => evaluate_template(template, cx)?,
        Matrix::Map {
            dimensions,
            include,
            exclude,
            ..
        } => {
            // Built as one mapping, as GitHub's template engine builds it: a computed key or
            // an inserted one may be `include`/`exclude` too, and the shape checks are
            // those of a whole-value matrix.
            let mut object = object_from_entries(dimensions, cx, file)?;
            for (key, rows) in [("include", include), ("exclude", exclude)] {
                let Some(rows) = rows else {
                    continue;
                };
                let (value, span) = rows_value(rows, cx, file)?;
                add_key(&mut object, key.to_owned(), value, span, file)?;
            }
            Value::Object(object.into())
        }
    };
    MatrixSpec::from_value(&value).map_err(|e| MatrixEvalError::Invalid(e.to_string()))
}

/// One matrix mapping (the matrix itself or an `include`/`exclude` row) as an object: keys
/// computed, `${{ insert }}` merged in, values resolved, keys unique without case.
fn object_from_entries(
    entries: &[MatrixEntry],
    cx: &EvalContext<'_>,
    file: &Arc<str>,
) -> Result<Object, MatrixEvalError> {
    let mut object = Object::new();
    for entry in entries {
        match &entry.key {
            MapKey::Name(name) => {
                let key = evaluate_key(name, cx, file).map_err(invalid)?;
                let value = resolve_value(&entry.value.value, cx)?;
                add_key(&mut object, key, value, name.span, file)?;
            }
            MapKey::Insert(span) => {
                let value = resolve_value(&entry.value.value, cx)?;
                let raw = match &entry.value.value {
                    Value::String(text) => text.clone(),
                    _ => "a mapping".to_owned(),
                };
                let inserted = insert_object(&value, &raw, *span, file).map_err(invalid)?;
                for (key, item) in inserted.iter() {
                    add_key(&mut object, key.to_owned(), item.clone(), *span, file)?;
                }
            }
        }
    }
    Ok(object)
}

/// `include`/`exclude` as a value for [`MatrixSpec::from_value`], with where it was written.
fn rows_value(
    rows: &MatrixRows,
    cx: &EvalContext<'_>,
    file: &Arc<str>,
) -> Result<(Value, Span), MatrixEvalError> {
    match rows {
        LiteralOrExpr::Literal(rows) => {
            let items = rows
                .value
                .iter()
                .map(|row| {
                    object_from_entries(&row.value, cx, file).map(|o| Value::Object(o.into()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((Value::Array(items.into()), rows.span))
        }
        LiteralOrExpr::Expr(template) => Ok((evaluate_template(template, cx)?, template.span)),
    }
}

/// Adds `key` unless the object has it already (GitHub's "'X' is already defined").
fn add_key(
    object: &mut Object,
    key: String,
    value: Value,
    span: Span,
    file: &Arc<str>,
) -> Result<(), MatrixEvalError> {
    if object.get(&key).is_some() {
        return Err(invalid(MapError::Duplicate {
            file: file.clone(),
            span,
            key,
        }));
    }
    object.insert(key, value);
    Ok(())
}

fn invalid(error: MapError) -> MatrixEvalError {
    MatrixEvalError::Invalid(error.to_string())
}

fn evaluate_template(
    template: &TemplateString,
    cx: &EvalContext<'_>,
) -> Result<Value, MatrixEvalError> {
    template
        .template
        .evaluate(cx)
        .map_err(|e| MatrixEvalError::Invalid(format!("`{}`: {e}", template.raw)))
}

/// Evaluates `${{ }}` in strings inside a literal matrix value, recursively.
fn resolve_value(value: &Value, cx: &EvalContext<'_>) -> Result<Value, MatrixEvalError> {
    match value {
        Value::String(text) if text.contains("${{") => {
            let template = Template::parse(text, &parse_options())
                .map_err(|e| MatrixEvalError::Invalid(format!("`{text}`: {e}")))?;
            template
                .evaluate(cx)
                .map_err(|e| MatrixEvalError::Invalid(format!("`{text}`: {e}")))
        }
        Value::Array(items) => Ok(Value::Array(
            items
                .iter()
                .map(|item| resolve_value(item, cx))
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        )),
        Value::Object(object) => {
            // Keys inside a matrix value are evaluated too, as GitHub's template engine does:
            // `${{ insert }}` merges the mapping its value evaluates to, other `${{ }}` keys
            // are computed; a key defined twice after that is an error.
            let mut resolved = Object::new();
            let mut add = |key: String, item: Value| {
                if resolved.get(&key).is_some() {
                    return Err(MatrixEvalError::Invalid(format!(
                        "'{key}' is already defined in a matrix value"
                    )));
                }
                resolved.insert(key, item);
                Ok(())
            };
            for (key, item) in object.iter() {
                let item = resolve_value(item, cx)?;
                if is_insert_directive(key) {
                    let Value::Object(inserted) = &item else {
                        return Err(MatrixEvalError::Invalid(format!(
                            "`{key}` in a matrix value must give a mapping, got {}",
                            item.kind_name()
                        )));
                    };
                    for (name, value) in inserted.iter() {
                        add(name.to_owned(), value.clone())?;
                    }
                } else if key.contains("${{") {
                    let name = resolve_value(&Value::String(key.to_owned()), cx)?;
                    add(name.to_display_string(), item)?;
                } else {
                    add(key.to_owned(), item)?;
                }
            }
            Ok(Value::Object(resolved.into()))
        }
        other => Ok(other.clone()),
    }
}

/// A key that is the `${{ insert }}` directive alone (any spacing inside the braces).
fn is_insert_directive(key: &str) -> bool {
    key.trim()
        .strip_prefix("${{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .is_some_and(|inner| inner.trim() == "insert")
}

fn matrix_mentions_needs(matrix: &Matrix) -> bool {
    match matrix {
        Matrix::Expr(template) => mentions_needs(&template.raw),
        Matrix::Map {
            dimensions,
            include,
            exclude,
            ..
        } => {
            entries_mention_needs(dimensions)
                || [include, exclude]
                    .into_iter()
                    .flatten()
                    .any(rows_mention_needs)
        }
    }
}

fn entries_mention_needs(entries: &[MatrixEntry]) -> bool {
    entries
        .iter()
        .any(|entry| mentions_needs(entry.key.raw()) || value_mentions_needs(&entry.value.value))
}

fn rows_mention_needs(rows: &MatrixRows) -> bool {
    match rows {
        LiteralOrExpr::Literal(rows) => rows
            .value
            .iter()
            .any(|row| entries_mention_needs(&row.value)),
        LiteralOrExpr::Expr(template) => mentions_needs(&template.raw),
    }
}

fn value_mentions_needs(value: &Value) -> bool {
    match value {
        Value::String(text) => mentions_needs(text),
        Value::Array(items) => items.iter().any(value_mentions_needs),
        Value::Object(object) => object.iter().any(|(_, item)| value_mentions_needs(item)),
        _ => false,
    }
}

/// A textual check is enough here: `needs` is a reserved context name, and a false positive
/// only postpones expansion to the moment the outputs are known.
fn mentions_needs(text: &str) -> bool {
    text.contains("${{") && text.to_ascii_lowercase().contains("needs")
}
