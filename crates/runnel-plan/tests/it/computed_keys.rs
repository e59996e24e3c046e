//! Matrices whose keys are computed (`${{ github.event_name }}: [...]`) or merged in with
//! `${{ insert }}`, in the matrix and in its `include`/`exclude` rows: the table
//! `tests/data/computed_keys.json` gives each workflow (as lines), the event, and the planned
//! instances with their matrix legs, or the error note.

use runnel_plan::plan_workflow;

use crate::seed::render;
use crate::support::{event, load, object_json, parse_workflow, strings};

#[test]
fn computed_matrix_keys() {
    let cases = load("computed_keys.json");
    let mut failures = Vec::new();
    for case in cases.as_array().into_iter().flatten() {
        let doc = case["doc"].as_str().unwrap_or("?");
        let workflow = parse_workflow(&strings(&case["workflow"]).join("\n"));
        let plan = plan_workflow("w.yml", &workflow, &event(&case["event"]));
        let jobs = render(&plan);
        let legs: Vec<String> = plan
            .jobs
            .iter()
            .filter_map(|job| job.matrix.as_ref().map(|leg| object_json(leg).to_string()))
            .collect();
        let notes: Vec<String> = plan.notes.iter().map(|n| n.message.clone()).collect();
        for (what, actual) in [("jobs", &jobs), ("legs", &legs), ("notes", &notes)] {
            let expected = strings(&case[what]);
            if *actual != expected {
                failures.push(format!(
                    "{doc}: {what}\n  expected {expected:#?}\n  actual   {actual:#?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
