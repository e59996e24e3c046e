//! `needs` ordering table (`tests/data/graph.json`).

use runnel_plan::needs_order;

use crate::support::{load, strings};

#[test]
fn needs_order_table() {
    let cases = load("graph.json");
    let mut failures = Vec::new();
    for case in cases.as_array().into_iter().flatten() {
        let doc = case["doc"].as_str().unwrap_or("?");
        let jobs: Vec<(String, Vec<String>)> = case["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|job| {
                (
                    job[0].as_str().unwrap_or_default().to_owned(),
                    strings(&job[1]),
                )
            })
            .collect();
        let input: Vec<(&str, &[String])> = jobs
            .iter()
            .map(|(id, needs)| (id.as_str(), needs.as_slice()))
            .collect();
        let result = needs_order(&input);
        let names = |indexes: &[usize]| -> Vec<String> {
            indexes
                .iter()
                .filter_map(|&i| jobs.get(i).map(|(id, _)| id.clone()))
                .collect()
        };
        let (order, unordered) = (names(&result.order), names(&result.unordered));
        if order != strings(&case["order"]) || unordered != strings(&case["unordered"]) {
            failures.push(format!(
                "{doc}: got order {order:?}, unordered {unordered:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
