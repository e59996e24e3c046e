//! The seed workflows (the real workflows this runner serves) load without any diagnostic.

use crate::{data_dir, files, read, render_all};

#[test]
fn seed_workflows_load_cleanly() {
    let paths = files(&data_dir("seed"), ".yml");
    assert!(paths.len() >= 14, "seed workflows missing");
    let mut failures = Vec::new();
    for path in &paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = read(path);
        let rendered = render_all(&name, &text);
        if !rendered.is_empty() {
            failures.push(rendered);
        }
        let result = runnel_workflow::load_workflow(&name, &text);
        assert!(
            result.workflow.is_some_and(|w| !w.jobs.is_empty()),
            "{name}: no jobs"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
