//! `runnel validate`: every problem of every file, as `file:line:col: message` with the line.
//! Calls of local reusable workflows (`uses: ./.gitea/workflows/x.yml`) are checked against
//! the called file (trigger, inputs, secrets, nesting, cycles); remote calls are not fetched.

use std::path::{Path, PathBuf};

use anyhow::Result;
use runnel_workflow::{CallCheckOptions, Diagnostic, Severity};
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
        let mut diagnostics = loaded.diagnostics;
        if let Some(workflow) = &loaded.workflow {
            diagnostics.extend(call_diagnostics(workflow, &path));
        }
        reports.push((file, diagnostics));
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

/// Problems of the reusable-workflow calls `workflow` (read from `path`) makes, at the call
/// sites in this file. Problems inside a called file are reported when that file is validated.
fn call_diagnostics(workflow: &runnel_workflow::Workflow, path: &Path) -> Vec<Diagnostic> {
    if workflow.jobs.values().all(|job| job.call.is_none()) {
        return Vec::new();
    }
    let root = repository_root(path);
    let resolve = |_caller: &str, uses: &str| -> Option<String> {
        let relative = uses.strip_prefix("./")?;
        std::fs::read_to_string(root.join(relative)).ok()
    };
    runnel_workflow::check_calls(workflow, &resolve, CallCheckOptions::default())
        .into_iter()
        .filter(|d| d.file == workflow.file)
        .collect()
}

/// The directory holding `.gitea/workflows` (or `.github/workflows`) above `path`, else the
/// current directory: where `./` in a call's `uses:` starts.
fn repository_root(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .ancestors()
        .find(|dir| {
            dir.file_name().is_some_and(|n| n == "workflows")
                && dir
                    .parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == ".gitea" || n == ".github")
        })
        .and_then(|workflows| workflows.parent()?.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
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
