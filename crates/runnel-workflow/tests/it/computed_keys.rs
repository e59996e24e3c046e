//! Computed mapping keys and `${{ insert }}` (`tests/computed-keys`): each workflow gets the
//! verdict GitHub's `@actions/workflow-parser` gave it (`verdicts.tsv`, written by
//! `tests/oracle/parse-workflow.mjs`, which runnel-cli's oracle test reruns on these files),
//! and a rejected one is rejected at the line GitHub names.

use crate::{data_dir, read};

#[test]
fn computed_keys_match_github_verdicts() {
    let dir = data_dir("computed-keys");
    let verdicts = read(&dir.join("verdicts.tsv"));
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
    assert!(count >= 25, "computed-keys cases missing");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
