//! The seed workflows (`tests/seed`) planned for events, as `tests/data/seed_plans.json` says.

use runnel_plan::{WorkflowPlan, plan_workflow};

use crate::support::{data_dir, event, load};

fn load_seed(file: &str) -> runnel_workflow::Workflow {
    let path = data_dir().join("seed").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let loaded = runnel_workflow::load_workflow(file, &text);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{d:?}"))
        .collect();
    assert!(errors.is_empty(), "{file}: {errors:#?}");
    loaded
        .workflow
        .unwrap_or_else(|| panic!("{file}: no workflow"))
}

/// One line per instance: `name <- needs : run|skip [labels]`.
pub(crate) fn render(plan: &WorkflowPlan) -> Vec<String> {
    plan.jobs
        .iter()
        .map(|job| {
            format!(
                "{} <- {} : {} [{}]",
                job.name,
                job.needs.join(","),
                if job.would_run { "run" } else { "skip" },
                job.runs_on.join(",")
            )
        })
        .collect()
}

#[test]
fn seed_plans() {
    let cases = load("seed_plans.json");
    let mut failures = Vec::new();
    for case in cases.as_array().into_iter().flatten() {
        let file = case["file"].as_str().unwrap_or_default();
        let workflow = load_seed(file);
        let event = event(&case["event"]);
        let plan = plan_workflow(file, &workflow, &event);
        let label = format!("{file} for {} {}", event.name, event.git_ref);
        if Some(plan.triggered) != case["triggered"].as_bool() {
            failures.push(format!(
                "{label}: triggered={} ({:?})",
                plan.triggered, plan.not_triggered
            ));
        }
        let errors: Vec<_> = plan
            .notes
            .iter()
            .filter(|n| n.severity == runnel_plan::NoteSeverity::Error)
            .collect();
        if !errors.is_empty() {
            failures.push(format!("{label}: error notes {errors:?}"));
        }
        let actual = render(&plan);
        if let Some(expected) = case.get("jobs") {
            let expected: Vec<String> = crate::support::strings(expected);
            if actual != expected {
                failures.push(format!(
                    "{label}:\n  expected {expected:#?}\n  actual {actual:#?}"
                ));
            }
        }
        for (job_id, run) in case
            .get("run")
            .and_then(|r| r.as_object())
            .into_iter()
            .flatten()
        {
            let instances: Vec<_> = plan.jobs.iter().filter(|j| &j.id == job_id).collect();
            if instances.is_empty() || instances.iter().any(|j| Some(j.would_run) != run.as_bool())
            {
                failures.push(format!(
                    "{label}: job {job_id} expected would_run={run}, plan {actual:#?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_seed_workflow_plans_without_errors() {
    let dir = data_dir().join("seed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "yml"));
    files.sort();
    assert_eq!(files.len(), 14);
    for path in files {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let workflow = load_seed(&file);
        let plan = plan_workflow(&file, &workflow, &runnel_plan::Event::push("main"));
        assert!(!plan.jobs.is_empty(), "{file}: no jobs");
        let errors: Vec<_> = plan
            .notes
            .iter()
            .filter(|n| n.severity == runnel_plan::NoteSeverity::Error)
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }
}
