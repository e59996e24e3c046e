//! Shared helpers: loading table data and converting JSON to expression values.

use std::path::PathBuf;

use runnel_expr::{Object, Value};
use runnel_plan::Event;

pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// Reads `tests/data/<name>` as JSON.
pub(crate) fn load(name: &str) -> serde_json::Value {
    let path = data_dir().join("data").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// JSON to `Value`, keeping key order (written here so the tests do not depend on the
/// conversion helpers of runnel-expr).
pub(crate) fn value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => {
            Value::Array(items.iter().map(value).collect::<Vec<_>>().into())
        }
        serde_json::Value::Object(map) => Value::Object(object(map).into()),
    }
}

pub(crate) fn object(map: &serde_json::Map<String, serde_json::Value>) -> Object {
    let mut object = Object::new();
    for (key, item) in map {
        object.insert(key.as_str(), value(item));
    }
    object
}

/// `Value` back to JSON for comparisons (numbers stay numbers).
pub(crate) fn json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        // Integral numbers print without `.0` so expectations can be written naturally.
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => {
            serde_json::Value::from(*n as i64)
        }
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(json).collect()),
        Value::Object(object) => object_json(object),
    }
}

pub(crate) fn object_json(object: &Object) -> serde_json::Value {
    serde_json::Value::Object(
        object
            .iter()
            .map(|(k, v)| (k.to_owned(), json(v)))
            .collect(),
    )
}

pub(crate) fn strings(json: &serde_json::Value) -> Vec<String> {
    json.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Builds an event from a table entry: `name`, `ref`, `action`, `base`/`head` (pull
/// requests), `changed` (files), `schedule` (cron), `inputs` and `vars` (string maps).
pub(crate) fn event(json: &serde_json::Value) -> Event {
    let name = json["name"].as_str().unwrap_or_default();
    let mut event = match json.get("base") {
        Some(base) if name.starts_with("pull_request") => {
            let head = json.get("head").and_then(|h| h.as_str()).unwrap_or("topic");
            let mut event = Event::pull_request(base.as_str().unwrap_or_default(), head);
            event.name = name.to_owned();
            event
        }
        _ => Event::new(name),
    };
    if let Some(git_ref) = json.get("ref").and_then(|r| r.as_str()) {
        event.git_ref = runnel_plan::full_ref(git_ref);
    }
    if let Some(action) = json.get("action") {
        event.action = action.as_str().map(str::to_owned);
    }
    event.changed_files = json.get("changed").map(strings);
    if let Some(cron) = json.get("schedule").and_then(|c| c.as_str()) {
        event
            .payload
            .insert("schedule", Value::String(cron.to_owned()));
    }
    let pairs = |key: &str| -> Vec<(String, String)> {
        json.get(key)
            .and_then(|m| m.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    event.inputs = pairs("inputs");
    event.vars = pairs("vars");
    event
}

/// Loads an inline workflow that must have no error diagnostics.
pub(crate) fn parse_workflow(text: &str) -> runnel_workflow::Workflow {
    let loaded = runnel_workflow::load_workflow("inline.yml", text);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{d:?}"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    loaded.workflow.unwrap_or_else(|| panic!("no workflow"))
}
