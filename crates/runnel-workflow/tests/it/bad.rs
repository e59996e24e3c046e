//! Broken workflows in `tests/bad/`: each `X.yml` and the exact rendered diagnostics in
//! `X.expected`. Run with `UPDATE_EXPECT=1` to rewrite the expectations after a deliberate
//! change (then review the diff).

use crate::{data_dir, files, read, render_all};

#[test]
fn broken_workflows_render_expected_diagnostics() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let paths = files(&data_dir("bad"), ".yml");
    assert!(paths.len() >= 13, "bad workflows missing");
    let mut failures = Vec::new();
    for path in &paths {
        let name = format!(
            "bad/{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        let actual = render_all(&name, &read(path));
        let expected_path = path.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &actual)
                .unwrap_or_else(|e| panic!("writing {}: {e}", expected_path.display()));
            continue;
        }
        if actual.is_empty() {
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
