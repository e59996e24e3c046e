//! Problems found in a workflow file, with their position, and their rendering for humans.
//!
//! Owns: [`Diagnostic`], [`Severity`] and [`render`] (the offending line with a caret).
//! Must not: decide what is a problem; the loader does.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem: where (1-based line and column), how bad, what, and optionally how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.col, self.severity, self.message
        )
    }
}

/// Renders a diagnostic with the source line it points at and a caret under the column:
///
/// ```text
/// ci.yml:4:5: error: unknown key `runs_on`
///   |
/// 4 |     runs_on: ubuntu-latest
///   |     ^
///   = hint: did you mean `runs-on`?
/// ```
pub fn render(diagnostic: &Diagnostic, source: &str) -> String {
    let mut out = diagnostic.to_string();
    out.push('\n');
    let line_text = diagnostic
        .line
        .checked_sub(1)
        .and_then(|index| source.lines().nth(index));
    if let Some(line_text) = line_text {
        let number = diagnostic.line.to_string();
        let gutter = " ".repeat(number.len());
        let (shown, caret_at) = window(line_text, diagnostic.col.saturating_sub(1));
        // Tabs before the column are kept so the caret lines up in a terminal.
        let pad: String = shown
            .chars()
            .take(caret_at)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!(
            "{gutter} |\n{number} | {shown}\n{gutter} | {pad}^\n"
        ));
        if let Some(hint) = &diagnostic.hint {
            out.push_str(&format!("{gutter} = hint: {hint}\n"));
        }
    } else if let Some(hint) = &diagnostic.hint {
        out.push_str(&format!("  = hint: {hint}\n"));
    }
    out
}

/// Longest source line shown whole; longer ones are cut to a window around the column.
const MAX_SHOWN_CHARS: usize = 120;

/// The part of `line` to show and the caret's char index in it: the whole line when short,
/// else `MAX_SHOWN_CHARS` chars around `col` (0-based) with `…` where text was cut.
fn window(line: &str, col: usize) -> (String, usize) {
    let total = line.chars().count();
    if total <= MAX_SHOWN_CHARS {
        return (line.to_owned(), col);
    }
    let start = col
        .saturating_sub(MAX_SHOWN_CHARS / 2)
        .min(total - MAX_SHOWN_CHARS);
    let end = start + MAX_SHOWN_CHARS;
    let mut shown: String = line.chars().skip(start).take(MAX_SHOWN_CHARS).collect();
    let mut caret_at = col - start.min(col);
    if start > 0 {
        shown.insert(0, '…');
        caret_at += 1;
    }
    if end < total {
        shown.push('…');
    }
    (shown, caret_at)
}
