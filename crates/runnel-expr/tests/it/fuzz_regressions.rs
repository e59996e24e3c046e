//! Replays the saved fuzz inputs under `tests/fuzz-regressions/` through the same calls as the
//! `expr` fuzz target: none may panic.

use runnel_expr::{EvalContext, Host, IfCondition, Object, ParseOptions, Template};

struct NoHost;
impl Host for NoHost {}

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
        let contexts = Object::new();
        let options = ParseOptions::permissive();
        let cx = EvalContext {
            contexts: &contexts,
            host: &NoHost,
        };
        if let Ok(expr) = runnel_expr::parse(text, &options)
            && let Ok(value) = expr.evaluate(&cx)
        {
            let _ = (
                value.to_display_string(),
                value.to_pretty_json(),
                value.to_json(),
            );
        }
        if let Ok(template) = Template::parse(text, &options) {
            let _ = template.evaluate(&cx);
        }
        if let Ok(condition) = IfCondition::parse(text, &options) {
            let _ = condition.evaluate(&cx);
        }
        replayed += 1;
    }
    assert!(replayed > 0, "no inputs in {}", dir.display());
}
