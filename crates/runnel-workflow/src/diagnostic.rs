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
        // Tabs before the column are kept so the caret lines up in a terminal.
        let pad: String = line_text
            .chars()
            .take(diagnostic.col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!(
            "{gutter} |\n{number} | {line_text}\n{gutter} | {pad}^\n"
        ));
        if let Some(hint) = &diagnostic.hint {
            out.push_str(&format!("{gutter} = hint: {hint}\n"));
        }
    } else if let Some(hint) = &diagnostic.hint {
        out.push_str(&format!("  = hint: {hint}\n"));
    }
    out
}
