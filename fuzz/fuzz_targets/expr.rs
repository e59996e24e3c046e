//! Fuzzes the expression parser, evaluator and template scanner: no input may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runnel_expr::{EvalContext, Host, IfCondition, Object, ParseOptions, Template, Value};

struct NoHost;
impl Host for NoHost {}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut contexts = Object::new();
    let json = r#"{"a": {"b": [1, "x", null, {"c": true}], "d": -0.0}, "s": "Hello"}"#;
    if let Ok(parsed) = serde_json_lite(json) {
        contexts = parsed;
    }
    let options = ParseOptions::permissive();
    let host = NoHost;
    let cx = EvalContext { contexts: &contexts, host: &host };
    if let Ok(expr) = runnel_expr::parse(text, &options) {
        if let Ok(value) = expr.evaluate(&cx) {
            let _ = value.to_display_string();
            let _ = value.to_pretty_json();
            let _ = value.to_json();
        }
    }
    if let Ok(template) = Template::parse(text, &options) {
        let _ = template.evaluate(&cx);
    }
    if let Ok(condition) = IfCondition::parse(text, &options) {
        let _ = condition.evaluate(&cx);
    }
});

fn serde_json_lite(json: &str) -> Result<Object, ()> {
    // The expression crate parses JSON itself (fromJSON); reuse it so the fuzz crate needs no
    // extra dependency.
    let options = ParseOptions::permissive();
    let expr = runnel_expr::parse(&format!("fromJSON('{json}')"), &options).map_err(|_| ())?;
    let empty = Object::new();
    let cx = EvalContext { contexts: &empty, host: &NoHost };
    let mut contexts = Object::new();
    contexts.insert("ctx", expr.evaluate(&cx).map_err(|_| ())?);
    if let Some(Value::Object(inner)) = contexts.get("ctx") {
        return Ok((**inner).clone());
    }
    Err(())
}
