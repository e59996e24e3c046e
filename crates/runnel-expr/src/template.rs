//! `${{ }}` inside workflow strings (the runner's `TemplateReader.ParseScalar`) and `if:`
//! conditions (`ConvertToIfCondition`: bare expressions, implicit `success() &&`).
//!
//! Must not: know YAML; callers pass the scalar's text and place it in their own positions.

use std::fmt;

use crate::ast::{Call, InterpolatePart, Node};
use crate::eval::{PartRef, evaluate_parts};
use crate::functions::Function;
use crate::{
    EvalContext, EvalError, EvalOptions, Expr, MAX_DEPTH, MAX_LENGTH, ParseError, ParseOptions,
    Value, parse,
};

/// A YAML scalar that may contain `${{ }}`.
#[derive(Debug, Clone)]
pub enum Template {
    /// No expression in it (also `${{ 'text' }}`, which the runner reads as the literal text).
    Literal(String),
    /// The whole value is one `${{ expr }}`: evaluates to a typed value.
    Whole(Expr),
    /// Literal text mixed with expressions: evaluates to a string.
    Interpolated(Vec<TemplatePart>),
}

#[derive(Debug, Clone)]
pub enum TemplatePart {
    /// Text copied as is.
    Literal(String),
    /// An expression converted to string (G15 numbers, `Array`/`Object` for collections).
    Expr(Expr),
}

/// Why a template was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// GitHub's message (for a bad expression, the parser's message about the trimmed text).
    pub message: String,
    /// 0-based char offset inside the scalar where the failing expression (or `${{`) starts
    /// plus the offset inside it.
    pub offset: usize,
}

const OPEN: &str = "${{";

impl Template {
    /// Splits `text` at `${{ }}` (closing `}}` inside `'...'` strings do not count) and parses
    /// each expression, trimmed, with `options`. Only an exact `${{ expr }}` (no text around,
    /// not even spaces) is [`Template::Whole`].
    pub fn parse(text: &str, options: &ParseOptions) -> Result<Template, TemplateError> {
        let Some(first) = text.find(OPEN) else {
            return Ok(Template::Literal(text.to_owned()));
        };
        let bytes = text.as_bytes();
        let char_offset = |byte: usize| text.get(..byte).map_or(0, |s| s.chars().count());
        let mut parts: Vec<TemplatePart> = Vec::new();
        // The trimmed source of each expression, for the runner's literal and length rules.
        let mut sources: Vec<&str> = Vec::new();
        let mut i = 0;
        let mut next_open = Some(first);
        while i < bytes.len() {
            match next_open {
                Some(open) if open == i => {
                    // Find `}}`, skipping `'...'` strings (a `''` escape toggles twice).
                    let mut end = None;
                    let mut in_string = false;
                    let mut j = i + OPEN.len();
                    while j < bytes.len() {
                        let b = bytes.get(j).copied().unwrap_or_default();
                        if b == b'\'' {
                            in_string = !in_string;
                        } else if !in_string && b == b'}' && bytes.get(j - 1) == Some(&b'}') {
                            end = Some(j);
                            break;
                        }
                        j += 1;
                    }
                    let Some(end) = end else {
                        return Err(TemplateError {
                            message: "The expression is not closed. An unescaped ${{ sequence \
                                      was found, but the closing }} sequence was not found."
                                .to_owned(),
                            offset: char_offset(open),
                        });
                    };
                    let raw = text.get(open + OPEN.len()..end - 1).unwrap_or_default();
                    let trimmed = raw.trim();
                    if trimmed.is_empty() {
                        return Err(TemplateError {
                            message: "An expression was expected".to_owned(),
                            offset: char_offset(open),
                        });
                    }
                    let trimmed_at = open + OPEN.len() + (raw.len() - raw.trim_start().len());
                    let expr =
                        parse(trimmed, options).map_err(|err: ParseError| TemplateError {
                            message: err.message,
                            offset: char_offset(trimmed_at) + err.offset,
                        })?;
                    parts.push(TemplatePart::Expr(expr));
                    sources.push(trimmed);
                    i = end + 1;
                    next_open = text
                        .get(i..)
                        .and_then(|rest| rest.find(OPEN))
                        .map(|p| p + i);
                }
                Some(open) if i < open => {
                    parts.push(TemplatePart::Literal(
                        text.get(i..open).unwrap_or_default().to_owned(),
                    ));
                    i = open;
                }
                _ => {
                    parts.push(TemplatePart::Literal(
                        text.get(i..).unwrap_or_default().to_owned(),
                    ));
                    break;
                }
            }
        }
        if let ([TemplatePart::Expr(_)], [source]) = (parts.as_slice(), sources.as_slice()) {
            // `${{ 'text' }}` is the runner's way to write literal text (even `${{`).
            if let Some(literal) = expression_string(source) {
                return Ok(Template::Literal(literal));
            }
        }
        if let [TemplatePart::Expr(_)] = parts.as_slice()
            && let Some(TemplatePart::Expr(expr)) = parts.pop()
        {
            return Ok(Template::Whole(expr));
        }
        check_format_limits(&parts, &sources)?;
        Ok(Template::Interpolated(parts))
    }

    /// Evaluates with the runner's limit for workflow values ([`EvalOptions::TEMPLATE`]).
    pub fn evaluate(&self, cx: &EvalContext<'_>) -> Result<Value, EvalError> {
        match self {
            Template::Literal(text) => Ok(Value::String(text.clone())),
            Template::Whole(expr) => expr.evaluate_with(cx, EvalOptions::TEMPLATE),
            Template::Interpolated(parts) => {
                let refs = part_refs(parts);
                evaluate_parts(
                    &InterpolatedDisplay(parts),
                    &refs,
                    cx,
                    EvalOptions::TEMPLATE,
                )
            }
        }
    }
}

fn part_refs(parts: &[TemplatePart]) -> Vec<PartRef<'_>> {
    parts
        .iter()
        .filter_map(|part| match part {
            TemplatePart::Literal(text) => Some(PartRef::Text(text)),
            TemplatePart::Expr(expr) => expr.root.as_ref().map(PartRef::Expr),
        })
        .collect()
}

/// The runner's `IsExpressionString`: the trimmed expression is exactly one string literal.
fn expression_string(source: &str) -> Option<String> {
    let mut out = String::new();
    let mut in_string = false;
    for (i, c) in source.chars().enumerate() {
        if c == '\'' {
            in_string = !in_string;
            if in_string && i != 0 {
                out.push(c);
            }
        } else if !in_string {
            return None;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// The runner rewrites interpolation to `format('text{0}', expr, ...)` and re-parses it, so the
/// expression limits apply to that rewrite: one more level of depth and its whole length.
fn check_format_limits(parts: &[TemplatePart], sources: &[&str]) -> Result<(), TemplateError> {
    let deepest = parts
        .iter()
        .filter_map(|part| match part {
            TemplatePart::Expr(expr) => Some(expr.depth),
            TemplatePart::Literal(_) => None,
        })
        .max()
        .unwrap_or(0);
    if deepest + 1 > MAX_DEPTH {
        return Err(TemplateError {
            message: format!("Exceeded max expression depth {MAX_DEPTH}"),
            offset: 0,
        });
    }
    let units = |s: &str| s.encode_utf16().count();
    let mut length = units("format('')");
    let mut index = 0usize;
    for part in parts {
        match part {
            TemplatePart::Literal(text) => {
                length += text
                    .chars()
                    .map(|c| {
                        if matches!(c, '\'' | '{' | '}') {
                            2
                        } else {
                            c.len_utf16()
                        }
                    })
                    .sum::<usize>();
            }
            TemplatePart::Expr(_) => {
                length += units(&format!("{{{index}}}"));
                index += 1;
            }
        }
    }
    length += sources
        .iter()
        .map(|source| 2 + units(source))
        .sum::<usize>();
    if length > MAX_LENGTH {
        return Err(TemplateError {
            message: format!("Exceeded max expression length {MAX_LENGTH}"),
            offset: 0,
        });
    }
    Ok(())
}

/// Prints interpolated parts the way the runner rewrote them, for messages.
struct InterpolatedDisplay<'a>(&'a [TemplatePart]);

impl fmt::Display for InterpolatedDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = interpolate_node(self.0);
        write!(f, "{node}")
    }
}

fn interpolate_node(parts: &[TemplatePart]) -> Node {
    Node::Interpolate(
        parts
            .iter()
            .filter_map(|part| match part {
                TemplatePart::Literal(text) => Some(InterpolatePart::Text(text.clone())),
                TemplatePart::Expr(expr) => expr.root.clone().map(InterpolatePart::Expr),
            })
            .collect(),
    )
}

/// An `if:` condition after GitHub's rules: whole `${{ }}` or bare expression; interpolated text
/// is a string (truthy unless empty); empty means `success()`; no status function means
/// `success() && (...)`.
#[derive(Debug, Clone)]
pub struct IfCondition {
    /// The condition to evaluate, with the implicit `success() &&` already applied.
    expr: Expr,
    /// Whether the written condition calls a status function.
    has_status_function: bool,
}

impl IfCondition {
    /// `options.status_functions` is forced on: `if:` always allows them.
    pub fn parse(text: &str, options: &ParseOptions) -> Result<IfCondition, TemplateError> {
        let mut options = options.clone();
        options.status_functions = true;
        let condition: Option<(Node, usize)> = match Template::parse(text, &options)? {
            // A plain string is itself the expression (`if: github.ref == 'x'`), and so is the
            // text of `${{ 'a string' }}`.
            Template::Literal(source) => {
                if source.trim().is_empty() {
                    None
                } else {
                    let expr = parse(&source, &options).map_err(|err| TemplateError {
                        message: err.message,
                        offset: err.offset,
                    })?;
                    expr.root.map(|root| (root, expr.depth))
                }
            }
            Template::Whole(expr) => expr.root.map(|root| (root, expr.depth)),
            Template::Interpolated(parts) => {
                let depth = 1 + parts
                    .iter()
                    .filter_map(|part| match part {
                        TemplatePart::Expr(expr) => Some(expr.depth),
                        TemplatePart::Literal(_) => None,
                    })
                    .max()
                    .unwrap_or(0);
                Some((interpolate_node(&parts), depth))
            }
        };
        let success = || {
            Node::Call(Call {
                function: Function::Success,
                name: "success".to_owned(),
                args: Vec::new(),
            })
        };
        let Some((node, depth)) = condition else {
            return Ok(IfCondition {
                expr: Expr {
                    root: Some(success()),
                    depth: 1,
                },
                has_status_function: false,
            });
        };
        if node.has_status_function() {
            return Ok(IfCondition {
                expr: Expr {
                    root: Some(node),
                    depth,
                },
                has_status_function: true,
            });
        }
        // `success() && (cond)` re-parsed by the runner flattens a top-level `&&` of `cond`.
        let (items, depth) = match node {
            Node::And(items) => (
                std::iter::once(success()).chain(items).collect(),
                depth.max(2),
            ),
            node => (vec![success(), node], depth + 1),
        };
        Ok(IfCondition {
            expr: Expr {
                root: Some(Node::And(items)),
                depth,
            },
            has_status_function: false,
        })
    }

    /// Evaluates with the runner's limit for workflow values and tests truthiness.
    pub fn evaluate(&self, cx: &EvalContext<'_>) -> Result<bool, EvalError> {
        Ok(self
            .expr
            .evaluate_with(cx, EvalOptions::TEMPLATE)?
            .is_truthy())
    }

    /// True if the written condition calls `success`, `failure`, `cancelled` or `always`
    /// (then no implicit `success() &&` was added and the job or step is considered even after
    /// a failure).
    pub fn has_status_function(&self) -> bool {
        self.has_status_function
    }

    /// The condition as evaluated (with the implicit `success() &&`).
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}
