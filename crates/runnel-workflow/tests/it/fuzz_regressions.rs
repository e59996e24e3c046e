//! Replays the saved fuzz inputs under `tests/fuzz-regressions/` through the same calls as the
//! `workflow` fuzz target: none may panic, and each must come back with diagnostics or a model.

#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the folder is part of the repository") {
        let path = entry.expect("readable folder").path();
        let bytes = std::fs::read(&path).expect("readable file");
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let result = runnel_workflow::load_workflow("fuzz.yml", text);
        for diagnostic in &result.diagnostics {
            let _ = runnel_workflow::render(diagnostic, text);
        }
        replayed += 1;
    }
    assert!(replayed > 0, "no inputs in {}", dir.display());
}
