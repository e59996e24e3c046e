//! The formats of the per-step environment files, read after the step exits.
//!
//! `GITHUB_ENV`, `GITHUB_OUTPUT` and `GITHUB_STATE` hold `NAME=VALUE` lines and heredocs:
//!
//! ```text
//! NAME<<DELIMITER
//! line 1
//! line 2
//! DELIMITER
//! ```
//!
//! Lines are split on `\n` only (as the runner does on Linux: a `\r` stays part of the text).
//! Empty lines between entries are skipped. On each line the first `=` or the first `<<`,
//! whichever comes first, decides the form. `NAME=VALUE` keeps the value verbatim (it may
//! contain `=` and `<<`). A heredoc's value is the lines up to the first line exactly equal to
//! the delimiter, joined with `\n`. `GITHUB_PATH` holds one directory per non-empty line.
//!
//! Applying the entries (later ones win, `NODE_OPTIONS` is refused for `GITHUB_ENV`, `PATH`
//! order) is the job runner's business.
//!
//! Must not: read files (callers pass the bytes) or print values (errors name the file kind,
//! the line number and the delimiter, never a value).

use std::fmt;

/// Which key/value environment file a text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvFileKind {
    Env,
    Output,
    State,
}

impl EnvFileKind {
    /// The environment variable that names the file (`GITHUB_ENV`, ...).
    pub fn variable(self) -> &'static str {
        match self {
            EnvFileKind::Env => "GITHUB_ENV",
            EnvFileKind::Output => "GITHUB_OUTPUT",
            EnvFileKind::State => "GITHUB_STATE",
        }
    }
}

impl fmt::Display for EnvFileKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.variable())
    }
}

/// Why an environment file could not be read; the step fails with it. Line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvFileError {
    /// A line with neither `=` nor `<<`, or an empty name or delimiter.
    #[error("{file} line {line}: Invalid format")]
    InvalidFormat { file: EnvFileKind, line: usize },
    /// A heredoc whose delimiter line never comes; `line` is the `NAME<<DELIMITER` line.
    #[error("{file} line {line}: Matching delimiter not found '{delimiter}'")]
    DelimiterNotFound {
        file: EnvFileKind,
        line: usize,
        delimiter: String,
    },
    /// A heredoc value line at the very end of the file, without a newline and not the
    /// delimiter; `line` is that last line.
    #[error("{file} line {line}: EOF marker missing new line")]
    EofMarkerMissingNewLine { file: EnvFileKind, line: usize },
}

/// Parses `GITHUB_ENV`, `GITHUB_OUTPUT` or `GITHUB_STATE` content into `(name, value)` pairs in
/// file order (a name may repeat; the last one wins when applied). Invalid UTF-8 is decoded
/// lossily.
pub fn parse_env_file(
    file: EnvFileKind,
    content: &[u8],
) -> Result<Vec<(String, String)>, EnvFileError> {
    let text = String::from_utf8_lossy(content);
    let mut lines = split_lines(&text)
        .enumerate()
        .map(|(index, line)| (index + 1, line));
    let mut entries = Vec::new();
    while let Some((number, line)) = lines.next() {
        if line.text.is_empty() {
            continue;
        }
        let equals = line.text.find('=');
        let heredoc = line.text.find("<<");
        match (equals, heredoc) {
            (Some(equals), heredoc) if heredoc.is_none_or(|heredoc| equals < heredoc) => {
                let (name, value) = line.text.split_at(equals);
                if name.is_empty() {
                    return Err(EnvFileError::InvalidFormat { file, line: number });
                }
                entries.push((
                    name.to_owned(),
                    value.get(1..).unwrap_or_default().to_owned(),
                ));
            }
            (_, Some(heredoc)) => {
                let (name, delimiter) = line.text.split_at(heredoc);
                let delimiter = delimiter.get(2..).unwrap_or_default();
                if name.is_empty() || delimiter.is_empty() {
                    return Err(EnvFileError::InvalidFormat { file, line: number });
                }
                let mut value_lines = Vec::new();
                loop {
                    let Some((value_number, value_line)) = lines.next() else {
                        return Err(EnvFileError::DelimiterNotFound {
                            file,
                            line: number,
                            delimiter: delimiter.to_owned(),
                        });
                    };
                    if value_line.text == delimiter {
                        break;
                    }
                    if !value_line.terminated {
                        return Err(EnvFileError::EofMarkerMissingNewLine {
                            file,
                            line: value_number,
                        });
                    }
                    value_lines.push(value_line.text);
                }
                entries.push((name.to_owned(), value_lines.join("\n")));
            }
            _ => return Err(EnvFileError::InvalidFormat { file, line: number }),
        }
    }
    Ok(entries)
}

/// Parses `GITHUB_PATH` content: each non-empty line is a directory, in file order. Invalid
/// UTF-8 is decoded lossily.
pub fn parse_path_file(content: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(content);
    split_lines(&text)
        .filter(|line| !line.text.is_empty())
        .map(|line| line.text.to_owned())
        .collect()
}

struct Line<'a> {
    text: &'a str,
    /// Whether a `\n` followed (false only for the last line of a file without a final newline).
    terminated: bool,
}

/// Lines split on `\n`; a final newline does not start an extra empty line.
fn split_lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.split_once('\n') {
            Some((text, after)) => {
                rest = if after.is_empty() { None } else { Some(after) };
                Some(Line {
                    text,
                    terminated: true,
                })
            }
            None => {
                rest = None;
                if current.is_empty() {
                    return None;
                }
                Some(Line {
                    text: current,
                    terminated: false,
                })
            }
        }
    })
}
