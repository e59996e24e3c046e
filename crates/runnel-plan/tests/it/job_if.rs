//! Job-level `if:` with given needs results (the engine's view) and at plan time.

use runnel_plan::{Event, JobResult, NeedOutcome, NeedsState, plan_job, plan_workflow};

use crate::support::parse_workflow;

const WORKFLOW: &str = r#"
on: push
jobs:
  a:
    runs-on: x
    steps: [{run: 'true'}]
  default:
    needs: a
    runs-on: x
    steps: [{run: 'true'}]
  expr-only:
    needs: a
    if: github.ref == 'refs/heads/main'
    runs-on: x
    steps: [{run: 'true'}]
  always:
    needs: a
    if: always()
    runs-on: x
    steps: [{run: 'true'}]
  on-failure:
    needs: a
    if: failure()
    runs-on: x
    steps: [{run: 'true'}]
  not-cancelled:
    needs: a
    if: ${{ !cancelled() }}
    runs-on: x
    steps: [{run: 'true'}]
  on-cancel:
    needs: a
    if: cancelled()
    runs-on: x
    steps: [{run: 'true'}]
  result-check:
    needs: a
    if: always() && needs.a.result == 'skipped'
    runs-on: x
    steps: [{run: 'true'}]
  output-check:
    needs: a
    if: needs.a.outputs.go == 'yes'
    runs-on: x
    steps: [{run: 'true'}]
  explicit-success:
    needs: a
    if: success()
    runs-on: x
    steps: [{run: 'true'}]
  explicit-failure:
    needs: a
    if: failure()
    runs-on: x
    steps: [{run: 'true'}]
  named-success:
    needs: a
    if: success('a')
    runs-on: x
    steps: [{run: 'true'}]
  named-failure:
    needs: a
    if: ${{ failure('A') }}
    runs-on: x
    steps: [{run: 'true'}]
  interpolated:
    needs: a
    if: "${{ false }} "
    runs-on: x
    steps: [{run: 'true'}]
"#;

fn state(result: JobResult, ancestor_failed: bool, cancelled: bool) -> NeedsState {
    NeedsState {
        needs: vec![NeedOutcome {
            job_id: "a".to_owned(),
            result,
            outputs: vec![("go".to_owned(), "yes".to_owned())],
        }],
        any_ancestor_failed: ancestor_failed,
        cancelled,
    }
}

#[test]
fn job_if_table() {
    use JobResult::{Cancelled, Failure, Skipped, Success};
    let workflow = parse_workflow(WORKFLOW);
    let main = Event::push("main");
    let dev = Event::push("dev");
    // (job, need result, ancestor failed, run cancelled, event, expected)
    let cases = [
        ("default", Success, false, false, &main, true),
        ("default", Failure, true, false, &main, false),
        ("default", Skipped, false, false, &main, false),
        ("default", Success, false, true, &main, false),
        // The need ran anyway (`if: failure()`) after a job further up failed: the chain
        // stays failed, as act's job-status-check case and GitHub's docs have it.
        ("default", Success, true, false, &main, false),
        ("expr-only", Success, true, false, &main, false),
        ("expr-only", Success, false, false, &main, true),
        ("expr-only", Success, false, false, &dev, false),
        ("expr-only", Skipped, false, false, &main, false),
        ("always", Failure, true, false, &main, true),
        ("always", Skipped, false, false, &main, true),
        ("always", Cancelled, false, true, &main, true),
        ("on-failure", Failure, true, false, &main, true),
        ("on-failure", Success, false, false, &main, false),
        ("on-failure", Skipped, true, false, &main, true),
        ("on-failure", Skipped, false, false, &main, false),
        ("not-cancelled", Failure, true, false, &main, true),
        ("not-cancelled", Success, false, true, &main, false),
        ("on-cancel", Cancelled, false, true, &main, true),
        ("on-cancel", Success, false, false, &main, false),
        ("result-check", Skipped, false, false, &main, true),
        ("result-check", Success, false, false, &main, false),
        ("output-check", Success, false, false, &main, true),
        ("explicit-success", Success, false, false, &main, true),
        ("explicit-success", Failure, true, false, &main, false),
        // After a skipped need nothing failed, yet success() is false on GitHub.
        ("explicit-success", Skipped, false, false, &main, false),
        ("explicit-failure", Skipped, false, false, &main, false),
        ("explicit-failure", Failure, false, false, &main, true),
        ("named-success", Success, false, false, &main, true),
        ("named-success", Failure, false, false, &main, false),
        ("named-failure", Failure, false, false, &main, true),
        ("named-failure", Success, false, false, &main, false),
        ("interpolated", Success, false, false, &main, true),
        ("interpolated", Skipped, false, false, &main, false),
    ];
    let mut failures = Vec::new();
    for (job, result, ancestor_failed, cancelled, event, expected) in cases {
        let plan = plan_job(
            &workflow,
            job,
            event,
            &state(result, ancestor_failed, cancelled),
        );
        let would_run = plan.as_ref().map(|p| p.would_run).ok();
        if would_run != Some(expected) {
            failures.push(format!(
                "{job} with a={result} ancestor_failed={ancestor_failed} cancelled={cancelled} on {}: got {would_run:?}, notes {:?}",
                event.git_ref,
                plan.map(|p| p.notes).unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unknown_job_is_an_error() {
    let workflow = parse_workflow(WORKFLOW);
    assert!(
        plan_job(
            &workflow,
            "nope",
            &Event::push("main"),
            &NeedsState::default()
        )
        .is_err()
    );
}

#[test]
fn skips_cascade_at_plan_time_and_always_still_runs() {
    let workflow = parse_workflow(
        r#"
on: push
jobs:
  gate:
    if: github.ref == 'refs/heads/main'
    runs-on: x
    steps: [{run: 'true'}]
  after-gate:
    needs: gate
    runs-on: x
    steps: [{run: 'true'}]
  next:
    needs: after-gate
    runs-on: x
    steps: [{run: 'true'}]
  report:
    needs: next
    if: always()
    runs-on: x
    steps: [{run: 'true'}]
"#,
    );
    let plan = plan_workflow("w.yml", &workflow, &Event::push("dev"));
    let runs: Vec<(String, bool)> = plan
        .jobs
        .iter()
        .map(|j| (j.id.clone(), j.would_run))
        .collect();
    assert_eq!(
        runs,
        [
            ("gate", false),
            ("after-gate", false),
            ("next", false),
            ("report", true)
        ]
        .map(|(id, run)| (id.to_owned(), run))
    );
}
