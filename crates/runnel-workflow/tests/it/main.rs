//! The integration tests of runnel-workflow, one binary: GitHub's reader conformance data,
//! the starter-workflow corpus, the seed workflows, snapshots of diagnostics for broken
//! workflows, and checks of the model's shape.

mod actions;
mod bad;
mod computed_keys;
mod conformance;
mod corpus;
mod fuzz_regressions;
mod model;
mod robustness;
mod seed;

use std::path::{Path, PathBuf};

/// A directory under `tests/`.
fn data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Files under `dir` (recursively) whose name ends with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every diagnostic rendered with its source line, as the CLI shows them.
fn render_all(file: &str, text: &str) -> String {
    let result = runnel_workflow::load_workflow(file, text);
    result
        .diagnostics
        .iter()
        .map(|d| runnel_workflow::render(d, text))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Snapshot check of every `*.yml` under `tests/<folder>`: `produce(name, text)` must equal
/// the file's `.expected` twin (an empty result is a failure too when `require_output`).
/// With `UPDATE_EXPECT=1` the twins are rewritten instead.
fn check_snapshots(
    folder: &str,
    at_least: usize,
    require_output: bool,
    produce: impl Fn(&str, &str) -> String,
) {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let paths = files(&data_dir(folder), ".yml");
    assert!(paths.len() >= at_least, "{folder} fixtures missing");
    let mut failures = Vec::new();
    for path in &paths {
        let name = format!(
            "{folder}/{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        let actual = produce(&name, &read(path));
        let expected_path = path.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &actual)
                .unwrap_or_else(|e| panic!("writing {}: {e}", expected_path.display()));
            continue;
        }
        if require_output && actual.is_empty() {
            failures.push(format!("{name}: no diagnostics"));
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "--- {name}: expected\n{expected}\n--- actual\n{actual}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(run with UPDATE_EXPECT=1 to accept)",
        failures.join("\n")
    );
}
