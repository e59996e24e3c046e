//! Computed mapping keys and `${{ insert }}` (`tests/computed-keys`): each workflow gets the
//! verdict GitHub's `@actions/workflow-parser` gave it (`verdicts.tsv`, written by
//! `tests/oracle/parse-workflow.mjs`, which runnel-cli's oracle test reruns on these files),
//! and a rejected one is rejected at the line GitHub names — except the files
//! `EXCEPTIONS.md` lists, which GitHub accepts and runnel refuses (computed keys it does not
//! evaluate yet), each at its key with runnel's own message.

use std::collections::BTreeSet;

use crate::{data_dir, read};

/// The files `EXCEPTIONS.md` lists (its lines "- `FILE`: …").
fn exceptions(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("- `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(file, _)| file.to_owned())
        .collect()
}

#[test]
fn computed_keys_match_github_verdicts() {
    let dir = data_dir("computed-keys");
    let verdicts = read(&dir.join("verdicts.tsv"));
    let exceptions = exceptions(&read(&dir.join("EXCEPTIONS.md")));
    assert!(!exceptions.is_empty(), "EXCEPTIONS.md lists no file");
    let mut failures = Vec::new();
    let mut count = 0;
    for line in verdicts.lines().filter(|l| !l.trim().is_empty()) {
        let mut fields = line.splitn(3, '\t');
        let (Some(file), Some(verdict)) = (fields.next(), fields.next()) else {
            panic!("bad verdicts line {line:?}");
        };
        count += 1;
        let text = read(&dir.join(file));
        let result = runnel_workflow::load_workflow(file, &text);
        let error_lines: Vec<usize> = result
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.line)
            .collect();
        let rendered = || {
            result
                .diagnostics
                .iter()
                .map(|d| runnel_workflow::render(d, &text))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if exceptions.contains(file) {
            let not_yet = result.diagnostics.iter().any(|d| {
                d.is_error() && d.message.contains("runnel does not evaluate computed keys")
            });
            if verdict != "ok" || !not_yet {
                failures.push(format!(
                    "{file}: listed in EXCEPTIONS.md, but GitHub says {verdict} and we:\n{}",
                    rendered()
                ));
            }
            continue;
        }
        match verdict {
            "ok" if !error_lines.is_empty() => {
                failures.push(format!(
                    "{file}: GitHub accepts it, we reject it:\n{}",
                    rendered()
                ));
            }
            "err" => {
                let message = fields.next().unwrap_or_default();
                let github_line = message
                    .split_once("(Line: ")
                    .and_then(|(_, rest)| rest.split_once(','))
                    .and_then(|(line, _)| line.parse::<usize>().ok());
                if error_lines.is_empty() {
                    failures.push(format!(
                        "{file}: GitHub rejects it ({message}), we accept it"
                    ));
                } else if let Some(line) = github_line
                    && !error_lines.contains(&line)
                {
                    failures.push(format!(
                        "{file}: GitHub reports line {line} ({message}), we:\n{}",
                        rendered()
                    ));
                }
            }
            _ => {}
        }
    }
    assert!(count >= 40, "computed-keys cases missing");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
