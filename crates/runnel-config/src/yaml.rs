//! A small YAML reader for config files: `saphyr-parser` events → a tree of nodes, each with its
//! 1-based line and column, so unknown keys and bad values can name where they are.
//!
//! Owns: the node tree and its positions. Must not: know what the keys mean (see `config`).
//! Config files are small and written by people: anchors are supported by copying, with a
//! bound on the nodes a file may expand to; tags are ignored.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Bound on the nodes a file may produce, counting alias expansions.
const MAX_NODES: usize = 100_000;

/// A position in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column.
    pub(crate) col: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) kind: NodeKind,
    pub(crate) at: Position,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    /// A scalar's text, and whether it was a plain `null`/`~`/empty scalar.
    Scalar {
        text: String,
        null: bool,
    },
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

impl Node {
    fn count(&self) -> usize {
        match &self.kind {
            NodeKind::Scalar { .. } => 1,
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

/// Why the text is not YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub(crate) message: String,
    pub(crate) at: Position,
}

enum Frame {
    Sequence(Vec<Node>, usize, Position),
    Mapping(Vec<(Node, Node)>, Option<Node>, usize, Position),
}

fn position(marker: &saphyr_parser::Marker) -> Position {
    Position {
        line: marker.line(),
        col: marker.col() + 1,
    }
}

/// Reads the first YAML document of `text`; `Ok(None)` for an empty file.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut nodes = 0usize;
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, span) = match parser.next_event() {
            None => return Ok(None),
            Some(Ok(next)) => next,
            Some(Err(error)) => {
                return Err(YamlError {
                    message: format!("invalid YAML: {}", error.info()),
                    at: position(error.marker()),
                });
            }
        };
        let at = position(&span.start);
        let (node, anchor) = match event {
            Event::Scalar(value, style, anchor, _tag) => {
                let null = style == ScalarStyle::Plain
                    && matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                let kind = NodeKind::Scalar {
                    text: value.into_owned(),
                    null,
                };
                (Node { kind, at }, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Sequence(Vec::new(), anchor, at));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Mapping(Vec::new(), None, anchor, at));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Sequence(items, anchor, at)) => (
                    Node {
                        kind: NodeKind::Sequence(items),
                        at,
                    },
                    anchor,
                ),
                Some(Frame::Mapping(entries, _, anchor, at)) => (
                    Node {
                        kind: NodeKind::Mapping(entries),
                        at,
                    },
                    anchor,
                ),
                None => return Ok(None),
            },
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => (node.clone(), 0),
                None => {
                    return Err(YamlError {
                        message: "alias refers to an unknown anchor".to_owned(),
                        at,
                    });
                }
            },
            Event::DocumentEnd | Event::StreamEnd if stack.is_empty() => return Ok(None),
            _ => continue,
        };
        nodes = nodes.saturating_add(node.count());
        if nodes > MAX_NODES {
            return Err(YamlError {
                message: format!("the file expands to more than {MAX_NODES} YAML nodes"),
                at,
            });
        }
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => return Ok(Some(node)),
            Some(Frame::Sequence(items, ..)) => items.push(node),
            Some(Frame::Mapping(entries, key, ..)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}
