//! The evaluator: walks a parsed tree against the contexts, with GitHub's operator semantics,
//! property/index/wildcard rules ("filtered arrays") and the runner's memory metering.
//!
//! Must not: recurse deeper than the tree (the parser bounds it), or do IO; functions live in
//! `functions`.

use std::fmt::Display;
use std::sync::Arc;

use crate::ast::{CompareOp, InterpolatePart, Node};
use crate::memory::{EvaluationMemory, MIN_OBJECT_SIZE, MemoryCounter, POINTER_SIZE, string_size};
use crate::value::{Value, abstract_eq, abstract_gt, abstract_lt};
use crate::{EvalContext, EvalError, EvalOptions};

/// A result during evaluation. `filtered` marks an array made by `*`: indexing it maps the
/// index over its elements instead of picking one (`needs.*.result`).
#[derive(Debug, Clone)]
pub(crate) struct Evaluated {
    pub(crate) value: Value,
    pub(crate) filtered: bool,
}

impl Evaluated {
    pub(crate) fn plain(value: Value) -> Evaluated {
        Evaluated {
            value,
            filtered: false,
        }
    }
}

/// What a node's own work produced, besides the value, for memory metering.
pub(crate) struct Core {
    pub(crate) result: Evaluated,
    /// The value was taken out of context data (the runner then charges the wrapper and the
    /// conversion, and does not release the children's memory).
    pub(crate) from_data: bool,
    /// Bytes the node counted itself (filtered arrays); otherwise the value's size.
    pub(crate) bytes: Option<i64>,
}

impl Core {
    pub(crate) fn new(value: Value) -> Core {
        Core {
            result: Evaluated::plain(value),
            from_data: false,
            bytes: None,
        }
    }
    fn data(value: Value) -> Core {
        let from_data = value_is_data_primitive(&value);
        Core {
            result: Evaluated::plain(value),
            from_data,
            bytes: None,
        }
    }
    fn passthrough(result: Evaluated) -> Core {
        Core {
            result,
            from_data: false,
            bytes: None,
        }
    }
}

/// Context data wraps booleans, numbers and strings; null is a plain null in the runner.
fn value_is_data_primitive(value: &Value) -> bool {
    matches!(value, Value::Bool(_) | Value::Number(_) | Value::String(_))
}

pub(crate) struct Evaluator<'a, 'c> {
    pub(crate) cx: &'a EvalContext<'c>,
    pub(crate) options: EvalOptions,
    memory: EvaluationMemory,
    /// The expression being evaluated, for the memory error message.
    root: &'a dyn Display,
}

/// One piece of text with `${{ }}`: literal text or an expression to convert to string.
pub(crate) enum PartRef<'a> {
    Text(&'a str),
    Expr(&'a Node),
}

pub(crate) fn evaluate(
    root: &Node,
    cx: &EvalContext<'_>,
    options: EvalOptions,
) -> Result<Value, EvalError> {
    let mut evaluator = Evaluator {
        cx,
        options,
        memory: EvaluationMemory::new(options.max_memory_bytes),
        root,
    };
    Ok(evaluator.eval(root, 0)?.value)
}

/// Evaluates text with `${{ }}` (a template that is not one whole expression); `display` is
/// the expression the runner would have built, for messages.
pub(crate) fn evaluate_parts(
    display: &dyn Display,
    parts: &[PartRef<'_>],
    cx: &EvalContext<'_>,
    options: EvalOptions,
) -> Result<Value, EvalError> {
    let mut evaluator = Evaluator {
        cx,
        options,
        memory: EvaluationMemory::new(options.max_memory_bytes),
        root: display,
    };
    // The parts are the arguments of the runner's `format` call, one level below it.
    Ok(evaluator.interpolate(display, parts, 1)?.result.value)
}

/// GitHub's message for a memory limit hit while evaluating `node`.
pub(crate) fn memory_error(node: &dyn Display) -> EvalError {
    EvalError {
        message: format!(
            "The maximum allowed memory size was exceeded while evaluating the following expression: {node}"
        ),
    }
}

impl Evaluator<'_, '_> {
    /// Evaluates `node` at tree `level` (the root is 0) and charges its result.
    pub(crate) fn eval(&mut self, node: &Node, level: usize) -> Result<Evaluated, EvalError> {
        let core = self.eval_core(node, level)?;
        let value = &core.result.value;
        let trim = !core.from_data && value.is_primitive();
        let value_bytes = match value {
            Value::String(s) => string_size(s),
            _ => MIN_OBJECT_SIZE,
        };
        let core_bytes = match (core.bytes, core.from_data) {
            (Some(bytes), _) => bytes,
            (None, true) => MIN_OBJECT_SIZE,
            (None, false) => value_bytes,
        };
        let root = self.root;
        self.memory
            .add(level, core_bytes, trim)
            .map_err(|_| memory_error(root))?;
        if core.from_data {
            self.memory
                .add(level, value_bytes, false)
                .map_err(|_| memory_error(root))?;
        }
        Ok(core.result)
    }

    fn eval_core(&mut self, node: &Node, level: usize) -> Result<Core, EvalError> {
        let child = level + 1;
        match node {
            Node::Literal(value) => Ok(Core::new(value.clone())),
            Node::Wildcard => Ok(Core::new(Value::String("*".to_owned()))),
            Node::NamedValue(name) => {
                let value = self.cx.contexts.get(name).cloned().unwrap_or(Value::Null);
                Ok(Core::data(value))
            }
            Node::Index(left, right) => self.index(node, left, right, child),
            Node::Not(inner) => {
                let value = self.eval(inner, child)?.value;
                Ok(Core::new(Value::Bool(!value.is_truthy())))
            }
            Node::And(items) => {
                let mut last = Evaluated::plain(Value::Null);
                for item in items {
                    last = self.eval(item, child)?;
                    if !last.value.is_truthy() {
                        break;
                    }
                }
                Ok(Core::passthrough(last))
            }
            Node::Or(items) => {
                let mut last = Evaluated::plain(Value::Null);
                for item in items {
                    last = self.eval(item, child)?;
                    if last.value.is_truthy() {
                        break;
                    }
                }
                Ok(Core::passthrough(last))
            }
            Node::Compare(op, left, right) => {
                let left = self.eval(left, child)?.value;
                let right = self.eval(right, child)?.value;
                let result = match op {
                    CompareOp::Eq => abstract_eq(&left, &right),
                    CompareOp::Ne => !abstract_eq(&left, &right),
                    CompareOp::Lt => abstract_lt(&left, &right),
                    CompareOp::Le => abstract_eq(&left, &right) || abstract_lt(&left, &right),
                    CompareOp::Gt => abstract_gt(&left, &right),
                    CompareOp::Ge => abstract_eq(&left, &right) || abstract_gt(&left, &right),
                };
                Ok(Core::new(Value::Bool(result)))
            }
            Node::Call(call) => self.call(node, call, child),
            Node::Interpolate(parts) => {
                let parts: Vec<PartRef<'_>> = parts
                    .iter()
                    .map(|part| match part {
                        InterpolatePart::Text(text) => PartRef::Text(text),
                        InterpolatePart::Expr(expr) => PartRef::Expr(expr),
                    })
                    .collect();
                self.interpolate(node, &parts, child)
            }
        }
    }

    /// Text with `${{ }}` as the runner evaluates it: `format` over the pieces, each expression
    /// converted to a string.
    pub(crate) fn interpolate(
        &mut self,
        node: &dyn Display,
        parts: &[PartRef<'_>],
        level: usize,
    ) -> Result<Core, EvalError> {
        let mut counter = MemoryCounter::new(self.options.max_memory_bytes);
        let mut out = String::new();
        for part in parts {
            let text = match part {
                PartRef::Text(text) => (*text).to_owned(),
                PartRef::Expr(expr) => self.eval(expr, level)?.value.to_display_string(),
            };
            if !text.is_empty() {
                counter.add_str(&text).map_err(|_| memory_error(node))?;
                out.push_str(&text);
            }
        }
        Ok(Core::new(Value::String(out)))
    }

    fn index(
        &mut self,
        node: &Node,
        left: &Node,
        right: &Node,
        level: usize,
    ) -> Result<Core, EvalError> {
        let collection = self.eval(left, level)?;
        let is_wildcard = matches!(right, Node::Wildcard);
        if !matches!(collection.value, Value::Array(_) | Value::Object(_)) {
            // The index is not evaluated at all here.
            if is_wildcard {
                return Ok(filtered(Vec::new(), None));
            }
            return Ok(Core::new(Value::Null));
        }
        let index = self.eval(right, level)?.value;
        let mut counter = MemoryCounter::new(self.options.max_memory_bytes);
        let charge = |counter: &mut MemoryCounter, bytes: i64| {
            counter.add(bytes).map_err(|_| memory_error(node))
        };
        match &collection.value {
            Value::Array(items) if collection.filtered => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item {
                        Value::Object(object) => {
                            if is_wildcard {
                                for value in object.values() {
                                    out.push(value.clone());
                                    charge(&mut counter, POINTER_SIZE)?;
                                }
                            } else if let Some(value) =
                                string_index(&index).and_then(|key| object.get(&key))
                            {
                                out.push(value.clone());
                                charge(&mut counter, POINTER_SIZE)?;
                            }
                        }
                        Value::Array(nested) => {
                            if is_wildcard {
                                for value in nested.iter() {
                                    out.push(value.clone());
                                    charge(&mut counter, POINTER_SIZE)?;
                                }
                            } else if let Some(value) =
                                integer_index(&index).and_then(|i| nested.get(i))
                            {
                                out.push(value.clone());
                                charge(&mut counter, POINTER_SIZE)?;
                            }
                        }
                        // Elements that are not collections are dropped.
                        _ => {}
                    }
                }
                Ok(filtered(out, Some(counter.current())))
            }
            Value::Object(object) => {
                if is_wildcard {
                    charge(&mut counter, MIN_OBJECT_SIZE)?;
                    let mut out = Vec::with_capacity(object.len());
                    for value in object.values() {
                        out.push(value.clone());
                        charge(&mut counter, POINTER_SIZE)?;
                    }
                    return Ok(filtered(out, Some(counter.current())));
                }
                let found = string_index(&index).and_then(|key| object.get(&key).cloned());
                Ok(Core::data(found.unwrap_or(Value::Null)))
            }
            Value::Array(items) => {
                if is_wildcard {
                    charge(&mut counter, MIN_OBJECT_SIZE)?;
                    let mut out = Vec::with_capacity(items.len());
                    for value in items.iter() {
                        out.push(value.clone());
                        charge(&mut counter, POINTER_SIZE)?;
                    }
                    return Ok(filtered(out, Some(counter.current())));
                }
                let found = integer_index(&index).and_then(|i| items.get(i).cloned());
                Ok(Core::data(found.unwrap_or(Value::Null)))
            }
            _ => Ok(Core::new(Value::Null)),
        }
    }
}

fn filtered(items: Vec<Value>, bytes: Option<i64>) -> Core {
    Core {
        result: Evaluated {
            value: Value::Array(Arc::new(items)),
            filtered: true,
        },
        from_data: false,
        bytes,
    }
}

/// An object key: any primitive converted to string (`obj[1]` reads key `"1"`).
fn string_index(index: &Value) -> Option<String> {
    index.is_primitive().then(|| index.to_display_string())
}

/// An array index: converted to number and floored; negative, NaN or past `i32::MAX` is none.
fn integer_index(index: &Value) -> Option<usize> {
    let n = index.to_number();
    if n.is_nan() || n < 0.0 {
        return None;
    }
    let n = n.floor();
    if n > f64::from(i32::MAX) {
        return None;
    }
    // In range 0..=i32::MAX, so the conversion is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(n as usize)
}
