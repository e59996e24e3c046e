//! The model's shape for small workflows: what the plan crate reads.

use runnel_expr::Template;
use runnel_workflow::{LiteralOrExpr, Matrix, RunsOn, StepKind, load_workflow};

#[test]
fn basic_workflow_model() {
    let text = "\
name: CI
on:
  push:
    branches: [main]
    paths-ignore: ['docs/**']
  workflow_dispatch:
jobs:
  build:
    runs-on: [self-hosted, linux]
    strategy:
      fail-fast: false
      matrix:
        os: [a, b]
        v: [1, 2]
        include:
          - os: c
    steps:
      - id: hello
        run: echo hi
        shell: bash
      - uses: actions/checkout@v4
        with:
          depth: 1
  test:
    needs: build
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - run: echo test
";
    let result = load_workflow("ci.yml", text);
    assert!(result.diagnostics.is_empty(), "{:?}", result.diagnostics);
    let Some(workflow) = result.workflow else {
        panic!("no workflow");
    };
    assert_eq!(workflow.name.as_ref().map(|n| n.value.as_str()), Some("CI"));
    let push = workflow
        .on
        .events
        .get("push")
        .unwrap_or_else(|| panic!("no push"));
    let branches = push
        .branches
        .as_ref()
        .unwrap_or_else(|| panic!("no branches"));
    assert!(!branches.ignore);
    assert_eq!(
        branches.patterns.first().map(|p| p.value.as_str()),
        Some("main")
    );
    assert!(push.paths.as_ref().is_some_and(|p| p.ignore));
    assert!(workflow.on.workflow_dispatch.is_some());
    let ids: Vec<&str> = workflow.jobs.keys().map(String::as_str).collect();
    assert_eq!(ids, ["build", "test"]);

    let build = workflow
        .jobs
        .get("build")
        .unwrap_or_else(|| panic!("no build"));
    assert_eq!((build.id.span.line, build.id.span.col), (8, 3));
    assert!(matches!(&build.runs_on, Some(RunsOn::Labels(labels, _)) if labels.len() == 2));
    let strategy = build
        .strategy
        .as_ref()
        .unwrap_or_else(|| panic!("no strategy"));
    assert!(matches!(strategy.fail_fast, Some(LiteralOrExpr::Literal(ref b)) if !b.value));
    let Some(Matrix::Map {
        dimensions,
        include,
        ..
    }) = &strategy.matrix
    else {
        panic!("no matrix");
    };
    let names: Vec<&str> = dimensions.iter().map(|d| d.key.raw()).collect();
    assert_eq!(names, ["os", "v"]);
    assert!(matches!(include, Some(LiteralOrExpr::Literal(rows)) if rows.value.len() == 1));
    assert_eq!(build.steps.len(), 2);
    let first = build.steps.first().unwrap_or_else(|| panic!("no step"));
    assert_eq!(first.id.as_ref().map(|i| i.value.as_str()), Some("hello"));
    assert!(matches!(&first.kind, StepKind::Run(run) if run.run.raw == "echo hi"));
    let second = build.steps.get(1).unwrap_or_else(|| panic!("no step"));
    let StepKind::Uses(uses) = &second.kind else {
        panic!("not uses");
    };
    assert_eq!(uses.uses.value, "actions/checkout@v4");
    assert_eq!(uses.with.get("depth").map(|d| d.raw.as_str()), Some("1"));

    let test = workflow
        .jobs
        .get("test")
        .unwrap_or_else(|| panic!("no test"));
    assert_eq!(test.needs.first().map(|n| n.value.as_str()), Some("build"));
    assert!(matches!(test.timeout_minutes, Some(LiteralOrExpr::Literal(ref n)) if n.value == 5.0));
}

#[test]
fn expressions_keep_their_form() {
    let text = "\
on: push
env:
  RATIO: 0.84551240822557006
  FLAG: true
jobs:
  pick:
    runs-on: ubuntu-latest
    outputs:
      runner: ${{ steps.p.outputs.runner }}
    steps:
      - id: p
        run: echo runner=x >> $GITHUB_OUTPUT
  build:
    needs: pick
    if: needs.pick.result == 'success'
    runs-on: ${{ fromJSON(needs.pick.outputs.runner) }}
    continue-on-error: ${{ github.event_name == 'push' }}
    strategy:
      matrix: ${{ fromJSON(needs.pick.outputs.matrix) }}
    steps:
      - run: echo ${{ matrix.os }} on ${{ runner.os }}
";
    let result = load_workflow("expr.yml", text);
    assert!(result.diagnostics.is_empty(), "{:?}", result.diagnostics);
    let Some(workflow) = result.workflow else {
        panic!("no workflow");
    };
    // Numbers and booleans in `env` become strings the way GitHub converts them.
    assert_eq!(
        workflow.env.get("RATIO").map(|v| v.raw.as_str()),
        Some("0.84551240822557")
    );
    assert_eq!(
        workflow.env.get("FLAG").map(|v| v.raw.as_str()),
        Some("true")
    );
    let build = workflow
        .jobs
        .get("build")
        .unwrap_or_else(|| panic!("no build"));
    let condition = build
        .if_condition
        .as_ref()
        .unwrap_or_else(|| panic!("no if"));
    assert_eq!(condition.source, "needs.pick.result == 'success'");
    assert_eq!((condition.span.line, condition.span.col), (15, 9));
    assert!(
        matches!(&build.runs_on, Some(RunsOn::Expr(t)) if matches!(t.template, Template::Whole(_)))
    );
    assert!(matches!(
        build.continue_on_error,
        Some(LiteralOrExpr::Expr(_))
    ));
    let strategy = build
        .strategy
        .as_ref()
        .unwrap_or_else(|| panic!("no strategy"));
    assert!(matches!(strategy.matrix, Some(Matrix::Expr(_))));
    let step = build.steps.first().unwrap_or_else(|| panic!("no step"));
    let StepKind::Run(run) = &step.kind else {
        panic!("not run");
    };
    assert!(matches!(run.run.template, Template::Interpolated(_)));
}

#[test]
fn partial_model_comes_with_errors() {
    let text = "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo\n  b:\n    needs: nope\n    steps: [{run: echo}]\n";
    let result = load_workflow("p.yml", text);
    assert!(result.has_errors());
    let workflow = result
        .workflow
        .unwrap_or_else(|| panic!("no partial model"));
    assert_eq!(workflow.jobs.len(), 2);
    let lines: Vec<(usize, usize)> = result.diagnostics.iter().map(|d| (d.line, d.col)).collect();
    assert_eq!(lines, [(8, 5), (8, 12)]);
}

/// Gitea's task payload for a job calling a reusable workflow carries `runs-on: []`; a
/// non-empty `runs-on` there is still an error (GitHub's `errors-job-runs-on-and-uses.yml`).
/// `.gitea/workflows` is as good a place for the called file as `.github/workflows`.
#[test]
fn call_jobs_from_gitea_payloads() {
    let payload = "\
on: push
jobs:
  call:
    name: call
    runs-on: []
    uses: acme/lib/.gitea/workflows/build.yml@v1
    with:
      who: gitea
";
    let result = load_workflow("payload.yml", payload);
    assert!(result.diagnostics.is_empty(), "{:?}", result.diagnostics);
    let call = result
        .workflow
        .and_then(|w| w.jobs.get("call").cloned())
        .and_then(|job| job.call)
        .map(|call| call.uses.value);
    assert_eq!(
        call.as_deref(),
        Some("acme/lib/.gitea/workflows/build.yml@v1")
    );

    let labelled = payload.replace("runs-on: []", "runs-on: [linux]");
    let result = load_workflow("payload.yml", &labelled);
    let errors: Vec<String> = result.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        errors,
        [
            "payload.yml:5:5: error: `runs-on` cannot be used in a job that calls a reusable workflow"
        ]
    );
}

/// `check_call` and `check_calls` with a resolver: GitHub's conformance data covers inputs
/// and secrets; this covers the trigger, cycles and the engine-facing messages.
#[test]
fn calls_are_checked_against_the_called_workflow() {
    let caller = "\
on: push
jobs:
  a:
    uses: ./.gitea/workflows/a.yml
  plain:
    uses: ./.gitea/workflows/plain.yml
";
    let files = [
        (
            "./.gitea/workflows/a.yml",
            "on: workflow_call\njobs:\n  b:\n    uses: ./.gitea/workflows/b.yml\n",
        ),
        (
            "./.gitea/workflows/b.yml",
            "on: workflow_call\njobs:\n  a:\n    uses: ./.gitea/workflows/a.yml\n",
        ),
        (
            "./.gitea/workflows/plain.yml",
            "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: echo\n",
        ),
    ];
    let workflow = load_workflow("ci.yml", caller).workflow.expect("model");
    let resolve = |_caller: &str, uses: &str| {
        files
            .iter()
            .find(|(path, _)| *path == uses)
            .map(|(_, text)| (*text).to_owned())
    };
    let found: Vec<String> = runnel_workflow::check_calls(
        &workflow,
        &resolve,
        runnel_workflow::CallCheckOptions::default(),
    )
    .iter()
    .map(|d| d.to_string())
    .collect();
    assert_eq!(
        found,
        [
            "ci.yml:4:11: error: reusable workflows call each other in a cycle: ci.yml -> ./.gitea/workflows/a.yml -> ./.gitea/workflows/b.yml -> ./.gitea/workflows/a.yml",
            "ci.yml:6:11: error: `./.gitea/workflows/plain.yml` is not a reusable workflow: ./.gitea/workflows/plain.yml has no `on: workflow_call` trigger",
        ]
    );
}
