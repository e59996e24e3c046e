//! Shared helpers: contexts from JSON and a host with a fixed job status.

use runnel_expr::{EvalContext, Host, JobStatus, Object, ParseOptions, Value, parse};

/// A host with a fixed job status and a `hashFiles` that echoes its input.
pub(crate) struct TestHost {
    pub(crate) status: JobStatus,
}

impl Host for TestHost {
    fn job_status(&self) -> JobStatus {
        self.status
    }
    fn hash_files(&self, follow_symlinks: bool, patterns: &[String]) -> Result<String, String> {
        Ok(format!("{follow_symlinks}:{}", patterns.join("|")))
    }
}

pub(crate) const SUCCESS: TestHost = TestHost {
    status: JobStatus::Success,
};

/// Contexts from a JSON object literal.
pub(crate) fn contexts(json: &str) -> Object {
    let parsed: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    match Value::from_json(&parsed) {
        Value::Object(object) => (*object).clone(),
        _ => Object::new(),
    }
}

/// Parses with every function and every context (plus the names in `contexts`) allowed and
/// evaluates against `contexts`.
pub(crate) fn eval(expr: &str, contexts: &Object) -> Result<Value, String> {
    let mut options = ParseOptions::permissive();
    options
        .named_values
        .extend(contexts.iter().map(|(k, _)| k.to_owned()));
    let parsed = parse(expr, &options).map_err(|e| e.message)?;
    let cx = EvalContext {
        contexts,
        host: &SUCCESS,
    };
    parsed.evaluate(&cx).map_err(|e| e.message)
}

/// The value as compact JSON text, for table comparisons.
pub(crate) fn show(value: &Value) -> String {
    format!("{}:{}", value.kind_name(), value.to_json())
}
