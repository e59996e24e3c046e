//! The syntax of stdout workflow commands: `::name key=value,key2=value2::data`.
//!
//! Follows the runner's "v2" format: leading whitespace is skipped; the command info runs up
//! to the next `::`; the name is the info up to the first space; properties are
//! comma-separated `key=value` pairs (split at the first `=`, pairs with an empty key or value
//! dropped, keys compared ignoring ASCII case, the last one wins); the data is everything after
//! the second `::`. Escapes are undone in a fixed order: data `%0D`, `%0A`, `%25`; properties
//! also `%3A` and `%2C` before `%25`, so `%253A` stays `%3A`.
//!
//! The legacy `##[name key=value;]data` format is not parsed: no tool we know of still writes
//! it, and it matches anywhere in a line, so honouring it mostly produces surprises.
//!
//! Must not: know which names are commands or what they do (see `processor`).

/// A line that has command syntax. Any name is accepted here; unknown names are plain output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCommand {
    /// The name as written (commands are matched ignoring ASCII case).
    pub name: String,
    /// Properties in the order written, unescaped.
    pub properties: Vec<(String, String)>,
    /// The unescaped data.
    pub data: String,
}

impl ParsedCommand {
    /// The value of property `key`, ignoring ASCII case; the last occurrence wins.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
    }
}

const MARKER: &str = "::";

/// Parses one output line (without its terminator) as a workflow command.
pub fn parse_command(line: &str) -> Option<ParsedCommand> {
    let rest = line.trim_start().strip_prefix(MARKER)?;
    let info_end = rest.find(MARKER)?;
    let (info, after) = rest.split_at(info_end);
    let data = after.get(MARKER.len()..).unwrap_or_default();
    let (name, properties_text) = match info.split_once(' ') {
        Some((name, properties_text)) => (name, Some(properties_text)),
        None => (info, None),
    };
    if name.is_empty() {
        return None;
    }
    let properties = properties_text
        .map(|text| {
            text.trim()
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .filter(|(key, value)| !key.is_empty() && !value.is_empty())
                .map(|(key, value)| (key.to_owned(), unescape_property(value)))
                .collect()
        })
        .unwrap_or_default();
    Some(ParsedCommand {
        name: name.to_owned(),
        properties,
        data: unescape_data(data),
    })
}

fn unescape_data(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

fn unescape_property(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

/// Escapes command data the way the toolkit writes it (`%` first, then CR and LF).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value the way the toolkit writes it (data escapes plus `:` and `,`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}
