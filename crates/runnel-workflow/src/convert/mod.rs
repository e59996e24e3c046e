//! The node tree → the [`Workflow`] model, with every problem collected as a diagnostic.
//!
//! Owns: the conversion driver and the shared helpers for reading typed values from nodes
//! (strings, templates, booleans, numbers, `if:` conditions, env maps) with positions, including
//! the position of an expression error inside a scalar.
//! Must not: stop at the first problem; each helper reports and returns `None` so the caller
//! carries on with the next key.

mod contexts;
mod cron;
mod graph;
mod job;
mod step;
mod suggest;
mod triggers;
mod workflow;

use std::sync::Arc;

use indexmap::IndexMap;
use runnel_expr::{IfCondition, Object, Template, TemplateError, Value};
use runnel_yaml::{Node, NodeKind, ScalarValue, Style};

use crate::LoadResult;
use crate::diagnostic::{Diagnostic, Severity};
use crate::model::{
    Env, IfExpr, LiteralOrExpr, MapKey, Span, Spanned, TemplateMap, TemplateMapEntry,
    TemplateString,
};

/// Where the keys of other mappings may be computed, for the error about one that is not.
const COMPUTED_KEYS_HINT: &str = "keys may hold `${{ }}` or be `${{ insert }}` only in `env:`, \
    a step's `with:`, `container.env`, `services.<id>.env`, `strategy.matrix`, `credentials:` \
    and a job's `defaults.run`; write this key literally";

/// Whether a mapping has a key that is an expression or `${{ insert }}`.
pub(crate) fn has_computed_key(node: &Node) -> bool {
    let NodeKind::Mapping(entries) = &node.kind else {
        return false;
    };
    entries
        .iter()
        .any(|(key, _)| key.as_scalar().is_some_and(|s| s.text.contains("${{")))
}

/// Why a mapping refuses a key that is an expression or `${{ insert }}`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ComputedKey {
    /// GitHub's template reader refuses it too (no contexts where the mapping stands).
    Refused,
    /// A service id: GitHub's parser reads only a literal string as one.
    ServiceId,
    /// GitHub's parser accepts it with the contexts of the place (the mapping's) and
    /// evaluates it at run time; runnel does not evaluate computed keys there yet
    /// (`tests/computed-keys/EXCEPTIONS.md`).
    NotYet(Place),
}

impl ComputedKey {
    fn refusal(self, key: &str) -> (String, String) {
        match self {
            ComputedKey::Refused => (
                "expressions are not allowed in mapping keys here".to_owned(),
                COMPUTED_KEYS_HINT.to_owned(),
            ),
            ComputedKey::ServiceId => (
                "a service id must be a literal string, not an expression or `${{ insert }}`"
                    .to_owned(),
                "GitHub reads service ids literally; list each service under its own id".to_owned(),
            ),
            ComputedKey::NotYet(_) => (
                format!(
                    "runnel does not evaluate computed keys in `{key}` yet (GitHub evaluates \
                     them at run time)"
                ),
                "write this key literally".to_owned(),
            ),
        }
    }
}

/// The `${{ insert }}` directive, recognised as GitHub's template reader recognises it: an
/// expression whose trimmed text is the word `insert`, alone or followed by whitespace.
/// `None` when `text` holds no directive; `Err` with GitHub's message when the directive is
/// embedded in other text or given arguments.
fn insert_directive(text: &str) -> Option<Result<(), String>> {
    const DIRECTIVE: &str = "insert";
    let mut rest = text;
    let mut offset = 0;
    while let Some(open) = rest.find("${{") {
        let inner_start = open + 3;
        let close = closing_braces(rest.get(inner_start..)?)? + inner_start;
        let inner = rest.get(inner_start..close)?.trim();
        let is_directive = inner.strip_prefix(DIRECTIVE).is_some_and(|after| {
            after.is_empty() || after.starts_with(|c: char| c.is_whitespace())
        });
        if is_directive {
            let whole = offset + open == 0 && close + 2 == rest.len();
            if !whole {
                return Some(Err(format!(
                    "The directive '{DIRECTIVE}' is not allowed in this context. Directives \
                     are not supported for expressions that are embedded within a string. \
                     Directives are only supported when the entire value is an expression."
                )));
            }
            let arguments = directive_arguments(inner.get(DIRECTIVE.len()..).unwrap_or(""));
            if arguments > 0 {
                return Some(Err(format!(
                    "Exactly 0 parameter(s) were expected following the directive \
                     '{DIRECTIVE}'. Actual parameter count: {arguments}"
                )));
            }
            return Some(Ok(()));
        }
        offset += close + 2;
        rest = rest.get(close + 2..)?;
    }
    None
}

/// Where the `}}` closing an expression starts in `text` (the text after `${{`); `}}` inside
/// `'...'` strings does not count.
fn closing_braces(text: &str) -> Option<usize> {
    let mut in_string = false;
    let mut previous = '\0';
    for (index, c) in text.char_indices() {
        if c == '\'' {
            in_string = !in_string;
        } else if !in_string && c == '}' && previous == '}' {
            return Some(index - 1);
        }
        previous = c;
    }
    None
}

/// How many whitespace-separated arguments follow a directive (whitespace inside `'...'` or
/// parentheses does not separate).
fn directive_arguments(text: &str) -> usize {
    let mut count = 0;
    let mut in_argument = false;
    let mut in_string = false;
    let mut parens = 0usize;
    for c in text.chars() {
        if c.is_whitespace() && !in_string && parens == 0 {
            in_argument = false;
            continue;
        }
        if !in_argument {
            count += 1;
            in_argument = true;
        }
        match c {
            '\'' => in_string = !in_string,
            '(' if !in_string => parens += 1,
            ')' if !in_string => parens = parens.saturating_sub(1),
            _ => {}
        }
    }
    count
}

/// Literal keys seen so far in one mapping, compared without case as GitHub's template reader
/// compares them (`A` and `a`, or `A` and `${{ 'A' }}`, are the same key).
#[derive(Default)]
pub(crate) struct LiteralKeys {
    /// Folded key, key as written, position.
    seen: Vec<(String, String, Span)>,
}

impl LiteralKeys {
    /// False (after reporting it) when `key` is a literal key already seen.
    pub(crate) fn is_new(&mut self, cx: &mut Converter<'_>, key: &MapKey) -> bool {
        let Some(text) = key.literal() else {
            return true;
        };
        let folded = text.to_uppercase();
        let Some((_, first_raw, first)) = self.seen.iter().find(|(seen, ..)| *seen == folded)
        else {
            self.seen.push((folded, key.raw().to_owned(), key.span()));
            return true;
        };
        // The YAML reader already reports a key written exactly as before.
        if first_raw != key.raw() {
            cx.error_hint(
                key.span(),
                format!("`{text}` is already defined"),
                format!(
                    "keys are compared without case; `{first_raw}` is at line {}, column {}",
                    first.line, first.col
                ),
            );
        }
        false
    }
}

pub(crate) use contexts::Place;
pub(crate) use step::{StepRules, steps_with};

pub(crate) fn load(file: &str, text: &str) -> LoadResult {
    let (workflow, diagnostics) = load_with(file, text, "workflow", workflow::convert);
    LoadResult {
        workflow,
        diagnostics,
    }
}

/// Parses `text` and converts its root with `convert`; shared by workflows and action
/// metadata so both report YAML errors, empty files and ordering the same way. `what` names
/// the kind of file in the "is empty" error.
pub(crate) fn load_with<T>(
    file: &str,
    text: &str,
    what: &str,
    convert: impl FnOnce(&mut Converter<'_>, &Node) -> Option<T>,
) -> (Option<T>, Vec<Diagnostic>) {
    let mut converter = Converter {
        file,
        diagnostics: Vec::new(),
    };
    let parsed = runnel_yaml::parse(text);
    for error in parsed.errors {
        converter.push(Severity::Error, error.span, error.message, error.hint);
    }
    let value = match &parsed.root {
        Some(root) => convert(&mut converter, root),
        None => {
            if !converter.has_errors() {
                converter.error(
                    Span { line: 1, col: 1 },
                    format!("the {what} file is empty"),
                );
            }
            None
        }
    };
    let mut diagnostics = converter.diagnostics;
    // Source order reads best; the sort is stable so problems at one spot keep their order.
    diagnostics.sort_by_key(|d| (d.line, d.col));
    (value, diagnostics)
}

pub(crate) struct Converter<'s> {
    file: &'s str,
    diagnostics: Vec<Diagnostic>,
}

impl Converter<'_> {
    fn push(&mut self, severity: Severity, span: Span, message: String, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line: span.line,
            col: span.col,
            severity,
            message,
            hint,
        });
    }

    pub(crate) fn error(&mut self, span: Span, message: impl Into<String>) {
        self.push(Severity::Error, span, message.into(), None);
    }

    pub(crate) fn error_hint(&mut self, span: Span, message: impl Into<String>, hint: String) {
        self.push(Severity::Error, span, message.into(), Some(hint));
    }

    pub(crate) fn warning(&mut self, span: Span, message: impl Into<String>) {
        self.push(Severity::Warning, span, message.into(), None);
    }

    fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Reports a key that is not one of `known`, with the closest known key as a hint.
    pub(crate) fn unknown_key(&mut self, key: &Node, name: &str, known: &[&str], what: &str) {
        let hint = match suggest::closest(name, known) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("valid keys are: {}", known.join(", ")),
        };
        self.error_hint(key.span, format!("unknown key `{name}` in {what}"), hint);
    }

    pub(crate) fn wrong_type(&mut self, node: &Node, key: &str, expected: &str) {
        self.error(
            node.span,
            format!("`{key}` must be {expected}, found {}", node.kind_name()),
        );
    }

    /// The entries of a mapping whose keys are strings; reports other shapes and keys that are
    /// not plain strings (expressions are not allowed in keys).
    pub(crate) fn mapping<'n>(
        &mut self,
        node: &'n Node,
        key: &str,
    ) -> Option<Vec<(&'n str, &'n Node, &'n Node)>> {
        self.mapping_with(node, key, ComputedKey::Refused)
    }

    /// [`Converter::mapping`] for a mapping whose computed keys get another error than the
    /// general one (see [`ComputedKey`]).
    pub(crate) fn mapping_with<'n>(
        &mut self,
        node: &'n Node,
        key: &str,
        computed: ComputedKey,
    ) -> Option<Vec<(&'n str, &'n Node, &'n Node)>> {
        let NodeKind::Mapping(entries) = &node.kind else {
            self.wrong_type(node, key, "a mapping");
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        for (key_node, value) in entries {
            match key_node.as_scalar() {
                Some(scalar) if scalar.value != ScalarValue::Null || !scalar.text.is_empty() => {
                    if scalar.text.contains("${{") {
                        // Where GitHub evaluates such keys, its own refusal comes first (a
                        // context not allowed there, a misused `insert`).
                        if let ComputedKey::NotYet(place) = computed
                            && self.map_key(key_node, place).is_none()
                        {
                            continue;
                        }
                        let (message, hint) = computed.refusal(key);
                        self.error_hint(key_node.span, message, hint);
                        continue;
                    }
                    out.push((scalar.text.as_str(), key_node, value));
                }
                Some(_) => self.error(key_node.span, "a mapping key must not be empty"),
                None => self.error(key_node.span, "a mapping key must be a string"),
            }
        }
        Some(out)
    }

    /// A scalar as a string, converting booleans and numbers the way GitHub does; null is `''`.
    pub(crate) fn scalar_string(&mut self, node: &Node, key: &str) -> Option<String> {
        let Some(scalar) = node.as_scalar() else {
            self.wrong_type(node, key, "a string");
            return None;
        };
        Some(match scalar.value {
            ScalarValue::Null => String::new(),
            ScalarValue::Bool(b) => b.to_string(),
            ScalarValue::Number(n) => Value::Number(n).to_display_string(),
            ScalarValue::String => scalar.text.clone(),
        })
    }

    /// A string that must not be empty and takes no expressions (ids, `uses`, names of things).
    pub(crate) fn plain_string(&mut self, node: &Node, key: &str) -> Option<Spanned<String>> {
        let value = self.scalar_string(node, key)?;
        if value.is_empty() {
            self.error(node.span, format!("`{key}` must not be empty"));
            return None;
        }
        if value.contains("${{") {
            self.error(node.span, format!("expressions are not allowed in `{key}`"));
            return None;
        }
        Some(Spanned {
            value,
            span: node.span,
        })
    }

    /// A string or a list of strings, without expressions (filters, `types`, `needs`).
    pub(crate) fn string_list(&mut self, node: &Node, key: &str) -> Option<Vec<Spanned<String>>> {
        match &node.kind {
            NodeKind::Scalar(_) => self.plain_string(node, key).map(|s| vec![s]),
            NodeKind::Sequence(items) => Some(
                items
                    .iter()
                    .filter_map(|item| self.plain_string(item, key))
                    .collect(),
            ),
            NodeKind::Mapping(_) => {
                self.wrong_type(node, key, "a string or a list of strings");
                None
            }
        }
    }

    /// A string value that may contain `${{ }}`, checked against the contexts of `place`.
    pub(crate) fn template(
        &mut self,
        node: &Node,
        key: &str,
        place: Place,
    ) -> Option<TemplateString> {
        let raw = self.scalar_string(node, key)?;
        Some(self.template_from(node, raw, place))
    }

    /// Like [`Converter::template`] for a value that must not be empty.
    pub(crate) fn non_empty_template(
        &mut self,
        node: &Node,
        key: &str,
        place: Place,
    ) -> Option<TemplateString> {
        let template = self.template(node, key, place)?;
        if template.raw.is_empty() {
            self.error(node.span, format!("`{key}` must not be empty"));
            return None;
        }
        Some(template)
    }

    pub(crate) fn template_from(
        &mut self,
        node: &Node,
        raw: String,
        place: Place,
    ) -> TemplateString {
        let template = if raw.contains("${{") {
            match Template::parse(&raw, &place.options()) {
                Ok(template) => template,
                Err(error) => {
                    self.expression_error(node, &error, place);
                    Template::Literal(raw.clone())
                }
            }
        } else {
            Template::Literal(raw.clone())
        };
        TemplateString {
            raw,
            template,
            span: node.span,
        }
    }

    fn expression_error(&mut self, node: &Node, error: &TemplateError, place: Place) {
        let span = self.position_in_scalar(node, error.offset);
        let hint = error
            .message
            .starts_with("Unrecognized named-value")
            .then(|| format!("available here: {}", place.contexts().join(", ")));
        self.push(Severity::Error, span, error.message.clone(), hint);
    }

    /// `if:` with GitHub's rules (bare expression or `${{ }}`, implicit `success() &&`).
    pub(crate) fn if_condition(&mut self, node: &Node, place: Place) -> Option<IfExpr> {
        let source = self.scalar_string(node, "if")?;
        match IfCondition::parse(&source, &place.options()) {
            Ok(condition) => Some(IfExpr {
                source,
                condition,
                span: node.span,
            }),
            Err(error) => {
                self.expression_error(node, &error, place);
                None
            }
        }
    }

    /// A boolean or an expression (`continue-on-error`, `fail-fast`, `cancel-in-progress`).
    pub(crate) fn bool_or_expr(
        &mut self,
        node: &Node,
        key: &str,
        place: Place,
    ) -> Option<LiteralOrExpr<bool>> {
        let literal = |value: &ScalarValue| match value {
            ScalarValue::Bool(b) => Some(*b),
            _ => None,
        };
        self.literal_or_expr(node, key, place, "a boolean or an expression", literal)
    }

    /// A number or an expression (`timeout-minutes`, `max-parallel`).
    pub(crate) fn number_or_expr(
        &mut self,
        node: &Node,
        key: &str,
        place: Place,
    ) -> Option<LiteralOrExpr<f64>> {
        let literal = |value: &ScalarValue| match value {
            ScalarValue::Number(n) => Some(*n),
            _ => None,
        };
        self.literal_or_expr(node, key, place, "a number or an expression", literal)
    }

    /// A scalar that `literal` accepts, or a string holding `${{ }}`; else a type error
    /// saying `expected`.
    fn literal_or_expr<T>(
        &mut self,
        node: &Node,
        key: &str,
        place: Place,
        expected: &str,
        literal: impl Fn(&ScalarValue) -> Option<T>,
    ) -> Option<LiteralOrExpr<T>> {
        if let Some(scalar) = node.as_scalar() {
            if let Some(value) = literal(&scalar.value) {
                return Some(LiteralOrExpr::Literal(Spanned {
                    value,
                    span: node.span,
                }));
            }
            if scalar.value == ScalarValue::String && scalar.text.contains("${{") {
                return Some(LiteralOrExpr::Expr(self.template_from(
                    node,
                    scalar.text.clone(),
                    place,
                )));
            }
        }
        self.wrong_type(node, key, expected);
        None
    }

    /// A plain boolean (no expressions), e.g. `required:`.
    pub(crate) fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
        match node.as_scalar().map(|s| s.value) {
            Some(ScalarValue::Bool(value)) => Some(value),
            _ => {
                self.wrong_type(node, key, "a boolean");
                None
            }
        }
    }

    /// Maps whose keys are plain names (`jobs.<id>.outputs`): name → string template.
    pub(crate) fn string_map(
        &mut self,
        node: &Node,
        key: &str,
        place: Place,
    ) -> IndexMap<String, TemplateString> {
        let mut map = IndexMap::new();
        if node.is_null() {
            return map;
        }
        for (name, _, value) in self.mapping(node, key).unwrap_or_default() {
            if let Some(template) = self.template(value, name, place) {
                map.insert(name.to_owned(), template);
            }
        }
        map
    }

    /// `env:`-like maps, where GitHub's template engine also evaluates keys: a key may hold
    /// `${{ }}` (checked against `key_place`, the contexts of the mapping itself) or be
    /// `${{ insert }}`; values are string templates checked against `value_place`.
    pub(crate) fn template_map(
        &mut self,
        node: &Node,
        key: &str,
        key_place: Place,
        value_place: Place,
    ) -> Env {
        let mut map = TemplateMap {
            entries: Vec::new(),
            file: Arc::from(self.file),
        };
        if node.is_null() {
            return map;
        }
        let NodeKind::Mapping(entries) = &node.kind else {
            self.wrong_type(node, key, "a mapping");
            return map;
        };
        let mut literal_keys = LiteralKeys::default();
        for (key_node, value) in entries {
            let Some(map_key) = self.map_key(key_node, key_place) else {
                continue;
            };
            if !literal_keys.is_new(self, &map_key) {
                continue;
            }
            if matches!(map_key, MapKey::Insert(_)) && value.as_scalar().is_none() {
                self.error_hint(
                    value.span,
                    format!("`${{{{ insert }}}}` in `{key}` takes an expression, not {}", value.kind_name()),
                    "write the entries under the key itself, or compute them: `${{ insert }}: ${{ fromJSON(...) }}`".to_owned(),
                );
                continue;
            }
            let what = map_key.raw().to_owned();
            if let Some(value) = self.template(value, &what, value_place) {
                map.entries.push(TemplateMapEntry {
                    key: map_key,
                    value,
                });
            }
        }
        map
    }

    /// A key of a mapping where GitHub's template engine evaluates keys: literal text, text
    /// with `${{ }}` (parsed with the contexts of `place`) or the `${{ insert }}` directive.
    pub(crate) fn map_key(&mut self, key_node: &Node, place: Place) -> Option<MapKey> {
        let Some(scalar) = key_node.as_scalar() else {
            self.error(key_node.span, "a mapping key must be a string");
            return None;
        };
        if scalar.value == ScalarValue::Null && scalar.text.is_empty() {
            self.error(key_node.span, "a mapping key must not be empty");
            return None;
        }
        let text = scalar.text.clone();
        match insert_directive(&text) {
            Some(Ok(())) => return Some(MapKey::Insert(key_node.span)),
            Some(Err(message)) => {
                self.error(key_node.span, message);
                return None;
            }
            None => {}
        }
        Some(MapKey::Name(self.template_from(key_node, text, place)))
    }

    /// Any YAML value as an expression value (matrix entries, reusable workflow inputs).
    pub(crate) fn value(node: &Node) -> Value {
        match &node.kind {
            NodeKind::Scalar(scalar) => match scalar.value {
                ScalarValue::Null => Value::Null,
                ScalarValue::Bool(b) => Value::Bool(b),
                ScalarValue::Number(n) => Value::Number(n),
                ScalarValue::String => Value::String(scalar.text.clone()),
            },
            NodeKind::Sequence(items) => {
                Value::Array(Arc::new(items.iter().map(Converter::value).collect()))
            }
            NodeKind::Mapping(entries) => {
                let mut object = Object::new();
                for (key, value) in entries {
                    object.insert(
                        key.scalar_text().unwrap_or_default(),
                        Converter::value(value),
                    );
                }
                Value::Object(Arc::new(object))
            }
        }
    }

    /// Where the character at `offset` inside a scalar's value is in the source. Exact for
    /// single-line plain and quoted scalars (escapes aside) and for literal blocks; other
    /// multi-line scalars fold or join lines, so they fall back to the scalar's start.
    fn position_in_scalar(&self, node: &Node, offset: usize) -> Span {
        let Some(scalar) = node.as_scalar() else {
            return node.span;
        };
        let single_line = !scalar.text.contains('\n');
        match scalar.style {
            Style::Plain if single_line => Span {
                line: node.span.line,
                col: node.span.col + offset,
            },
            Style::SingleQuoted | Style::DoubleQuoted if single_line => Span {
                line: node.span.line,
                col: node.span.col + 1 + offset,
            },
            Style::Literal => Converter::position_in_literal(node, &scalar.text, offset),
            _ => node.span,
        }
    }

    /// Literal blocks are placed at their first content character and keep line breaks, so
    /// line k of the value is source line `line + k` at the same indentation.
    fn position_in_literal(node: &Node, text: &str, offset: usize) -> Span {
        let before: String = text.chars().take(offset).collect();
        let line_index = before.matches('\n').count();
        let col_in_line = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
        Span {
            line: node.span.line + line_index,
            col: node.span.col + col_in_line,
        }
    }
}
