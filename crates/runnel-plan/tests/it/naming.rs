//! Job display names (`tests/data/naming.json`).

use runnel_plan::matrix_job_name;

use crate::support::{load, object};

#[test]
fn naming_table() {
    let cases = load("naming.json");
    let mut failures = Vec::new();
    for case in cases.as_array().into_iter().flatten() {
        let doc = case["doc"].as_str().unwrap_or("?");
        let leg = case["leg"].as_object().map(object).unwrap_or_default();
        let name = matrix_job_name(case["base"].as_str().unwrap_or_default(), &leg);
        if Some(name.as_str()) != case["name"].as_str() {
            failures.push(format!("{doc}: got {name:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
