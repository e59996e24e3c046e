//! Workflow plans from inline fixtures: matrices from expressions, names, runs-on, inputs.

use runnel_plan::{
    Event, JobResult, NeedOutcome, NeedsState, NoteSeverity, plan_job, plan_workflow,
};

use crate::seed::render;
use crate::support::{object_json, parse_workflow};

#[test]
fn matrix_from_inputs_is_expanded_at_plan_time() {
    let workflow = parse_workflow(
        r#"
on:
  workflow_dispatch:
    inputs:
      targets: {type: string, default: '["a","b"]'}
jobs:
  build:
    strategy:
      matrix:
        target: ${{ fromJSON(inputs.targets) }}
        os: [linux]
    runs-on: ${{ matrix.os }}
    steps: [{run: 'true'}]
"#,
    );
    let plan = plan_workflow("w.yml", &workflow, &Event::workflow_dispatch("main", &[]));
    assert_eq!(
        render(&plan),
        [
            "build (a, linux) <-  : run [linux]",
            "build (b, linux) <-  : run [linux]"
        ]
    );
    assert_eq!(
        plan.jobs
            .iter()
            .map(|j| (j.job_index, j.job_total))
            .collect::<Vec<_>>(),
        [(0, 2), (1, 2)]
    );
}

#[test]
fn matrix_from_needs_is_deferred_then_expanded_by_plan_job() {
    let workflow = parse_workflow(
        r#"
on: push
jobs:
  setup:
    runs-on: x
    outputs:
      m: ${{ steps.s.outputs.m }}
    steps: [{id: s, run: 'true'}]
  build:
    needs: setup
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.m) }}
    runs-on: x
    steps: [{run: 'true'}]
"#,
    );
    let plan = plan_workflow("w.yml", &workflow, &Event::push("main"));
    let build: Vec<_> = plan.jobs.iter().filter(|j| j.id == "build").collect();
    assert_eq!(build.len(), 1);
    assert!(
        build
            .iter()
            .all(|j| j.matrix.is_none() && j.matrix_deferred && j.would_run)
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.severity == NoteSeverity::Info && n.job_id.as_deref() == Some("build"))
    );

    let needs = NeedsState {
        needs: vec![NeedOutcome {
            job_id: "setup".to_owned(),
            result: JobResult::Success,
            outputs: vec![(
                "m".to_owned(),
                r#"{"v":[1,2],"include":[{"v":3,"x":true}]}"#.to_owned(),
            )],
        }],
        ..NeedsState::default()
    };
    let job_plan = plan_job(&workflow, "build", &Event::push("main"), &needs).ok();
    let names: Vec<String> = job_plan
        .iter()
        .flat_map(|p| p.instances.iter().map(|i| i.name.clone()))
        .collect();
    assert_eq!(names, ["build (1)", "build (2)", "build (3, true)"]);
    let matrices: Vec<String> = job_plan
        .iter()
        .flat_map(|p| {
            p.instances
                .iter()
                .filter_map(|i| i.matrix.as_ref().map(|m| object_json(m).to_string()))
        })
        .collect();
    assert_eq!(
        matrices,
        [r#"{"v":1}"#, r#"{"v":2}"#, r#"{"v":3,"x":true}"#]
    );
}

#[test]
fn name_with_expression_has_no_suffix() {
    let workflow = parse_workflow(
        r#"
on: push
jobs:
  t:
    name: Test on ${{ matrix.os }}
    strategy:
      matrix:
        os: [linux, mac]
        v: [1]
    runs-on: ${{ matrix.os }}
    steps: [{run: 'true'}]
  plain:
    name: Plain
    strategy:
      matrix:
        include: [{site: prod, dc: a}]
    runs-on: [self-hosted, '${{ matrix.dc }}']
    steps: [{run: 'true'}]
"#,
    );
    let plan = plan_workflow("w.yml", &workflow, &Event::push("main"));
    assert_eq!(
        render(&plan),
        [
            "Test on linux <-  : run [linux]",
            "Test on mac <-  : run [mac]",
            "Plain (prod, a) <-  : run [self-hosted,a]"
        ]
    );
}

#[test]
fn bad_matrix_is_an_error_note() {
    let workflow = parse_workflow(
        r#"
on: push
jobs:
  t:
    strategy:
      matrix: ${{ fromJSON('{"os":[]}') }}
    runs-on: x
    steps: [{run: 'true'}]
"#,
    );
    let plan = plan_workflow("w.yml", &workflow, &Event::push("main"));
    assert!(
        plan.jobs.iter().all(|j| !j.would_run),
        "{:?} {:?}",
        plan.jobs,
        plan.notes
    );
    let messages: Vec<&str> = plan.notes.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(
        messages,
        ["strategy.matrix: matrix vector `os` does not contain any values"]
    );
}

#[test]
fn matrix_job_skipped_by_if_is_not_expanded() {
    let workflow = parse_workflow(
        r#"
on: push
jobs:
  t:
    if: github.ref == 'refs/heads/main'
    strategy:
      matrix:
        os: [linux, mac]
    runs-on: x
    steps: [{run: 'true'}]
"#,
    );
    let plan = plan_workflow("w.yml", &workflow, &Event::push("dev"));
    assert_eq!(render(&plan), ["t <-  : skip []"]);
}

#[test]
fn inputs_are_typed_with_defaults() {
    let workflow = parse_workflow(
        r#"
on:
  workflow_dispatch:
    inputs:
      debug: {type: boolean, default: false}
      level: {type: number, default: 2}
      env: {type: choice, options: [a, b], default: b}
      note: {type: string}
run-name: ${{ format('{0}-{1}-{2}-{3}-[{4}]', inputs.debug, inputs.level, inputs.env, github.event.inputs.debug, inputs.note) }}
jobs:
  when-debug:
    if: inputs.debug
    runs-on: x
    steps: [{run: 'true'}]
  when-level:
    if: inputs.level > 2
    runs-on: x
    steps: [{run: 'true'}]
"#,
    );
    let defaults = plan_workflow("w.yml", &workflow, &Event::workflow_dispatch("main", &[]));
    assert_eq!(defaults.run_name.as_deref(), Some("false-2-b-false-[]"));
    assert_eq!(
        render(&defaults),
        ["when-debug <-  : skip [x]", "when-level <-  : skip [x]"]
    );
    let given = plan_workflow(
        "w.yml",
        &workflow,
        &Event::workflow_dispatch("main", &[("debug", "true"), ("level", "3"), ("note", "hi")]),
    );
    assert_eq!(given.run_name.as_deref(), Some("true-3-b-true-[hi]"));
    assert_eq!(
        render(&given),
        ["when-debug <-  : run [x]", "when-level <-  : run [x]"]
    );
}

#[test]
fn vars_and_github_context() {
    let workflow = parse_workflow(
        r#"
name: Ctx
on: [push, pull_request]
jobs:
  vars:
    if: vars.DEPLOY == 'yes' && github.repository == 'local/repo' && github.actor == 'runnel'
    runs-on: x
    steps: [{run: 'true'}]
  tag:
    if: github.ref_type == 'tag' && github.ref_name == 'v1'
    runs-on: x
    steps: [{run: 'true'}]
  pr:
    if: github.event_name == 'pull_request' && github.base_ref == 'main' && github.event.pull_request.head.ref == 'topic'
    runs-on: x
    steps: [{run: 'true'}]
"#,
    );
    let mut push = Event::push("refs/tags/v1");
    push.vars = vec![("DEPLOY".to_owned(), "yes".to_owned())];
    let plan = plan_workflow("w.yml", &workflow, &push);
    assert_eq!(plan.name, "Ctx");
    assert_eq!(
        plan.jobs.iter().map(|j| j.would_run).collect::<Vec<_>>(),
        [true, true, false]
    );
    let pr = plan_workflow("w.yml", &workflow, &Event::pull_request("main", "topic"));
    assert_eq!(
        pr.jobs.iter().map(|j| j.would_run).collect::<Vec<_>>(),
        [false, false, true]
    );
}

#[test]
fn cycles_are_reported_not_fatal() {
    let workflow = runnel_workflow::load_workflow(
        "w.yml",
        "on: push\njobs:\n  a:\n    needs: b\n    runs-on: x\n    steps: [{run: 'true'}]\n  b:\n    needs: a\n    runs-on: x\n    steps: [{run: 'true'}]\n  c:\n    runs-on: x\n    steps: [{run: 'true'}]\n",
    )
    .workflow;
    let Some(workflow) = workflow else {
        // The loader may refuse a cycle outright; then there is nothing to plan.
        return;
    };
    let plan = plan_workflow("w.yml", &workflow, &Event::push("main"));
    assert_eq!(
        render(&plan),
        ["c <-  : run [x]", "a <- b : skip []", "b <- a : skip []"]
    );
    assert_eq!(
        plan.notes
            .iter()
            .filter(|n| n.severity == NoteSeverity::Error)
            .count(),
        2
    );
}
