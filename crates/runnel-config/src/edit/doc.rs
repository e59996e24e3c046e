//! The file a `config` edit works on, as lines and as a parsed tree at once: finding a key's
//! line and value by the tree's positions, and replacing, adding or removing just those lines
//! (comments, blank lines and the other keys' text left as they were).
//!
//! Owns: [`Doc`] (the line surgery) and [`Written`] (what an edit puts at a key). Must not:
//! know which keys exist or how values are typed (the parent module does).

use runnel_yaml::{Node, NodeKind, Span};

use super::{EditError, render_text};

/// What [`set`] writes at a key.
pub(super) enum Written {
    Scalar(String),
    List(Vec<String>),
}

/// The file as lines and as a tree.
pub(super) struct Doc {
    pub(super) lines: Vec<String>,
    /// `\r\n` when the file uses it.
    newline: &'static str,
    root: Option<Node>,
    ends_with_newline: bool,
}

/// A key found in the file: its line (0-based), its indentation, and its value.
pub(super) struct Found<'d> {
    line: usize,
    indent: usize,
    pub(super) value: &'d Node,
}

impl Doc {
    pub(super) fn parse(text: &str) -> Result<Doc, EditError> {
        let parsed = runnel_yaml::parse(text);
        if let Some(error) = parsed.errors.first() {
            return Err(EditError::NotYaml(format!(
                "{}:{}: {}",
                error.span.line, error.span.col, error.message
            )));
        }
        let root = parsed.root.filter(|root| !root.is_null());
        if let Some(root) = &root
            && !matches!(root.kind, NodeKind::Mapping(_))
        {
            return Err(EditError::NotYaml(format!(
                "the top level is a {}",
                root.kind_name()
            )));
        }
        Ok(Doc {
            lines: text.lines().map(str::to_owned).collect(),
            newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
            root,
            ends_with_newline: text.is_empty() || text.ends_with('\n'),
        })
    }

    fn text(&self, lines: &[String]) -> String {
        let mut out = lines.join(self.newline);
        if self.ends_with_newline && !lines.is_empty() {
            out.push_str(self.newline);
        }
        out
    }

    /// The entry at `path`, when every segment is there.
    pub(super) fn find(&self, path: &str) -> Option<Found<'_>> {
        let mut found = None;
        let mut node = self.root.as_ref()?;
        for segment in path.split('.') {
            let NodeKind::Mapping(entries) = &node.kind else {
                return None;
            };
            let (key, value) = entries
                .iter()
                .find(|(key, _)| key.scalar_text() == Some(segment))?;
            found = Some(self.found(key.span, value));
            node = value;
        }
        found
    }

    fn found<'d>(&self, key: Span, value: &'d Node) -> Found<'d> {
        let line = key.line.saturating_sub(1);
        Found {
            line,
            indent: self.lines.get(line).map_or(0, |l| indentation(l)),
            value,
        }
    }

    /// Whether the key is the first thing on its line (a block mapping entry).
    fn is_block_key(&self, path: &str) -> bool {
        let mut node = self.root.as_ref();
        for segment in path.split('.') {
            let Some(Node {
                kind: NodeKind::Mapping(entries),
                ..
            }) = node
            else {
                return true;
            };
            let Some((key, value)) = entries
                .iter()
                .find(|(key, _)| key.scalar_text() == Some(segment))
            else {
                return true;
            };
            let line = self.lines.get(key.span.line - 1).map_or("", String::as_str);
            if indentation(line) + 1 != key.span.col {
                return false;
            }
            node = Some(value);
        }
        true
    }

    /// The first and last line (0-based) of an entry: its key's line, and the last line of
    /// its value that is not a blank or a comment.
    pub(super) fn extent(&self, found: &Found<'_>) -> (usize, usize) {
        let mut last = found.line;
        for (index, line) in self.lines.iter().enumerate().skip(found.line + 1) {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = indentation(line);
            let sequence_item = indent == found.indent
                && (trimmed == "-" || trimmed.starts_with("- "))
                && matches!(found.value.kind, NodeKind::Sequence(_));
            if indent > found.indent || sequence_item {
                last = index;
            } else {
                break;
            }
        }
        (found.line, last)
    }

    pub(super) fn is_block_sequence(&self, found: &Found<'_>) -> bool {
        matches!(&found.value.kind, NodeKind::Sequence(items) if !items.is_empty())
            && found.value.span.line - 1 > found.line
    }

    pub(super) fn list_items(
        &self,
        path: &str,
        found: &Found<'_>,
    ) -> Result<Vec<String>, EditError> {
        match &found.value.kind {
            _ if found.value.is_null() => Ok(Vec::new()),
            NodeKind::Sequence(items) => Ok(items
                .iter()
                .map(|item| item.scalar_text().unwrap_or_default().to_owned())
                .collect()),
            _ => Err(EditError::NotAList(path.to_owned())),
        }
    }

    /// The key's line with the value written after it, keeping a trailing comment.
    fn key_line(&self, found: &Found<'_>, value: Option<&str>) -> String {
        let line = &self.lines[found.line];
        // No `:` (a `? key` entry): the edit then fails the load check instead of panicking.
        let (head, rest) = match key_colon(line, found.indent) {
            Some(colon) => line.split_at(colon + 1),
            None => (line.as_str(), ""),
        };
        let (_, comment) = split_comment(rest);
        let mut out = head.to_owned();
        if let Some(value) = value {
            out.push(' ');
            out.push_str(value);
        }
        if !comment.is_empty() {
            out.push(' ');
            out.push_str(comment);
        }
        out
    }

    /// `path` set to `new`: the entry's lines replaced, or the missing keys added.
    pub(super) fn write(&self, path: &str, new: &Written) -> Result<String, EditError> {
        if !self.is_block_key(path) {
            return Err(EditError::Flow(path.to_owned()));
        }
        let mut lines = self.lines.clone();
        if let Some(found) = self.find(path) {
            let (first, last) = self.extent(&found);
            let mut replacement = Vec::new();
            match new {
                Written::Scalar(value) => replacement.push(self.key_line(&found, Some(value))),
                Written::List(items) if items.is_empty() => {
                    replacement.push(self.key_line(&found, Some("[]")));
                }
                Written::List(items) => {
                    replacement.push(self.key_line(&found, None));
                    let pad = " ".repeat(found.indent + 2);
                    replacement.extend(items.iter().map(|item| format!("{pad}- {item}")));
                }
            }
            lines.splice(first..=last, replacement);
            return Ok(self.text(&lines));
        }
        // The deepest section that is there, and the keys to add under it.
        let segments: Vec<&str> = path.split('.').collect();
        let mut depth = segments.len() - 1;
        let parent = loop {
            if depth == 0 {
                break None;
            }
            if let Some(found) = self.find(&segments[..depth].join(".")) {
                break Some(found);
            }
            depth -= 1;
        };
        let missing = &segments[depth..];
        match parent {
            None => {
                let block = block_lines(missing, 0, new);
                while lines.last().is_some_and(|l| l.trim().is_empty()) {
                    lines.pop();
                }
                if !lines.is_empty() {
                    lines.push(String::new());
                }
                lines.extend(block);
            }
            Some(found) => match &found.value.kind {
                // `section: {a: 1}`: written on the key's line.
                NodeKind::Mapping(entries)
                    if !entries.is_empty() && found.value.span.line - 1 <= found.line =>
                {
                    return Err(EditError::Flow(segments[..depth].join(".")));
                }
                NodeKind::Mapping(entries) if !entries.is_empty() => {
                    let indent = entries
                        .first()
                        .map(|(key, _)| key.span.col - 1)
                        .unwrap_or(found.indent + 2);
                    let (_, last) = self.extent(&found);
                    lines.splice(last + 1..last + 1, block_lines(missing, indent, new));
                }
                // `section:` with nothing, `~` or `{}`: the keys go under it.
                _ if found.value.is_null() || is_empty_flow_mapping(found.value) => {
                    let (first, last) = self.extent(&found);
                    let mut replacement = vec![self.key_line(&found, None)];
                    replacement.extend(block_lines(missing, found.indent + 2, new));
                    lines.splice(first..=last, replacement);
                }
                NodeKind::Mapping(_) => {
                    return Err(EditError::Flow(segments[..depth].join(".")));
                }
                _ => return Err(EditError::NotASection(segments[..depth].join("."))),
            },
        }
        Ok(self.text(&lines))
    }

    /// A block list with `values` added after its last item, at its items' indentation.
    pub(super) fn append_items(&self, found: &Found<'_>, values: &[String]) -> String {
        let (_, last) = self.extent(found);
        let first_item = found.value.span.line - 1;
        let pad = " ".repeat(indentation(&self.lines[first_item]));
        let mut lines = self.lines.clone();
        let added = values.iter().map(|v| format!("{pad}- {}", render_text(v)));
        lines.splice(last + 1..last + 1, added);
        self.text(&lines)
    }

    /// A block list without the items whose text is one of `values` (each item's lines).
    pub(super) fn drop_items(&self, found: &Found<'_>, values: &[String]) -> String {
        let NodeKind::Sequence(items) = &found.value.kind else {
            return self.text(&self.lines);
        };
        let (_, last) = self.extent(found);
        let mut drop = vec![false; self.lines.len()];
        for (index, item) in items.iter().enumerate() {
            if !values
                .iter()
                .any(|v| Some(v.as_str()) == item.scalar_text())
            {
                continue;
            }
            let start = item.span.line - 1;
            let end = match items.get(index + 1) {
                Some(next) => next.span.line - 1,
                None => last + 1,
            };
            for flag in &mut drop[start..end.max(start + 1)] {
                *flag = true;
            }
        }
        let lines: Vec<String> = self
            .lines
            .iter()
            .zip(&drop)
            .filter(|(_, dropped)| !**dropped)
            .map(|(line, _)| line.clone())
            .collect();
        self.text(&lines)
    }
}

fn is_empty_flow_mapping(node: &Node) -> bool {
    matches!(&node.kind, NodeKind::Mapping(entries) if entries.is_empty())
}

/// The lines of `segments` nested from `indent`, the last one holding `new`.
fn block_lines(segments: &[&str], indent: usize, new: &Written) -> Vec<String> {
    let mut lines = Vec::new();
    let last = segments.len() - 1;
    for (depth, segment) in segments.iter().enumerate() {
        let pad = " ".repeat(indent + 2 * depth);
        let key = render_text(segment);
        if depth < last {
            lines.push(format!("{pad}{key}:"));
            continue;
        }
        match new {
            Written::Scalar(value) => lines.push(format!("{pad}{key}: {value}")),
            Written::List(items) if items.is_empty() => lines.push(format!("{pad}{key}: []")),
            Written::List(items) => {
                lines.push(format!("{pad}{key}:"));
                lines.extend(items.iter().map(|item| format!("{pad}  - {item}")));
            }
        }
    }
    lines
}

pub(super) fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The byte index of the `:` that ends the key starting at `indent`.
fn key_colon(line: &str, indent: usize) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut index = indent;
    if let Some(quote @ (b'\'' | b'"')) = bytes.get(index).copied() {
        index += 1;
        while index < bytes.len() && bytes[index] != quote {
            index += if bytes[index] == b'\\' && quote == b'"' {
                2
            } else {
                1
            };
        }
        index += 1;
    }
    while index < bytes.len() {
        if bytes[index] == b':'
            && bytes
                .get(index + 1)
                .is_none_or(|b| *b == b' ' || *b == b'\t')
        {
            return Some(index);
        }
        index += 1;
    }
    None
}

/// `text` split before a ` #` comment outside quotes: (value, comment).
fn split_comment(text: &str) -> (&str, &str) {
    let mut quote = None;
    let mut previous = ' ';
    for (index, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == '\'' || c == '"') && previous.is_whitespace() => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => {
                return (text[..index].trim(), text[index..].trim_end());
            }
            None => {}
        }
        previous = c;
    }
    (text.trim(), "")
}
