//! GitHub's workflow-parser reader test data (`tests/conformance/reader`, MIT, see LICENSE):
//! every file must be accepted (no error diagnostics) or rejected as GitHub's expected output
//! says, except the cases listed with a reason in `tests/conformance/EXCEPTIONS.md`. A listed
//! case that now agrees fails too, so the list stays honest.
//!
//! Calls of reusable workflows are checked with the referenced files the case carries.
//!
//! For rejected files whose expected errors carry positions, every line GitHub reports must
//! also carry one of our errors (columns differ by convention: GitHub often points at the key,
//! we at the value, or vice versa).

use std::collections::BTreeSet;

use crate::{data_dir, files, read};

struct Case {
    workflow: String,
    /// Referenced workflows: `uses:` text → file text.
    called: Vec<(String, String)>,
    /// The `max-nested-reusable-workflows-depth` option, when given.
    max_depth: Option<usize>,
    /// The `permissions-policy` option (`LimitedRead`, `Write`), when given.
    permissions_policy: Option<String>,
    /// True when GitHub's expected output is `{"errors": [...]}`.
    rejected: bool,
    /// Lines GitHub reports errors at, in the workflow file itself.
    error_lines: BTreeSet<usize>,
}

/// Splits a test file: options, `---`, the workflow, (`---`, referenced path, `---`,
/// referenced workflow)*, `---`, the expected JSON.
fn parse_case(name: &str, text: &str) -> Case {
    let mut sections: Vec<String> = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            sections.push(String::new());
        } else if let Some(last) = sections.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    let workflow = sections.get(1).cloned().unwrap_or_default();
    let expected_text = sections.last().cloned().unwrap_or_default();
    let referenced = sections
        .get(2..sections.len().saturating_sub(1))
        .unwrap_or_default();
    let called = referenced
        .chunks(2)
        .filter_map(|pair| match pair {
            [path, text] => Some((path.trim().to_owned(), text.clone())),
            _ => None,
        })
        .collect();
    let option = |name: &str| {
        sections.first().and_then(|options| {
            options
                .lines()
                .find_map(|line| Some(line.strip_prefix(name)?.trim().to_owned()))
        })
    };
    let max_depth = option("max-nested-reusable-workflows-depth:").and_then(|v| v.parse().ok());
    let permissions_policy = option("permissions-policy:");
    let expected: serde_json::Value = serde_json::from_str(&expected_text)
        .unwrap_or_else(|e| panic!("{name}: expected output is not JSON: {e}"));
    let errors = expected.get("errors").and_then(|e| e.as_array());
    let mut error_lines = BTreeSet::new();
    let own_file = format!(".github/workflows/{name} (Line: ");
    for message in errors
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("Message")?.as_str())
    {
        if let Some(rest) = message.strip_prefix(&own_file)
            && let Some((line, _)) = rest.split_once(',')
            && let Ok(line) = line.parse()
        {
            error_lines.insert(line);
        }
    }
    Case {
        workflow,
        called,
        max_depth,
        permissions_policy,
        rejected: errors.is_some(),
        error_lines,
    }
}

/// `- \`name.yml\`: reason` lines of EXCEPTIONS.md, split by the section they are in.
fn exceptions(section: &str) -> BTreeSet<String> {
    let text = read(&data_dir("conformance").join("EXCEPTIONS.md"));
    let mut in_section = false;
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            in_section = title.trim() == section;
        } else if in_section
            && let Some(rest) = line.strip_prefix("- `")
            && let Some((name, reason)) = rest.split_once('`')
        {
            assert!(
                reason.trim_start_matches(':').trim().len() > 3,
                "{name}: give a reason"
            );
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn reader_conformance() {
    let verdict_exceptions = exceptions("Verdict");
    let position_exceptions = exceptions("Position");
    let paths = files(&data_dir("conformance/reader"), ".yml");
    assert!(paths.len() > 190, "conformance data missing");
    let mut failures = Vec::new();
    for path in &paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let case = parse_case(&name, &read(path));
        let result = runnel_workflow::load_workflow(&name, &case.workflow);
        let mut diagnostics = result.diagnostics.clone();
        if let Some(workflow) = &result.workflow {
            let resolve = |_caller: &str, uses: &str| {
                case.called
                    .iter()
                    .find(|(path, _)| path == uses)
                    .map(|(_, text)| text.clone())
            };
            let mut options = runnel_workflow::CallCheckOptions::default();
            if let Some(depth) = case.max_depth {
                options.max_depth = depth;
            }
            if case.permissions_policy.as_deref() == Some("LimitedRead") {
                options.permissions_policy = runnel_workflow::PermissionsPolicy::LimitedRead;
            }
            diagnostics.extend(runnel_workflow::check_calls(workflow, &resolve, options));
        }
        let errors: Vec<_> = diagnostics.iter().filter(|d| d.is_error()).collect();
        let we_reject = !errors.is_empty();
        let agrees = case.rejected == we_reject;
        match (agrees, verdict_exceptions.contains(&name)) {
            (true, true) => {
                failures.push(format!("{name}: listed in EXCEPTIONS.md but now agrees"))
            }
            (false, false) => failures.push(format!(
                "{name}: GitHub {} it, we {}:\n{}",
                if case.rejected { "rejects" } else { "accepts" },
                if errors.is_empty() {
                    "accept it"
                } else {
                    "reject it"
                },
                errors
                    .iter()
                    .map(|d| format!("  {d}\n"))
                    .collect::<String>()
            )),
            _ => {}
        }
        if !(agrees && case.rejected) || case.error_lines.is_empty() {
            continue;
        }
        let our_lines: BTreeSet<usize> = errors.iter().map(|d| d.line).collect();
        let missing: Vec<_> = case.error_lines.difference(&our_lines).collect();
        match (missing.is_empty(), position_exceptions.contains(&name)) {
            (true, true) => failures.push(format!("{name}: listed under Position but now agrees")),
            (false, false) => failures.push(format!(
                "{name}: GitHub reports lines {:?}, we {:?}",
                case.error_lines, our_lines
            )),
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
