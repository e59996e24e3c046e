//! `runnel validate`: every problem of every file, as `file:line:col: message` with the line.

use anyhow::Result;
use runnel_workflow::{Diagnostic, Severity};
use serde_json::json;

use crate::Outcome;
use crate::args::{Format, ValidateArgs};
use crate::discover;

pub(crate) fn run(args: &ValidateArgs) -> Result<Outcome> {
    let paths = match args.paths.is_empty() {
        true => discover::default_paths()?,
        false => args.paths.clone(),
    };
    let mut reports = Vec::new();
    for path in discover::expand(&paths)? {
        let file = discover::read(&path)?;
        let loaded = runnel_workflow::load_workflow(&file.display, &file.text);
        reports.push((file, loaded.diagnostics));
    }
    let errors = reports
        .iter()
        .flat_map(|(_, ds)| ds)
        .filter(|d| d.severity == Severity::Error)
        .count();
    match args.format {
        Format::Text => print_text(&reports, errors),
        Format::Json => print_json(&reports),
    }
    Ok(if errors == 0 {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn print_text(reports: &[(discover::SourceFile, Vec<Diagnostic>)], errors: usize) {
    for (file, diagnostics) in reports {
        for diagnostic in diagnostics {
            println!("{}", runnel_workflow::render(diagnostic, &file.text));
        }
    }
    let files = reports.len();
    let bad = reports.iter().filter(|(_, ds)| has_error(ds)).count();
    match errors {
        0 => eprintln!("{files} file(s) valid"),
        _ => eprintln!("{errors} error(s) in {bad} of {files} file(s)"),
    }
}

fn print_json(reports: &[(discover::SourceFile, Vec<Diagnostic>)]) {
    let files: Vec<_> = reports
        .iter()
        .map(|(file, diagnostics)| {
            let ok = !has_error(diagnostics);
            let diagnostics: Vec<_> = diagnostics
                .iter()
                .map(|d| {
                    json!({
                        "line": d.line,
                        "col": d.col,
                        "severity": match d.severity {
                            Severity::Error => "error",
                            Severity::Warning => "warning",
                        },
                        "message": d.message,
                        "hint": d.hint,
                    })
                })
                .collect();
            json!({"file": file.display, "ok": ok, "diagnostics": diagnostics})
        })
        .collect();
    println!("{}", json!({ "files": files }));
}

fn has_error(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(|d| d.severity == Severity::Error)
}
