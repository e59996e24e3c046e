//! Container actions through the engine on the Docker backend (slow: `RUN_SLOW_TESTS=1`):
//! `uses: docker://image` steps with `with.args`/`with.entrypoint`, a local `Dockerfile`
//! action (built once, then reused by its content hash), a service answering a step
//! container on `localhost` and by name, a step container killed by its timeout — and, after
//! each, no container left with the job's label.
//!
//! Fixtures: `tests/actions/container/` is copied into each run's workspace.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::query_parameters::ListContainersOptionsBuilder;
use runnel_backends::docker::DockerBackend;
use runnel_engine::{JobResult, LogEvent, MemorySink, RunOptions, StepStatus, run_workflow};
use runnel_plan::Event;
use tokio_util::sync::CancellationToken;

use crate::docker::{backend, docker_ready};
use crate::support::{Run, copy_tree};

const S: StepStatus = StepStatus::Success;
const F: StepStatus = StepStatus::Failure;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/actions/container")
}

/// Runs `text` on the Docker backend with the fixtures as the workspace, then checks that no
/// container of this process carries the job's label.
async fn run_docker(backend: &DockerBackend, name: &str, text: &str) -> Run {
    let loaded = runnel_workflow::load_workflow(name, text);
    assert!(!loaded.has_errors(), "{name}: {:?}", loaded.diagnostics);
    let workflow = loaded.workflow.expect("workflow loads");
    let workspace = tempfile::tempdir().expect("temp workspace");
    copy_tree(&fixtures(), workspace.path());
    std::fs::write(workspace.path().join("marker.txt"), "here").expect("marker");
    let job_root = tempfile::tempdir().expect("temp job root");
    let options = RunOptions::local(Some(workspace.path().to_path_buf()));
    let memory = Arc::new(MemorySink::new());
    let result = run_workflow(
        &workflow,
        &Event::push("main"),
        &options,
        backend,
        Arc::clone(&memory) as Arc<dyn runnel_engine::LogSink>,
        CancellationToken::new(),
    )
    .await
    .expect("run starts");
    let run = Run {
        result,
        sink: memory,
        workspace,
        job_root,
    };
    for (key, _) in run.keys() {
        assert_no_containers(backend, &key).await;
    }
    run
}

/// No container (step containers included) of this runner process with the job's label.
async fn assert_no_containers(backend: &DockerBackend, job_key: &str) {
    let pid = format!("runnel.pid={}", std::process::id());
    let job = format!("runnel.job={job_key}");
    let filters = HashMap::from([("label", vec![pid.as_str(), job.as_str()])]);
    let containers = backend
        .docker()
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers");
    assert!(
        containers.is_empty(),
        "left behind for {job_key}: {:?}",
        containers.iter().map(|c| &c.image).collect::<Vec<_>>()
    );
}

fn annotations(run: &Run) -> Vec<String> {
    run.sink
        .records()
        .into_iter()
        .filter_map(|record| match record.event {
            LogEvent::Annotation(annotation) => Some(format!("{annotation:?}")),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_step_gets_args_entrypoint_inputs_and_file_commands() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let text = r#"on: push
jobs:
  ct-image:
    runs-on: x
    container: runnel-test/busybox
    env:
      STEP_VALUE: from-job-env
    steps:
      - id: img
        uses: docker://runnel-test/busybox
        with:
          entrypoint: /bin/sh
          args: -c 'echo "hi $INPUT_WHO in $PWD, $STEP_VALUE"; cat marker.txt; echo; echo greeting=hi-$INPUT_WHO >> $GITHUB_OUTPUT; echo FROM_CONTAINER=yes >> $GITHUB_ENV' 
          who: busybox
      - run: echo "got ${{ steps.img.outputs.greeting }}, env $FROM_CONTAINER"
"#;
    let run = run_docker(&backend, "image-step.yml", text).await;
    let lines = run.lines("ct-image");
    assert_eq!(
        run.job("ct-image").result,
        JobResult::Success,
        "{lines:#?}\n{:#?}",
        run.runner_messages()
    );
    assert_eq!(run.steps("ct-image"), vec![(S, S), (S, S)]);
    for expected in [
        "hi busybox in /github/workspace, from-job-env",
        "here",
        "got hi-busybox, env yes",
    ] {
        assert!(run.has_line("ct-image", expected), "{expected}: {lines:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_action_is_built_once_and_runs_with_inputs_args_and_outputs() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let text = r#"on: push
jobs:
  ct-dockerfile:
    runs-on: x
    container: runnel-test/busybox
    steps:
      - id: first
        uses: ./hello-container
        env:
          STEP_VALUE: step-env
        with:
          who: octocat
      - id: second
        uses: ./hello-container
      - run: echo "outputs ${{ steps.first.outputs.greeting }} ${{ steps.second.outputs.greeting }}"
"#;
    let run = run_docker(&backend, "dockerfile.yml", text).await;
    let lines = run.lines("ct-dockerfile");
    let messages = run.runner_messages();
    assert_eq!(
        run.job("ct-dockerfile").result,
        JobResult::Success,
        "{lines:#?}\n{messages:#?}"
    );
    assert_eq!(run.steps("ct-dockerfile"), vec![(S, S), (S, S), (S, S)]);
    for expected in [
        "hello octocat argc=2 1=octocat 2=two words",
        "hello world argc=2 1=world 2=two words",
        "env FROM_ACTION=set-by-runs-env STEP=step-env",
        "at /github/workspace home=/github/home workspace=/github/workspace",
        "event file present",
        "workspace has marker.txt",
        "outputs hello-octocat hello-world",
    ] {
        assert!(
            run.has_line("ct-dockerfile", expected),
            "{expected}: {lines:#?}"
        );
    }
    // The second step finds the image the first one built (or an earlier test run did).
    let reused = messages
        .iter()
        .filter(|m| m.contains("built earlier from the same files"))
        .count();
    assert!(reused >= 1, "{messages:#?}");
    // Workflow commands from the container go through the same pipeline.
    assert!(
        !lines.iter().any(|l| l.contains("::notice::")),
        "{lines:#?}"
    );
    assert_eq!(
        annotations(&run).len(),
        2,
        "{:#?}\n{lines:#?}",
        annotations(&run)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answers_a_step_container_on_localhost_and_by_name() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let text = r#"on: push
jobs:
  ct-service:
    runs-on: x
    container: runnel-test/busybox
    services:
      db:
        image: runnel-test/postgres
        env:
          POSTGRES_PASSWORD: secret
        options: --health-cmd pg_isready --health-interval 500ms --health-timeout 5s --health-retries 60
    steps:
      - uses: docker://runnel-test/postgres
        with:
          entrypoint: pg_isready
          args: -h localhost -p 5432
      - uses: docker://runnel-test/postgres
        with:
          entrypoint: pg_isready
          args: -h db -p 5432
"#;
    let run = run_docker(&backend, "service.yml", text).await;
    let lines = run.lines("ct-service");
    assert_eq!(
        run.job("ct-service").result,
        JobResult::Success,
        "{lines:#?}\n{:#?}",
        run.runner_messages()
    );
    assert!(
        run.has_line("ct-service", "localhost:5432 - accepting connections"),
        "{lines:#?}"
    );
    assert!(
        run.has_line("ct-service", "db:5432 - accepting connections"),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_container_past_its_timeout_is_removed() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let text = r#"on: push
jobs:
  ct-timeout:
    runs-on: x
    container: runnel-test/busybox
    steps:
      - uses: docker://runnel-test/busybox
        timeout-minutes: 0.03
        with:
          args: sleep 600
      - if: always()
        run: echo after
"#;
    let run = run_docker(&backend, "timeout.yml", text).await;
    assert_eq!(run.job("ct-timeout").result, JobResult::Failure);
    assert_eq!(run.steps("ct-timeout"), vec![(F, F), (S, S)]);
    assert!(run.has_line("ct-timeout", "after"));
}
