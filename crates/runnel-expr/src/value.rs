//! `Value` and `Object`: the data of the expression language, with GitHub's truthiness, string
//! conversion and the coercing comparisons behind `==`, `<`, `contains`.
//!
//! Must not: know about syntax trees or evaluation order; number text rules live in `number`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use indexmap::IndexMap;

use crate::number;

/// A value of the expression language: GitHub's JSON with IEEE doubles.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every number is a double, as in GitHub (JSON integers included).
    Number(f64),
    String(String),
    /// Shared: `==` on arrays compares identity, not contents.
    Array(Arc<Vec<Value>>),
    /// Shared: `==` on objects compares identity, not contents.
    Object(Arc<Object>),
}

/// An object that keeps insertion order and looks keys up case-insensitively (as GitHub's
/// context dictionaries do). Inserting a key that differs only in case replaces the value and
/// keeps the first spelling and position.
#[derive(Debug, Clone, Default)]
pub struct Object {
    /// Folded key -> (key as first inserted, value). The folded index keeps lookups O(1).
    entries: IndexMap<String, (String, Value)>,
    /// Keys are compared exactly (see [`Object::new_case_sensitive`]).
    case_sensitive: bool,
}

impl Object {
    pub fn new() -> Object {
        Object::default()
    }
    /// An object whose keys are compared exactly: GitHub's `env` context on Linux and macOS,
    /// where `env.Foo` and `env.FOO` are two variables (the runner builds it as a
    /// case-sensitive dictionary except on Windows).
    pub fn new_case_sensitive() -> Object {
        Object {
            entries: IndexMap::new(),
            case_sensitive: true,
        }
    }
    /// Adds or replaces `key` (compared case-insensitively unless the object is
    /// case-sensitive; a replaced key keeps its first spelling and position).
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        let folded = if self.case_sensitive {
            key.clone()
        } else {
            fold_case(&key).into_owned()
        };
        match self.entries.get_mut(&folded) {
            Some(slot) => slot.1 = value,
            None => {
                self.entries.insert(folded, (key, value));
            }
        }
    }
    /// Case-insensitive lookup (exact for a case-sensitive object).
    pub fn get(&self, key: &str) -> Option<&Value> {
        let entry = if self.case_sensitive {
            self.entries.get(key)
        } else {
            self.entries.get(fold_case(key).as_ref())
        };
        entry.map(|(_, value)| value)
    }
    /// Entries in insertion order, keys as first inserted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries
            .values()
            .map(|(key, value)| (key.as_str(), value))
    }
    /// Values in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.values().map(|(_, value)| value)
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl FromIterator<(String, Value)> for Object {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Object {
        let mut object = Object::new();
        for (key, value) in iter {
            object.insert(key, value);
        }
        object
    }
}

impl Value {
    /// Converts JSON (keys in document order) to a value.
    pub fn from_json(json: &serde_json::Value) -> Value {
        crate::json::from_json(json)
    }
    /// JSON for presentation: NaN and the infinities become the strings "NaN", "Infinity",
    /// "-Infinity"; -0 becomes 0.
    pub fn to_json(&self) -> serde_json::Value {
        crate::json::to_json(self)
    }
    /// GitHub's truthiness: `null`, `false`, `0`, `-0`, `NaN` and `''` are falsy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => !(*n == 0.0 || n.is_nan()),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }
    /// GitHub's conversion to string (numbers as .NET G15; arrays `Array`, objects `Object`).
    pub fn to_display_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(true) => "true".to_owned(),
            Value::Bool(false) => "false".to_owned(),
            Value::Number(n) => number::format_g15(*n),
            Value::String(s) => s.clone(),
            Value::Array(_) | Value::Object(_) => self.kind_name().to_owned(),
        }
    }
    /// GitHub's `toJSON` pretty printing.
    pub fn to_pretty_json(&self) -> String {
        let mut unlimited = crate::memory::MemoryCounter::unlimited();
        crate::json::to_pretty_json(self, &mut unlimited).unwrap_or_default()
    }
    /// `Null`, `Boolean`, `Number`, `String`, `Array`, `Object`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "Null",
            Value::Bool(_) => "Boolean",
            Value::Number(_) => "Number",
            Value::String(_) => "String",
            Value::Array(_) => "Array",
            Value::Object(_) => "Object",
        }
    }
    /// Null, boolean, number or string.
    pub(crate) fn is_primitive(&self) -> bool {
        !matches!(self, Value::Array(_) | Value::Object(_))
    }
    /// GitHub's conversion to number (`ConvertToNumber`): collections are NaN.
    pub(crate) fn to_number(&self) -> f64 {
        match self {
            Value::Null => 0.0,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => *n,
            Value::String(s) => number::parse_number(s),
            Value::Array(_) | Value::Object(_) => f64::NAN,
        }
    }
}

/// Folds one char the way .NET's ordinal-ignore-case comparison does: simple upper-casing,
/// leaving the dotless `ı` alone (GitHub's languageservices does the same) and keeping chars
/// whose upper case is more than one char (`ß`).
fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    if c == 'ı' {
        return c;
    }
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// One char of a folding key: the upper-case fold, with ASCII then lowered again. Two chars get
/// the same key exactly when their upper-case folds match, and lowercase ASCII (most context
/// keys) maps to itself, so folding usually borrows.
fn key_char(c: char) -> char {
    let upper = fold_char(c);
    if upper.is_ascii() {
        upper.to_ascii_lowercase()
    } else {
        upper
    }
}

/// A form of `s` under which ordinal ignore-case equal strings are identical (for lookups and
/// substring tests); borrowed when `s` is already in that form.
pub(crate) fn fold_case(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().map(key_char).collect())
    }
}

/// Ordinal ignore-case equality.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

/// Ordinal ignore-case order: folded chars compared as UTF-16 code units, as .NET does.
fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    let units = |s: &str| -> Vec<u16> {
        let mut out = Vec::with_capacity(s.len());
        let mut buf = [0u16; 2];
        for c in s.chars() {
            out.extend_from_slice(fold_char(c).encode_utf16(&mut buf));
        }
        out
    };
    units(a).cmp(&units(b))
}

/// A value after GitHub's `CoerceTypes`: borrowed where no conversion happened.
#[derive(Clone, Copy)]
enum Coerced<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Str(&'a str),
    Array(&'a Arc<Vec<Value>>),
    Object(&'a Arc<Object>),
}

impl<'a> Coerced<'a> {
    fn of(value: &'a Value) -> Coerced<'a> {
        match value {
            Value::Null => Coerced::Null,
            Value::Bool(b) => Coerced::Bool(*b),
            Value::Number(n) => Coerced::Number(*n),
            Value::String(s) => Coerced::Str(s),
            Value::Array(a) => Coerced::Array(a),
            Value::Object(o) => Coerced::Object(o),
        }
    }
    fn kind(self) -> u8 {
        match self {
            Coerced::Null => 0,
            Coerced::Bool(_) => 1,
            Coerced::Number(_) => 2,
            Coerced::Str(_) => 3,
            Coerced::Array(_) => 4,
            Coerced::Object(_) => 5,
        }
    }
    fn to_number(self) -> f64 {
        match self {
            Coerced::Null => 0.0,
            Coerced::Bool(b) => f64::from(u8::from(b)),
            Coerced::Number(n) => n,
            Coerced::Str(s) => number::parse_number(s),
            Coerced::Array(_) | Coerced::Object(_) => f64::NAN,
        }
    }
}

/// JavaScript-like abstract coercion, except collections are never converted: number vs string
/// parses the string; a boolean or null side becomes a number and the rules run again.
fn coerce<'a>(left: &'a Value, right: &'a Value) -> (Coerced<'a>, Coerced<'a>) {
    let (mut l, mut r) = (Coerced::of(left), Coerced::of(right));
    // At most two rounds: each round turns a boolean/null side into a number.
    for _ in 0..3 {
        if l.kind() == r.kind() {
            break;
        }
        match (l, r) {
            (Coerced::Number(_), Coerced::Str(_)) => {
                r = Coerced::Number(r.to_number());
                break;
            }
            (Coerced::Str(_), Coerced::Number(_)) => {
                l = Coerced::Number(l.to_number());
                break;
            }
            (Coerced::Bool(_) | Coerced::Null, _) => l = Coerced::Number(l.to_number()),
            (_, Coerced::Bool(_) | Coerced::Null) => r = Coerced::Number(r.to_number()),
            _ => break,
        }
    }
    (l, r)
}

/// GitHub's `==`.
pub(crate) fn abstract_eq(left: &Value, right: &Value) -> bool {
    match coerce(left, right) {
        (Coerced::Null, Coerced::Null) => true,
        (Coerced::Number(a), Coerced::Number(b)) => a == b,
        (Coerced::Str(a), Coerced::Str(b)) => eq_ignore_case(a, b),
        (Coerced::Bool(a), Coerced::Bool(b)) => a == b,
        (Coerced::Array(a), Coerced::Array(b)) => Arc::ptr_eq(a, b),
        (Coerced::Object(a), Coerced::Object(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// GitHub's `>`.
pub(crate) fn abstract_gt(left: &Value, right: &Value) -> bool {
    match coerce(left, right) {
        // NaN compares false both ways, as IEEE `>` already does.
        (Coerced::Number(a), Coerced::Number(b)) => a > b,
        (Coerced::Str(a), Coerced::Str(b)) => cmp_ignore_case(a, b) == Ordering::Greater,
        (Coerced::Bool(a), Coerced::Bool(b)) => a && !b,
        _ => false,
    }
}

/// GitHub's `<`.
pub(crate) fn abstract_lt(left: &Value, right: &Value) -> bool {
    match coerce(left, right) {
        (Coerced::Number(a), Coerced::Number(b)) => a < b,
        (Coerced::Str(a), Coerced::Str(b)) => cmp_ignore_case(a, b) == Ordering::Less,
        (Coerced::Bool(a), Coerced::Bool(b)) => !a && b,
        _ => false,
    }
}
