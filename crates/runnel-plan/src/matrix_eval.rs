//! Turning a workflow's `strategy.matrix` into a [`MatrixSpec`] of plain values: whole-value
//! expressions (`${{ fromJSON(...) }}`) and `${{ }}` inside matrix strings are evaluated with
//! `github`, `needs`, `vars` and `inputs`.
//!
//! Owns: that evaluation and the rule that a matrix reading `needs` waits until the needed
//! jobs' outputs are known. Must not: expand the matrix (see `matrix`).

use indexmap::IndexMap;
use runnel_expr::{EvalContext, Object, ParseOptions, Template, Value};
use runnel_workflow::{LiteralOrExpr, Matrix, MatrixRows, Spanned, TemplateString};

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
pub(crate) fn evaluate_matrix(
    matrix: &Matrix,
    cx: &EvalContext<'_>,
    outputs_known: bool,
) -> Result<MatrixSpec, MatrixEvalError> {
    if !outputs_known && matrix_mentions_needs(matrix) {
        return Err(MatrixEvalError::NeedsOutputs);
    }
    match matrix {
        Matrix::Expr(template) => {
            let value = evaluate_template(template, cx)?;
            MatrixSpec::from_value(&value).map_err(|e| MatrixEvalError::Invalid(e.to_string()))
        }
        Matrix::Map {
            dimensions,
            include,
            exclude,
            ..
        } => {
            let mut spec = MatrixSpec::default();
            for (key, dimension) in dimensions {
                let values = match &dimension.values {
                    LiteralOrExpr::Literal(values) => values
                        .value
                        .iter()
                        .map(|v| resolve_value(&v.value, cx))
                        .collect::<Result<Vec<_>, _>>()?,
                    LiteralOrExpr::Expr(template) => match evaluate_template(template, cx)? {
                        Value::Array(items) => items.to_vec(),
                        other => {
                            return Err(MatrixEvalError::Invalid(format!(
                                "matrix vector `{key}` must be a list, found {}",
                                other.kind_name()
                            )));
                        }
                    },
                };
                spec.dimensions.push((key.clone(), values));
            }
            spec.include = rows("include", include.as_ref(), cx)?;
            spec.exclude = rows("exclude", exclude.as_ref(), cx)?;
            Ok(spec)
        }
    }
}

fn rows(
    key: &str,
    rows: Option<&MatrixRows>,
    cx: &EvalContext<'_>,
) -> Result<Vec<Object>, MatrixEvalError> {
    match rows {
        None => Ok(Vec::new()),
        Some(LiteralOrExpr::Literal(rows)) => rows
            .value
            .iter()
            .map(|row| {
                let mut object = Object::new();
                for (name, value) in &row.value {
                    object.insert(name.as_str(), resolve_value(&value.value, cx)?);
                }
                Ok(object)
            })
            .collect(),
        Some(LiteralOrExpr::Expr(template)) => {
            let value = evaluate_template(template, cx)?;
            let mut wrapper = Object::new();
            wrapper.insert(key, value);
            // Reuse the shape checks of a whole-value matrix holding only this key.
            MatrixSpec::from_value(&Value::Object(wrapper.into()))
                .map(|spec| {
                    if key == "include" {
                        spec.include
                    } else {
                        spec.exclude
                    }
                })
                .map_err(|e| MatrixEvalError::Invalid(e.to_string()))
        }
    }
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
            let mut resolved = Object::new();
            for (key, item) in object.iter() {
                resolved.insert(key, resolve_value(item, cx)?);
            }
            Ok(Value::Object(resolved.into()))
        }
        other => Ok(other.clone()),
    }
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
            dimensions
                .values()
                .any(|dimension| match &dimension.values {
                    LiteralOrExpr::Literal(values) => {
                        values.value.iter().any(|v| value_mentions_needs(&v.value))
                    }
                    LiteralOrExpr::Expr(template) => mentions_needs(&template.raw),
                })
                || [include, exclude]
                    .into_iter()
                    .flatten()
                    .any(rows_mention_needs)
        }
    }
}

fn rows_mention_needs(rows: &MatrixRows) -> bool {
    match rows {
        LiteralOrExpr::Literal(rows) => {
            rows.value
                .iter()
                .any(|row: &Spanned<IndexMap<String, Spanned<Value>>>| {
                    row.value.values().any(|v| value_mentions_needs(&v.value))
                })
        }
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
