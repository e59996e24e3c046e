//! JSON at the edges of the language: `Value` from and to `serde_json`, `fromJSON` parsing and
//! `toJSON`'s pretty printing (2-space indent, insertion order, G15 numbers, Newtonsoft string
//! escaping), metered like the runner meters it.
//!
//! Must not: sort keys or print numbers any other way than `to_display_string` does.

use std::sync::Arc;

use crate::memory::{MemoryCounter, MemoryExceeded};
use crate::number::format_g15;
use crate::value::{Object, Value};

pub(crate) fn from_json(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Number(json_number(n)),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => {
            Value::Array(Arc::new(items.iter().map(from_json).collect()))
        }
        serde_json::Value::Object(map) => {
            let mut object = Object::new();
            for (key, value) in map {
                object.insert(key.clone(), from_json(value));
            }
            Value::Object(Arc::new(object))
        }
    }
}

/// JSON numbers as doubles (integers through the integer, so large ones round the same way).
fn json_number(n: &serde_json::Number) -> f64 {
    if let Some(i) = n.as_i64() {
        // Precision loss above 2^53 is the same as the runner's conversion to double.
        #[allow(clippy::cast_precision_loss)]
        return i as f64;
    }
    if let Some(u) = n.as_u64() {
        #[allow(clippy::cast_precision_loss)]
        return u as f64;
    }
    n.as_f64().unwrap_or(f64::NAN)
}

pub(crate) fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => number_to_json(*n),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Object(object) => serde_json::Value::Object(
            object
                .iter()
                .map(|(key, value)| (key.to_owned(), to_json(value)))
                .collect(),
        ),
    }
}

fn number_to_json(n: f64) -> serde_json::Value {
    if n.is_nan() || n.is_infinite() {
        return serde_json::Value::String(format_g15(n));
    }
    // Integral values print without `.0`; 2^53 bounds the exactly representable integers.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= EXACT {
        #[allow(clippy::cast_possible_truncation)]
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// `fromJSON`: the first JSON value of `text`. Like the runner's default (Newtonsoft) reader,
/// whatever follows that value is not read (`fromJSON('1 2')` is 1); empty text is an error.
pub(crate) fn parse_from_json(text: &str) -> Result<Value, String> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    match values.next() {
        Some(Ok(json)) => Ok(from_json(&json)),
        Some(Err(err)) => Err(format!("Error parsing fromJson: {err}")),
        None => Err("Error parsing fromJson: no JSON value".to_owned()),
    }
}

/// `toJSON`: writes `value` piece by piece; every piece is charged to `counter` as the runner's
/// `ToJson` does, so oversized output fails the same way.
pub(crate) fn to_pretty_json(
    value: &Value,
    counter: &mut MemoryCounter,
) -> Result<String, MemoryExceeded> {
    let mut writer = PrettyWriter {
        out: String::new(),
        counter,
    };
    writer.value(value, 0, Position::Top)?;
    Ok(writer.out)
}

/// Where a value sits; decides the text written before it.
#[derive(Clone, Copy)]
enum Position {
    Top,
    ArrayItem { first: bool },
    ObjectValue,
}

struct PrettyWriter<'a> {
    out: String,
    counter: &'a mut MemoryCounter,
}

impl PrettyWriter<'_> {
    fn piece(&mut self, piece: &str) -> Result<(), MemoryExceeded> {
        self.counter.add_str(piece)?;
        self.out.push_str(piece);
        Ok(())
    }

    fn prefixed(&mut self, text: &str, level: usize, position: Position) -> String {
        match position {
            Position::Top => text.to_owned(),
            Position::ObjectValue => format!(": {text}"),
            Position::ArrayItem { first } => {
                format!("{}\n{}{text}", if first { "" } else { "," }, indent(level))
            }
        }
    }

    /// `level` is the number of enclosing collections.
    fn value(
        &mut self,
        value: &Value,
        level: usize,
        position: Position,
    ) -> Result<(), MemoryExceeded> {
        match value {
            Value::Array(items) if !items.is_empty() => {
                let start = self.prefixed("[", level, position);
                self.piece(&start)?;
                for (i, item) in items.iter().enumerate() {
                    self.value(item, level + 1, Position::ArrayItem { first: i == 0 })?;
                }
                self.piece(&format!("\n{}]", indent(level)))
            }
            Value::Object(object) if !object.is_empty() => {
                let start = self.prefixed("{", level, position);
                self.piece(&start)?;
                for (i, (key, item)) in object.iter().enumerate() {
                    let comma = if i == 0 { "" } else { "," };
                    let key = format!("{comma}\n{}{}", indent(level + 1), json_string(key));
                    self.piece(&key)?;
                    self.value(item, level + 1, Position::ObjectValue)?;
                }
                self.piece(&format!("\n{}}}", indent(level)))
            }
            _ => {
                let text = scalar_json(value);
                let text = self.prefixed(&text, level, position);
                self.piece(&text)
            }
        }
    }
}

fn indent(level: usize) -> String {
    " ".repeat(level * 2)
}

fn scalar_json(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(true) => "true".to_owned(),
        Value::Bool(false) => "false".to_owned(),
        Value::Number(n) => format_g15(*n),
        Value::String(s) => json_string(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// A JSON string literal escaped as Newtonsoft's `JsonConvert.ToString` does: control chars,
/// `"` and `\`, plus U+0085, U+2028 and U+2029, with lowercase `\u` hex.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
