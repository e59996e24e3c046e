//! YAML with a line and column on every node: text → a tree of [`Node`]s, each with its 1-based
//! line and column, for readers that must say where a problem is (workflow and action files,
//! the runner's `config.yaml`).
//!
//! Owns: driving `saphyr-parser`'s event stream into [`Node`]s; resolving plain scalars with the
//! YAML 1.2 core schema (so `on` stays the string `on`, unlike YAML 1.1 readers); anchors and
//! aliases with a bound on expansion; rejecting duplicate keys, extra documents, unsupported tags
//! and nesting deeper than [`MAX_DEPTH`].
//! Must not: know what a workflow or a config key is, or do IO. Never panics, whatever the input.

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

/// Deeper nesting is rejected, so callers may recurse over the tree without bounding depth
/// themselves; no real workflow or config nests this deep.
pub const MAX_DEPTH: usize = 64;

/// Bound on the nodes a file may produce, counting every alias expansion, so a few lines of
/// nested aliases ("billion laughs") cannot exhaust memory.
const MAX_NODES: usize = 200_000;

/// A position in the source: 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

/// One YAML node and where it starts.
#[derive(Debug, Clone)]
pub struct Node {
    /// What the node is.
    pub kind: NodeKind,
    /// Where it starts: a block scalar at its first content character, a collection at its
    /// first entry (block) or its opening bracket (flow).
    pub span: Span,
}

/// The three kinds of YAML node. Aliases are already expanded into copies of their anchor.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A scalar of any type.
    Scalar(Scalar),
    /// A sequence's items, in order.
    Sequence(Vec<Node>),
    /// A mapping's entries, in source order. Keys may be any node; duplicate scalar keys are
    /// reported as errors but kept (keys holding `${{ }}` are left to the workflow loader).
    Mapping(Vec<(Node, Node)>),
}

/// A scalar: its text, how it was written, and its core-schema type.
#[derive(Debug, Clone)]
pub struct Scalar {
    /// The scalar's content after YAML unescaping/folding.
    pub text: String,
    /// How it was written.
    pub style: Style,
    /// Its type under the YAML 1.2 core schema (quoted and block scalars are strings).
    pub value: ScalarValue,
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted.
    Plain,
    /// `'…'`.
    SingleQuoted,
    /// `"…"`.
    DoubleQuoted,
    /// A `|` block.
    Literal,
    /// A `>` block.
    Folded,
}

/// The core-schema type of a scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScalarValue {
    /// `null`, `~` or nothing at all.
    Null,
    /// `true` or `false` (also capitalized or upper case).
    Bool(bool),
    /// An integer or float, including `.inf` and `.nan`; hex and octal as their value.
    Number(f64),
    /// Anything else: the text is the value.
    String,
}

/// A problem that makes the text not (acceptable) YAML, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// What is wrong, as one line.
    pub message: String,
    /// Where.
    pub span: Span,
    /// How to fix it, when there is a useful suggestion.
    pub hint: Option<String>,
    /// Whether this reports a second document (a `---` after the first one).
    extra_document: bool,
}

impl YamlError {
    /// True for the error about a second document. The first document is complete when it is
    /// reported, so a reader that, like Go's `yaml.Unmarshal`, takes only the first document
    /// may ignore this error.
    pub fn is_extra_document(&self) -> bool {
        self.extra_document
    }
}

impl Node {
    /// The scalar, if this node is one.
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(scalar) => Some(scalar),
            _ => None,
        }
    }

    /// The scalar's text if it is a scalar of any type (numbers and booleans as written).
    pub fn scalar_text(&self) -> Option<&str> {
        self.as_scalar().map(|scalar| scalar.text.as_str())
    }

    /// True for a null scalar (`null`, `~`, nothing, or `!!null`).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s) if s.value == ScalarValue::Null)
    }

    /// What the node is, for messages: "null", "a boolean", "a number", "a string",
    /// "a sequence" or "a mapping".
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(scalar) => match scalar.value {
                ScalarValue::Null => "null",
                ScalarValue::Bool(_) => "a boolean",
                ScalarValue::Number(_) => "a number",
                ScalarValue::String => "a string",
            },
            NodeKind::Sequence(_) => "a sequence",
            NodeKind::Mapping(_) => "a mapping",
        }
    }

    fn count(&self) -> usize {
        match &self.kind {
            NodeKind::Scalar(_) => 1,
            NodeKind::Sequence(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            NodeKind::Mapping(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.count() + v.count())
                    .sum::<usize>()
            }
        }
    }
}

/// The result of reading one YAML file.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The document's root; absent when the file is empty or the reader stopped before the
    /// root was complete.
    pub root: Option<Node>,
    /// Every problem found, in the order found. There may be errors and a root at once (e.g. a
    /// duplicate key), so a caller can report problems in the rest of the tree too.
    pub errors: Vec<YamlError>,
}

enum Frame {
    Sequence {
        items: Vec<Node>,
        anchor: usize,
        span: Span,
    },
    Mapping {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        anchor: usize,
        span: Span,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
    errors: Vec<YamlError>,
}

/// The core-schema name of a tag (`str`, `int`, …) for both the `!!int` shorthand and the
/// verbatim `!<tag:yaml.org,2002:int>` form; `None` for any other tag.
fn core_tag(tag: &Tag) -> Option<&str> {
    const CORE: &str = "tag:yaml.org,2002:";
    if tag.is_yaml_core_schema() {
        return Some(tag.suffix.as_str());
    }
    tag.suffix.strip_prefix(CORE)
}

fn span_of(marker: &saphyr_parser::Marker) -> Span {
    Span {
        line: marker.line(),
        col: marker.col() + 1,
    }
}

/// Reads `text` as a single YAML document.
pub fn parse(text: &str) -> Parsed {
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        errors: Vec::new(),
    };
    let mut documents = 0usize;
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(next)) => next,
            Some(Err(error)) => {
                builder.errors.push(YamlError {
                    message: format!("invalid YAML: {}", error.info()),
                    span: span_of(error.marker()),
                    hint: None,
                    extra_document: false,
                });
                break;
            }
        };
        let position = span_of(&span.start);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    // The wording names workflows, the main reader; `is_extra_document` lets
                    // other readers recognise this error without matching on text.
                    builder.errors.push(YamlError {
                        message: "a workflow file must hold exactly one YAML document".to_owned(),
                        span: position,
                        hint: Some("remove the `---` line and what follows it".to_owned()),
                        extra_document: true,
                    });
                    break;
                }
            }
            Event::StreamEnd => break,
            Event::Scalar(value, style, anchor, tag) => {
                let node = builder.scalar(value.into_owned(), style, tag.as_deref(), position);
                builder.finish(node, anchor);
            }
            Event::SequenceStart(anchor, tag) => {
                builder.check_collection_tag(tag.as_deref(), "seq", position);
                if builder.open(position) {
                    builder.stack.push(Frame::Sequence {
                        items: Vec::new(),
                        anchor,
                        span: position,
                    });
                } else {
                    break;
                }
            }
            Event::MappingStart(anchor, tag) => {
                builder.check_collection_tag(tag.as_deref(), "map", position);
                if builder.open(position) {
                    builder.stack.push(Frame::Mapping {
                        entries: Vec::new(),
                        key: None,
                        anchor,
                        span: position,
                    });
                } else {
                    break;
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = builder.stack.pop() else {
                    break;
                };
                let (node, anchor) = match frame {
                    Frame::Sequence {
                        items,
                        anchor,
                        span,
                    } => (
                        Node {
                            kind: NodeKind::Sequence(items),
                            span,
                        },
                        anchor,
                    ),
                    Frame::Mapping {
                        entries,
                        anchor,
                        span,
                        ..
                    } => (
                        Node {
                            kind: NodeKind::Mapping(entries),
                            span,
                        },
                        anchor,
                    ),
                };
                builder.finish(node, anchor);
            }
            Event::Alias(id) => {
                let Some(node) = builder.anchors.get(&id) else {
                    builder.errors.push(YamlError {
                        message: "alias refers to an unknown anchor".to_owned(),
                        span: position,
                        hint: None,
                        extra_document: false,
                    });
                    break;
                };
                let size = node.count();
                builder.nodes = builder.nodes.saturating_add(size);
                if builder.nodes > MAX_NODES {
                    builder.errors.push(YamlError {
                        message: "aliases expand to too many nodes".to_owned(),
                        span: position,
                        hint: Some(format!(
                            "a workflow may expand to at most {MAX_NODES} YAML nodes"
                        )),
                        extra_document: false,
                    });
                    break;
                }
                let node = node.clone();
                builder.finish(node, 0);
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
        }
    }
    Parsed {
        root: builder.root,
        errors: builder.errors,
    }
}

impl Builder {
    /// Accounts for a new collection; false (with an error) when the file is too deep or big.
    fn open(&mut self, position: Span) -> bool {
        self.nodes += 1;
        if self.stack.len() >= MAX_DEPTH {
            self.errors.push(YamlError {
                message: format!("YAML nesting deeper than {MAX_DEPTH} levels"),
                span: position,
                hint: None,
                extra_document: false,
            });
            return false;
        }
        if self.nodes > MAX_NODES {
            self.errors.push(YamlError {
                message: "too many YAML nodes".to_owned(),
                span: position,
                hint: None,
                extra_document: false,
            });
            return false;
        }
        true
    }

    fn check_collection_tag(&mut self, tag: Option<&Tag>, expected: &str, position: Span) {
        if let Some(tag) = tag
            && core_tag(tag) != Some(expected)
        {
            self.errors.push(YamlError {
                message: format!("unsupported YAML tag `{tag}`"),
                span: position,
                hint: None,
                extra_document: false,
            });
        }
    }

    fn scalar(&mut self, text: String, style: ScalarStyle, tag: Option<&Tag>, span: Span) -> Node {
        self.nodes += 1;
        let style = match style {
            ScalarStyle::SingleQuoted => Style::SingleQuoted,
            ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
            ScalarStyle::Literal => Style::Literal,
            ScalarStyle::Folded => Style::Folded,
            ScalarStyle::Plain => Style::Plain,
        };
        let value = match tag {
            None if style == Style::Plain => resolve_plain(&text),
            None => ScalarValue::String,
            Some(tag) => self.resolve_tagged(&text, style, tag, span),
        };
        Node {
            kind: NodeKind::Scalar(Scalar { text, style, value }),
            span,
        }
    }

    fn resolve_tagged(&mut self, text: &str, style: Style, tag: &Tag, span: Span) -> ScalarValue {
        let suffix = core_tag(tag).unwrap_or_default();
        if suffix == "str" {
            return ScalarValue::String;
        }
        let resolved = match suffix {
            "null" | "bool" | "int" | "float" if style != Style::Plain => {
                self.errors.push(YamlError {
                    message: format!("a quoted or block scalar cannot have the tag `{tag}`"),
                    span,
                    hint: None,
                    extra_document: false,
                });
                return ScalarValue::String;
            }
            "null" => matches!(resolve_plain(text), ScalarValue::Null),
            "bool" => matches!(resolve_plain(text), ScalarValue::Bool(_)),
            "int" => is_int(text),
            "float" => matches!(resolve_plain(text), ScalarValue::Number(_)),
            _ => {
                self.errors.push(YamlError {
                    message: format!("unsupported YAML tag `{tag}`"),
                    span,
                    hint: Some(
                        "only !!str, !!null, !!bool, !!int and !!float are supported".to_owned(),
                    ),
                    extra_document: false,
                });
                return ScalarValue::String;
            }
        };
        if !resolved {
            self.errors.push(YamlError {
                message: format!("`{text}` is not a valid value for the tag `{tag}`"),
                span,
                hint: None,
                extra_document: false,
            });
            return ScalarValue::String;
        }
        resolve_plain(text)
    }

    /// Attaches a completed node to its parent (or makes it the document root).
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(key_node) => {
                    // Keys holding `${{ }}` are computed by the workflow's template engine,
                    // which checks them once evaluated (two `${{ insert }}` keys are fine).
                    if let Some(text) = key_node.scalar_text()
                        && !text.contains("${{")
                        && let Some((first, _)) =
                            entries.iter().find(|(k, _)| k.scalar_text() == Some(text))
                    {
                        self.errors.push(YamlError {
                            message: format!("duplicate key `{text}`"),
                            span: key_node.span,
                            hint: Some(format!(
                                "`{text}` is first defined at line {}, column {}",
                                first.span.line, first.span.col
                            )),
                            extra_document: false,
                        });
                    }
                    entries.push((key_node, node));
                }
            },
        }
    }
}

/// The YAML 1.2 core schema's resolution of a plain scalar.
pub fn resolve_plain(text: &str) -> ScalarValue {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarValue::Null,
        "true" | "True" | "TRUE" => return ScalarValue::Bool(true),
        "false" | "False" | "FALSE" => return ScalarValue::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return ScalarValue::Number(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return ScalarValue::Number(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return ScalarValue::Number(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return parse_radix(hex, 16);
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return parse_radix(octal, 8);
    }
    if is_decimal_float(text) {
        return match text.parse::<f64>() {
            Ok(number) => ScalarValue::Number(number),
            Err(_) => ScalarValue::String,
        };
    }
    ScalarValue::String
}

fn is_int(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        || text
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        || text
            .strip_prefix("0o")
            .is_some_and(|o| !o.is_empty() && o.bytes().all(|b| (b'0'..=b'7').contains(&b)))
}

fn parse_radix(digits: &str, radix: u32) -> ScalarValue {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return ScalarValue::String;
    }
    // Digits beyond u128 still name a number; accumulate as a float so nothing overflows.
    let number = digits
        .chars()
        .filter_map(|c| c.to_digit(radix))
        .fold(0f64, |acc, d| acc * f64::from(radix) + f64::from(d));
    ScalarValue::Number(number)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` (integers included).
fn is_decimal_float(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let int_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        frac_digits = i - frac_start;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exp_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == bytes.len()
}
