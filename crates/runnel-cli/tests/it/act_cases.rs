//! act's host-mode runner cases (its `TestRunEventHostEnvironment` table), as runnel's own
//! workflows under `tests/act-cases/`: one directory per behaviour, each with a `workflow.yml`,
//! the local actions it uses, and `expected` — `act:` the act case it stands for, `args:`
//! extra `runnel run` flags, `exit:` the exit code, `out:` text a step must print, `not:` text
//! no step may print (step output lines, not step names or the summary). Every case runs through the real `runnel run` on the host backend, in a copy of
//! its directory made a git repository whose `origin` is `https://gitea.example.invalid/
//! act-cases/<case>.git`. Where runnel means to differ from act, `EXCEPTIONS.md` beside the
//! cases says so.

use std::path::Path;

use crate::support::{copy_tree, git, repo_root, run, runnel};

/// One case's `expected` file.
#[derive(Default)]
struct Expected {
    args: Vec<String>,
    exit: i32,
    out: Vec<String>,
    not: Vec<String>,
}

fn expected(text: &str) -> Expected {
    let mut expected = Expected::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key {
            "act" => {}
            "args" => expected.args = value.split_whitespace().map(str::to_owned).collect(),
            "exit" => expected.exit = value.parse().expect("exit: a number"),
            "out" => expected.out.push(value),
            "not" => expected.not.push(value),
            other => panic!("unknown key {other:?} in an act case's expected file"),
        }
    }
    expected
}

/// Runs one case; the problems found, if any.
fn check(case: &Path) -> Vec<String> {
    let name = case
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let expected = expected(&std::fs::read_to_string(case.join("expected")).expect("expected"));
    let work = tempfile::tempdir().expect("tempdir");
    copy_tree(case, work.path());
    git(work.path(), &["init", "-q"]);
    git(work.path(), &["add", "-A"]);
    git(work.path(), &["commit", "-q", "-m", "case"]);
    let origin = format!("https://gitea.example.invalid/act-cases/{name}.git");
    git(work.path(), &["remote", "add", "origin", &origin]);
    let cache = tempfile::tempdir().expect("cache dir");
    let mut command = runnel();
    command
        .current_dir(work.path())
        .args(["run", "-W", "workflow.yml", "--cache-server-path"])
        .arg(cache.path())
        .args(&expected.args)
        .env("NO_COLOR", "1");
    let output = run(command, None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // What steps printed: `[job]   text` (step names and results have a mark after `] `).
    let printed: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.split_once("]   ").map(|(_, text)| text))
        .collect();
    let printed_contains = |text: &str| printed.iter().any(|line| line.contains(text));
    let mut problems = Vec::new();
    if output.status.code() != Some(expected.exit) {
        problems.push(format!(
            "exit {:?}, expected {}",
            output.status.code(),
            expected.exit
        ));
    }
    for text in &expected.out {
        if !printed_contains(text) {
            problems.push(format!("missing {text:?}"));
        }
    }
    for text in &expected.not {
        if printed_contains(text) {
            problems.push(format!("unexpected {text:?}"));
        }
    }
    if problems.is_empty() {
        return problems;
    }
    vec![format!(
        "{name}: {}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        problems.join("; ")
    )]
}

#[test]
fn acts_host_mode_cases_run_as_act_runs_them() {
    let dir = repo_root().join("crates/runnel-cli/tests/act-cases");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("act-cases")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("expected").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "only {} act cases", cases.len());
    let failures: Vec<String> = cases.iter().flat_map(|case| check(case)).collect();
    println!(
        "act cases: {} run, {} as expected",
        cases.len(),
        cases.len() - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
