//! Differential test of the workflow loader: `runnel validate` against GitHub's
//! `@actions/workflow-parser` (parse + convert) on GitHub's starter-workflow corpus, the seed
//! workflows and runnel-workflow's computed-key cases. Every file must get the same verdict
//! from both: accepted, or rejected.
//!
//! The verdicts come from running the npm parser now (`tests/oracle/parse-workflow.mjs`), not
//! from the recorded `verdicts.tsv`, so a new corpus file or parser version is checked as is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{
    first_existing_dir, oracle_or_skip, repo_root, run_expecting, runnel, shared_dirs,
    workflow_files_under,
};

#[test]
fn workflow_verdicts_agree_with_actions_workflow_parser() {
    let Some(oracle) = oracle_or_skip("oracle_workflow") else {
        return;
    };
    let files = corpus_files();
    assert!(
        files.len() >= 100,
        "only {} corpus files found",
        files.len()
    );

    let mut npm = oracle.node("parse-workflow.mjs");
    npm.args(&files);
    let npm_out = run_expecting(npm, None, &[0]);
    let npm_verdicts = npm_verdicts(&String::from_utf8_lossy(&npm_out.stdout));

    let mut ours = runnel();
    ours.args(["validate", "--format", "json"]).args(&files);
    let ours_out = run_expecting(ours, None, &[0, 1]);
    let our_verdicts = runnel_verdicts(&ours_out.stdout);

    let exceptions = computed_key_exceptions();
    let mut mismatches = Vec::new();
    for file in &files {
        let key = canonical(file);
        let npm = npm_verdicts.get(&key);
        let ours = our_verdicts.get(&key);
        // Listed in computed-keys/EXCEPTIONS.md: GitHub accepts, runnel refuses (not yet).
        let excepted = exceptions.contains(&key);
        match (npm, ours) {
            (Some(npm), Some(ours)) if excepted && npm.accepted && !ours.accepted => {}
            (Some(npm), Some(ours)) if !excepted && npm.accepted == ours.accepted => {}
            _ => mismatches.push(format!(
                "{}\n      npm:    {}\n      runnel: {}",
                file.display(),
                describe(npm),
                describe(ours)
            )),
        }
    }
    let rejected = npm_verdicts.values().filter(|v| !v.accepted).count();
    println!(
        "workflow oracle: {} files ({} rejected by GitHub's parser): {} agree, {} disagree",
        files.len(),
        rejected,
        files.len() - mismatches.len(),
        mismatches.len()
    );
    for mismatch in &mismatches {
        println!("  DISAGREE {mismatch}");
    }
    assert!(
        mismatches.is_empty(),
        "{} workflow files get a different verdict from runnel and @actions/workflow-parser",
        mismatches.len()
    );
}

/// One side's verdict on one file, with its first message to show on a mismatch.
struct Verdict {
    accepted: bool,
    first_message: String,
}

fn describe(verdict: Option<&Verdict>) -> String {
    match verdict {
        None => "no verdict reported for this file".to_owned(),
        Some(v) if v.accepted => "accepted".to_owned(),
        Some(v) => format!("rejected: {}", v.first_message),
    }
}

/// Starter workflows (the copy in runnel-workflow's tests when it exists, else `shared/`), plus
/// the seed workflows when they can be found.
fn corpus_files() -> Vec<PathBuf> {
    let in_repo = repo_root().join("crates/runnel-workflow/tests/corpus");
    let mut starter_candidates = vec![in_repo.join("starter-workflows"), in_repo.clone()];
    starter_candidates.extend(shared_dirs("workflow-corpus/starter-workflows"));
    let starter = first_existing_dir("the starter-workflow corpus", &starter_candidates);
    let mut files = workflow_files_under(&starter);

    let mut seed_candidates = vec![in_repo.join("seed-workflows")];
    seed_candidates.extend(shared_dirs("seed-workflows"));
    if let Some(seeds) = seed_candidates.iter().find(|p| p.is_dir())
        && !seeds.starts_with(&starter)
    {
        files.extend(workflow_files_under(seeds));
    }
    // Computed keys and `${{ insert }}`: where GitHub's template reader takes them and where not.
    files.extend(workflow_files_under(
        &repo_root().join("crates/runnel-workflow/tests/computed-keys"),
    ));
    files
}

/// The computed-key files GitHub accepts and runnel does not yet (their `EXCEPTIONS.md`).
fn computed_key_exceptions() -> std::collections::BTreeSet<PathBuf> {
    let dir = repo_root().join("crates/runnel-workflow/tests/computed-keys");
    let text = std::fs::read_to_string(dir.join("EXCEPTIONS.md")).expect("EXCEPTIONS.md");
    text.lines()
        .filter_map(|line| line.strip_prefix("- `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(file, _)| canonical(&dir.join(file)))
        .collect()
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Reads `file<TAB>ok` / `file<TAB>err<TAB>message` lines.
fn npm_verdicts(tsv: &str) -> BTreeMap<PathBuf, Verdict> {
    tsv.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            let file = fields.next()?;
            let verdict = fields.next()?;
            let message = fields.next().unwrap_or_default();
            Some((
                canonical(Path::new(file)),
                Verdict {
                    accepted: verdict == "ok",
                    first_message: message.to_owned(),
                },
            ))
        })
        .collect()
}

/// Reads `runnel validate --format json`:
/// `{"files":[{"file","ok","diagnostics":[{"line","col","severity","message"}]}]}`.
fn runnel_verdicts(stdout: &[u8]) -> BTreeMap<PathBuf, Verdict> {
    let report: Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "`runnel validate --format json` did not print JSON ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    });
    let files = report["files"].as_array().cloned().unwrap_or_default();
    files
        .iter()
        .filter_map(|entry| {
            let file = entry["file"].as_str()?;
            let first_error = entry["diagnostics"].as_array().and_then(|diagnostics| {
                diagnostics
                    .iter()
                    .find(|d| d["severity"].as_str() == Some("error"))
            });
            let first_message = first_error.map_or_else(String::new, |d| {
                format!(
                    "{}:{}: {}",
                    d["line"],
                    d["col"],
                    d["message"].as_str().unwrap_or_default()
                )
            });
            Some((
                canonical(Path::new(file)),
                Verdict {
                    accepted: entry["ok"].as_bool() == Some(true),
                    first_message,
                },
            ))
        })
        .collect()
}
