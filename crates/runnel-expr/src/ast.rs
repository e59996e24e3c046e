//! The parse tree and its canonical text (the runner's `ConvertToExpression`, used in memory
//! errors and `Display`).
//!
//! Invariant: a tree built by the parser is at most `MAX_DEPTH` deep, so every recursive walk
//! here and in the evaluator is bounded.

use std::fmt;

use crate::functions::Function;
use crate::number::format_g15;
use crate::value::{Value, eq_ignore_case};

#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// `null`, `true`, a number, a string, or a property name after `.`.
    Literal(Value),
    /// `*` in `a.*` / `a[*]`; only ever the second child of `Index`.
    Wildcard,
    /// A context name, as written.
    NamedValue(String),
    /// `a.b`, `a[b]`, `a.*`.
    Index(Box<Node>, Box<Node>),
    Not(Box<Node>),
    /// Nested `&&` are flattened into one node, as in the runner (this keeps long chains shallow).
    And(Vec<Node>),
    Or(Vec<Node>),
    Compare(CompareOp, Box<Node>, Box<Node>),
    Call(Call),
    /// Text with `${{ }}` inside an `if:` (the runner builds `format('..{0}..', expr)`).
    Interpolate(Vec<InterpolatePart>),
}

#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) function: Function,
    /// As written, for messages.
    pub(crate) name: String,
    pub(crate) args: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(crate) enum InterpolatePart {
    Text(String),
    Expr(Node),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

impl Node {
    pub(crate) fn has_status_function(&self) -> bool {
        match self {
            Node::Literal(_) | Node::Wildcard | Node::NamedValue(_) => false,
            Node::Index(left, right) | Node::Compare(_, left, right) => {
                left.has_status_function() || right.has_status_function()
            }
            Node::Not(inner) => inner.has_status_function(),
            Node::And(items) | Node::Or(items) => items.iter().any(Node::has_status_function),
            Node::Call(call) => {
                call.function.is_status() || call.args.iter().any(Node::has_status_function)
            }
            Node::Interpolate(parts) => parts.iter().any(|part| match part {
                InterpolatePart::Text(_) => false,
                InterpolatePart::Expr(node) => node.has_status_function(),
            }),
        }
    }

    pub(crate) fn collect_named_values(&self, names: &mut Vec<String>) {
        match self {
            Node::Literal(_) | Node::Wildcard => {}
            Node::NamedValue(name) => {
                if !names.iter().any(|known| eq_ignore_case(known, name)) {
                    names.push(name.clone());
                }
            }
            Node::Index(left, right) | Node::Compare(_, left, right) => {
                left.collect_named_values(names);
                right.collect_named_values(names);
            }
            Node::Not(inner) => inner.collect_named_values(names),
            Node::And(items) | Node::Or(items) => {
                items
                    .iter()
                    .for_each(|item| item.collect_named_values(names));
            }
            Node::Call(call) => call
                .args
                .iter()
                .for_each(|arg| arg.collect_named_values(names)),
            Node::Interpolate(parts) => {
                for part in parts {
                    if let InterpolatePart::Expr(node) = part {
                        node.collect_named_values(names);
                    }
                }
            }
        }
    }
}

/// True for `[A-Za-z_][A-Za-z0-9_-]*` (the runner's `IsLegalKeyword`).
pub(crate) fn is_legal_keyword(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphabetic() || first == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        _ => false,
    }
}

/// A literal as it would be written in an expression: strings quoted with `''` escapes.
pub(crate) fn literal_text(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(true) => "true".to_owned(),
        Value::Bool(false) => "false".to_owned(),
        Value::Number(n) => format_g15(*n),
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        Value::Array(_) | Value::Object(_) => value.kind_name().to_owned(),
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[Node], separator: &str) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Literal(value) => f.write_str(&literal_text(value)),
            Node::Wildcard => f.write_str("*"),
            Node::NamedValue(name) => f.write_str(name),
            Node::Index(left, right) => match right.as_ref() {
                Node::Wildcard => write!(f, "{left}.*"),
                Node::Literal(Value::String(key)) if is_legal_keyword(key) => {
                    write!(f, "{left}.{key}")
                }
                _ => write!(f, "{left}[{right}]"),
            },
            Node::Not(inner) => write!(f, "!{inner}"),
            Node::And(items) => {
                f.write_str("(")?;
                join(f, items, " && ")?;
                f.write_str(")")
            }
            Node::Or(items) => {
                f.write_str("(")?;
                join(f, items, " || ")?;
                f.write_str(")")
            }
            Node::Compare(op, left, right) => write!(f, "({left} {} {right})", op.symbol()),
            Node::Call(call) => {
                write!(f, "{}(", call.name)?;
                join(f, &call.args, ", ")?;
                f.write_str(")")
            }
            Node::Interpolate(parts) => {
                // The runner's own rewrite: format('text{0}text', expr, ...).
                let mut format = String::new();
                let mut args = Vec::new();
                for part in parts {
                    match part {
                        InterpolatePart::Text(text) => format.push_str(
                            &text
                                .replace('\'', "''")
                                .replace('{', "{{")
                                .replace('}', "}}"),
                        ),
                        InterpolatePart::Expr(node) => {
                            format.push_str(&format!("{{{}}}", args.len()));
                            args.push(node);
                        }
                    }
                }
                write!(f, "format('{format}'")?;
                for arg in args {
                    write!(f, ", {arg}")?;
                }
                f.write_str(")")
            }
        }
    }
}
