//! The function table (names, arity, which are special) and the functions themselves:
//! `contains`, `startsWith`, `endsWith`, `format`, `join`, `toJSON`, `fromJSON`, `case`,
//! `hashFiles` and the status functions, with the runner's argument evaluation order.
//!
//! Must not: do IO; `hashFiles` and job status come from the `Host`.

use crate::JobStatus;
use crate::ast::{Call, Node};
use crate::eval::{Core, Evaluator, memory_error};
use crate::json::{parse_from_json, to_pretty_json};
use crate::memory::MemoryCounter;
use crate::value::{Value, abstract_eq, fold_case};
use crate::{EvalError, ParseOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    Case,
    Contains,
    EndsWith,
    Format,
    Join,
    StartsWith,
    ToJson,
    FromJson,
    HashFiles,
    Success,
    Failure,
    Cancelled,
    Always,
}

/// Name, minimum and maximum argument count (255 is the runner's `Byte.MaxValue`).
const TABLE: &[(Function, &str, usize, usize)] = &[
    (Function::Case, "case", 3, 255),
    (Function::Contains, "contains", 2, 2),
    (Function::EndsWith, "endsWith", 2, 2),
    (Function::Format, "format", 1, 255),
    (Function::Join, "join", 1, 2),
    (Function::StartsWith, "startsWith", 2, 2),
    (Function::ToJson, "toJson", 1, 1),
    (Function::FromJson, "fromJson", 1, 1),
    (Function::HashFiles, "hashFiles", 1, 255),
    (Function::Success, "success", 0, 0),
    (Function::Failure, "failure", 0, 0),
    (Function::Cancelled, "cancelled", 0, 0),
    (Function::Always, "always", 0, 0),
];

impl Function {
    /// The function called `name` (any case), if `options` allow it here.
    pub(crate) fn lookup(name: &str, options: &ParseOptions) -> Option<Function> {
        let function = TABLE
            .iter()
            .find(|(_, known, _, _)| known.eq_ignore_ascii_case(name))
            .map(|(function, ..)| *function)?;
        let allowed = match function {
            Function::HashFiles => options.hash_files,
            f if f.is_status() => options.status_functions,
            _ => true,
        };
        allowed.then_some(function)
    }

    /// At job level GitHub lets `success` and `failure` name the needed jobs they test
    /// (`success('build', 'test')`); elsewhere they take no arguments.
    pub(crate) fn arity(self, options: &ParseOptions) -> (usize, usize) {
        if options.job_status_arguments && matches!(self, Function::Success | Function::Failure) {
            return (0, 255);
        }
        TABLE
            .iter()
            .find(|(function, ..)| *function == self)
            .map_or((0, 0), |(_, _, min, max)| (*min, *max))
    }

    pub(crate) fn is_status(self) -> bool {
        matches!(
            self,
            Function::Success | Function::Failure | Function::Cancelled | Function::Always
        )
    }
}

fn eval_error(message: impl Into<String>) -> EvalError {
    EvalError {
        message: message.into(),
    }
}

impl Evaluator<'_, '_> {
    /// Evaluates a call; arguments are evaluated at `level`, lazily where the runner is lazy.
    pub(crate) fn call(
        &mut self,
        node: &Node,
        call: &Call,
        level: usize,
    ) -> Result<Core, EvalError> {
        let args = call.args.as_slice();
        let value = match call.function {
            Function::Contains => Value::Bool(self.contains(args, level)?),
            Function::StartsWith | Function::EndsWith => {
                Value::Bool(self.starts_or_ends_with(call.function, args, level)?)
            }
            Function::Format => return self.format(node, args, level),
            Function::Join => self.join(node, args, level)?,
            Function::ToJson => {
                let value = self.arg(args, 0, level)?;
                let mut counter = MemoryCounter::new(self.options.max_memory_bytes);
                let json = to_pretty_json(&value, &mut counter).map_err(|_| memory_error(node))?;
                Value::String(json)
            }
            Function::FromJson => {
                let text = self.arg(args, 0, level)?.to_display_string();
                let value = parse_from_json(&text).map_err(eval_error)?;
                // Parsed data is context data: primitives count as wrapped, like a context value.
                let from_data =
                    matches!(value, Value::Bool(_) | Value::Number(_) | Value::String(_));
                let mut core = Core::new(value);
                core.from_data = from_data;
                return Ok(core);
            }
            Function::Case => return self.case(args, level),
            Function::HashFiles => self.hash_files(args, level)?,
            Function::Success => {
                let jobs = self.job_names(args, level)?;
                Value::Bool(self.cx.host.success(&jobs))
            }
            Function::Failure => {
                let jobs = self.job_names(args, level)?;
                Value::Bool(self.cx.host.failure(&jobs))
            }
            Function::Cancelled => Value::Bool(self.cx.host.job_status() == JobStatus::Cancelled),
            Function::Always => Value::Bool(true),
        };
        Ok(Core::new(value))
    }

    /// The job ids named by a job-level `success(...)`/`failure(...)`, as strings.
    fn job_names(&mut self, args: &[Node], level: usize) -> Result<Vec<String>, EvalError> {
        let mut jobs = Vec::with_capacity(args.len());
        for node in args {
            jobs.push(self.eval(node, level)?.value.to_display_string());
        }
        Ok(jobs)
    }

    /// Argument `i` (arity was checked at parse time; a missing one reads as null).
    fn arg(&mut self, args: &[Node], i: usize, level: usize) -> Result<Value, EvalError> {
        match args.get(i) {
            Some(node) => Ok(self.eval(node, level)?.value),
            None => Ok(Value::Null),
        }
    }

    fn contains(&mut self, args: &[Node], level: usize) -> Result<bool, EvalError> {
        let haystack = self.arg(args, 0, level)?;
        match &haystack {
            h if h.is_primitive() => {
                let needle = self.arg(args, 1, level)?;
                if !needle.is_primitive() {
                    return Ok(false);
                }
                let haystack = fold_case(&h.to_display_string()).into_owned();
                Ok(haystack.contains(fold_case(&needle.to_display_string()).as_ref()))
            }
            Value::Array(items) if !items.is_empty() => {
                let needle = self.arg(args, 1, level)?;
                Ok(items.iter().any(|item| abstract_eq(&needle, item)))
            }
            _ => Ok(false),
        }
    }

    fn starts_or_ends_with(
        &mut self,
        function: Function,
        args: &[Node],
        level: usize,
    ) -> Result<bool, EvalError> {
        let text = self.arg(args, 0, level)?;
        if !text.is_primitive() {
            return Ok(false);
        }
        let affix = self.arg(args, 1, level)?;
        if !affix.is_primitive() {
            return Ok(false);
        }
        let text = fold_case(&text.to_display_string()).into_owned();
        let affix = fold_case(&affix.to_display_string()).into_owned();
        Ok(if function == Function::StartsWith {
            text.starts_with(&affix)
        } else {
            text.ends_with(&affix)
        })
    }

    fn join(&mut self, node: &Node, args: &[Node], level: usize) -> Result<Value, EvalError> {
        let items = self.arg(args, 0, level)?;
        match &items {
            Value::Array(items) if !items.is_empty() => {
                let mut counter = MemoryCounter::new(self.options.max_memory_bytes);
                let mut out = String::new();
                // The separator is only evaluated when there is something to separate.
                let separator = if items.len() > 1 && args.len() > 1 {
                    let separator = self.arg(args, 1, level)?;
                    if separator.is_primitive() {
                        separator.to_display_string()
                    } else {
                        ",".to_owned()
                    }
                } else {
                    ",".to_owned()
                };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        counter
                            .add_str(&separator)
                            .map_err(|_| memory_error(node))?;
                        out.push_str(&separator);
                    }
                    let text = item.to_display_string();
                    counter.add_str(&text).map_err(|_| memory_error(node))?;
                    out.push_str(&text);
                }
                Ok(Value::String(out))
            }
            items if items.is_primitive() => Ok(Value::String(items.to_display_string())),
            _ => Ok(Value::String(String::new())),
        }
    }

    fn case(&mut self, args: &[Node], level: usize) -> Result<Core, EvalError> {
        let Some((default, pairs)) = args.split_last() else {
            return Err(eval_error("case requires an odd number of arguments"));
        };
        if args.len().is_multiple_of(2) {
            return Err(eval_error("case requires an odd number of arguments"));
        }
        for pair in pairs.chunks(2) {
            let [predicate, result] = pair else { break };
            match self.eval(predicate, level)?.value {
                Value::Bool(true) => {
                    let chosen = self.eval(result, level)?;
                    return Ok(Core {
                        result: chosen,
                        from_data: false,
                        bytes: None,
                    });
                }
                Value::Bool(false) => {}
                _ => {
                    return Err(eval_error(
                        "case predicate must evaluate to a boolean value",
                    ));
                }
            }
        }
        let chosen = self.eval(default, level)?;
        Ok(Core {
            result: chosen,
            from_data: false,
            bytes: None,
        })
    }

    fn hash_files(&mut self, args: &[Node], level: usize) -> Result<Value, EvalError> {
        let mut follow_symlinks = false;
        let mut patterns = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().enumerate() {
            let text = self.eval(arg, level)?.value.to_display_string();
            if i == 0 && text.starts_with("--") {
                if text.eq_ignore_ascii_case("--follow-symbolic-links") {
                    follow_symlinks = true;
                    continue;
                }
                return Err(eval_error(format!(
                    "Invalid glob option {text}, avaliable option: '--follow-symbolic-links'."
                )));
            }
            patterns.push(text);
        }
        self.cx
            .host
            .hash_files(follow_symlinks, &patterns)
            .map(Value::String)
            .map_err(eval_error)
    }

    /// `format(fmt, args...)`: `{N}` placeholders, `{{`/`}}` escapes. The format string is
    /// checked left to right first; arguments are evaluated afterwards, once each and only if
    /// referenced, exactly as the runner does.
    fn format(&mut self, node: &Node, args: &[Node], level: usize) -> Result<Core, EvalError> {
        let format = self.arg(args, 0, level)?.to_display_string();
        let arg_count = args.len().saturating_sub(1);
        let segments = parse_format(&format, arg_count)?;
        let mut counter = MemoryCounter::new(self.options.max_memory_bytes);
        let mut cache: Vec<Option<Value>> = vec![None; arg_count];
        let mut out = String::new();
        for segment in &segments {
            if let Segment::Text(text) = segment {
                counter.add_str(text).map_err(|_| memory_error(node))?;
            }
        }
        for segment in segments {
            match segment {
                Segment::Text(text) => out.push_str(&text),
                Segment::Arg { index, specifiers } => {
                    let value = match cache.get(index).cloned().flatten() {
                        Some(value) => value,
                        None => {
                            let value = self.arg(args, index + 1, level)?;
                            if let Some(slot) = cache.get_mut(index) {
                                *slot = Some(value.clone());
                            }
                            value
                        }
                    };
                    if !specifiers.is_empty() {
                        return Err(eval_error(format!(
                            "The format specifiers '{specifiers}' are not valid for objects of type '{}'",
                            value.kind_name()
                        )));
                    }
                    let text = value.to_display_string();
                    if !text.is_empty() {
                        counter.add_str(&text).map_err(|_| memory_error(node))?;
                    }
                    out.push_str(&text);
                }
            }
        }
        Ok(Core::new(Value::String(out)))
    }
}

enum Segment {
    Text(String),
    Arg { index: usize, specifiers: String },
}

/// Splits a format string into literal text and argument references, failing on the first
/// problem in reading order ("invalid" or "references more arguments").
fn parse_format(format: &str, arg_count: usize) -> Result<Vec<Segment>, EvalError> {
    let invalid = || eval_error(format!("The following format string is invalid: {format}"));
    let chars: Vec<char> = format.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    // Brace positions, consumed in order: `index` only moves forward, so the scan stays linear
    // (searching from `index` every time would be quadratic on long brace-heavy strings).
    let positions = |brace: char| -> Vec<usize> {
        chars
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == brace)
            .map(|(i, _)| i)
            .collect()
    };
    let (lefts, rights) = (positions('{'), positions('}'));
    let (mut next_left, mut next_right) = (0usize, 0usize);
    let text = |from: usize, to: usize| -> String {
        chars.get(from..to).unwrap_or_default().iter().collect()
    };
    let mut segments = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        while lefts.get(next_left).is_some_and(|&p| p < index) {
            next_left += 1;
        }
        while rights.get(next_right).is_some_and(|&p| p < index) {
            next_right += 1;
        }
        let left = lefts.get(next_left).copied();
        let right = rights.get(next_right).copied();
        match (left, right) {
            (Some(l), r) if r.is_none_or(|r| r > l) => {
                if at(l + 1) == Some('{') {
                    // `{{`: keep one brace.
                    segments.push(Segment::Text(text(index, l + 1)));
                    index = l + 2;
                    continue;
                }
                let Some(r) = r else { return Err(invalid()) };
                let digits_end = (l + 1..chars.len())
                    .find(|&i| !at(i).is_some_and(|c| c.is_ascii_digit()))
                    .unwrap_or(chars.len());
                // At least one digit and the index fits a byte, as the runner requires.
                let arg_index = text(l + 1, digits_end).parse::<u8>().ok();
                let (Some(arg_index), true) = (arg_index, r > l + 1) else {
                    return Err(invalid());
                };
                let Some((specifiers, close)) = read_specifiers(&chars, digits_end) else {
                    return Err(invalid());
                };
                let arg_index = usize::from(arg_index);
                if arg_index >= arg_count {
                    return Err(eval_error(format!(
                        "The following format string references more arguments than were supplied: {format}"
                    )));
                }
                if l > index {
                    segments.push(Segment::Text(text(index, l)));
                }
                segments.push(Segment::Arg {
                    index: arg_index,
                    specifiers,
                });
                index = close + 1;
            }
            (_, Some(r)) => {
                if at(r + 1) != Some('}') {
                    return Err(invalid());
                }
                // `}}`: keep one brace.
                segments.push(Segment::Text(text(index, r + 1)));
                index = r + 2;
            }
            _ => {
                segments.push(Segment::Text(text(index, chars.len())));
                break;
            }
        }
    }
    segments.retain(|segment| !matches!(segment, Segment::Text(t) if t.is_empty()));
    Ok(segments)
}

/// After `{N`: either `}` directly, or `:` and specifiers up to an unescaped `}`. Returns the
/// specifiers and the index of the closing brace.
fn read_specifiers(chars: &[char], start: usize) -> Option<(String, usize)> {
    match chars.get(start) {
        Some('}') => return Some((String::new(), start)),
        Some(':') => {}
        _ => return None,
    }
    let mut specifiers = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i)? {
            '}' if chars.get(i + 1) == Some(&'}') => {
                specifiers.push('}');
                i += 2;
            }
            '}' => return Some((specifiers, i)),
            c => {
                specifiers.push(*c);
                i += 1;
            }
        }
    }
}
