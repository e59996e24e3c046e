//! GitHub's starter workflows: each gets the same verdict as GitHub's own parser
//! (`tests/corpus/verdicts.tsv`), and the rejected ones are rejected at the right line.

use crate::{data_dir, read};

#[test]
fn starter_workflows_match_github_verdicts() {
    let dir = data_dir("corpus");
    let verdicts = read(&dir.join("verdicts.tsv"));
    let mut failures = Vec::new();
    let mut count = 0;
    for line in verdicts.lines().filter(|l| !l.trim().is_empty()) {
        let Some((file, verdict)) = line.split_once('\t') else {
            panic!("bad verdicts line {line:?}");
        };
        count += 1;
        let text = read(&dir.join(file));
        let result = runnel_workflow::load_workflow(file, &text);
        let errors: Vec<String> = result
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
        match verdict {
            "ok" if !errors.is_empty() => {
                failures.push(format!("{file}: expected ok, got {errors:#?}"))
            }
            "err" => {
                // GitHub rejects these for a `{{ … }}` flow mapping where `with:` expects a
                // string; the error must point at that line.
                let bad_line = text
                    .lines()
                    .position(|l| l.contains("{{ groupId }}"))
                    .map(|i| i + 1);
                let at_line = result
                    .diagnostics
                    .iter()
                    .any(|d| d.is_error() && Some(d.line) == bad_line);
                if !at_line {
                    failures.push(format!(
                        "{file}: expected an error at line {bad_line:?}, got {errors:#?}"
                    ));
                }
            }
            "ok" => {}
            other => panic!("unknown verdict {other}"),
        }
    }
    assert_eq!(count, 173, "corpus size changed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
