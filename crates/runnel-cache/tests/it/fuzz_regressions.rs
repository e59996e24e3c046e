//! Replays the saved fuzz inputs under `tests/fuzz-regressions/` through the same call as the
//! `cache_http` fuzz target: none may panic. The files also seed the fuzzer's corpus.

#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the folder is part of the repository") {
        let path = entry.expect("readable folder").path();
        let bytes = std::fs::read(&path).expect("readable file");
        runnel_cache::parse_untrusted_request(&bytes);
        replayed += 1;
    }
    assert!(replayed > 0, "no inputs in {}", dir.display());
}
