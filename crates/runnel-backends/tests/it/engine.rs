//! Workflows run end to end on the host backend: results, outputs, env files, status
//! functions, timeouts, cancellation, masking, matrices and shells.

use runnel_engine::{JobResult, StepStatus};

use crate::support::{processes_with, run_file, run_text};

const S: StepStatus = StepStatus::Success;
const F: StepStatus = StepStatus::Failure;
const C: StepStatus = StepStatus::Cancelled;
const K: StepStatus = StepStatus::Skipped;

fn nothing(_: &std::path::Path) {}

#[tokio::test]
async fn passing_and_failing_jobs() {
    let run = run_file("pass-fail.yml", nothing, |_| {}).await;
    assert_eq!(run.result.result, JobResult::Failure);
    assert_eq!(run.job("good").result, JobResult::Success);
    assert_eq!(run.job("bad").result, JobResult::Failure);
    assert!(run.has_line("good", "all good"));
    assert!(run.has_line("bad", "about to fail"));
    assert!(!run.has_line("bad", "never printed"));
    assert_eq!(run.steps("bad"), [(F, F), (K, K)]);
    assert!(
        run.runner_messages()
            .contains(&"Process completed with exit code 3.".to_owned())
    );
}

#[tokio::test]
async fn outputs_flow_from_step_to_job_to_needs() {
    let run = run_file("outputs.yml", nothing, |_| {}).await;
    assert_eq!(
        run.result.result,
        JobResult::Success,
        "{:?}",
        run.runner_messages()
    );
    assert!(run.has_line("a", "step sees hello from a"));
    assert_eq!(
        run.job("a").outputs,
        [
            ("out".to_owned(), "hello from a".to_owned()),
            ("multi".to_owned(), "one\ntwo".to_owned())
        ]
    );
    assert!(run.has_line("b", "got hello from a"));
    assert!(run.has_line("b", "result success"));
    assert!(
        run.has_line("b", r#"multi "one\ntwo""#),
        "{:?}",
        run.lines("b")
    );
}

#[tokio::test]
async fn github_env_applies_to_later_steps_below_step_env() {
    let run = run_file("env-files.yml", nothing, |_| {}).await;
    assert_eq!(
        run.result.result,
        JobResult::Success,
        "{:?}",
        run.runner_messages()
    );
    let lines = run.lines("env");
    assert_eq!(
        lines,
        [
            "level=job",
            "SAME_STEP=workflow",
            "foo=from_file context=from_file",
            "multi=first line",
            "second line",
            "override=step",
            "level=step",
        ]
    );
}

#[tokio::test]
async fn github_path_prepends_for_later_steps() {
    let run = run_file("path.yml", nothing, |_| {}).await;
    assert_eq!(
        run.result.result,
        JobResult::Success,
        "{:?}",
        run.runner_messages()
    );
    assert_eq!(run.lines("path"), ["mytool ran", "tools first"]);
}

#[tokio::test]
async fn continue_on_error_and_status_functions() {
    let run = run_file("status.yml", nothing, |_| {}).await;
    assert_eq!(run.job("status").result, JobResult::Failure);
    assert_eq!(
        run.lines("status"),
        [
            "after soft failure success success",
            "failure step ran failure",
            "always step ran",
        ]
    );
    assert_eq!(
        run.steps("status"),
        [
            (F, S),
            (S, S),
            (F, F),
            (K, K),
            (S, S),
            (S, S),
            (K, K),
            (K, K)
        ]
    );
}

#[tokio::test]
async fn step_timeout_kills_the_process_group() {
    let marker = format!("runnel-timeout-{}", std::process::id());
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workflows/timeout.yml"),
    )
    .expect("fixture");
    let run = run_text(
        "timeout.yml",
        &text.replace("MARKER", &marker),
        nothing,
        |_| {},
    )
    .await;
    assert_eq!(run.job("step-timeout").result, JobResult::Failure);
    assert_eq!(run.steps("step-timeout"), [(F, F), (S, S)]);
    assert!(run.has_line("step-timeout", "cleanup after timeout"));
    assert!(
        run.runner_messages()
            .iter()
            .any(|m| m.contains("has timed out after 0.05 minutes")),
        "{:?}",
        run.runner_messages()
    );
    assert_eq!(processes_with(&marker), Vec::<String>::new());
}

#[tokio::test]
async fn job_timeout_fails_the_job_and_runs_always_steps() {
    let text = "on: push\njobs:\n  slow:\n    runs-on: x\n    timeout-minutes: 0.03\n    steps:\n      - run: sleep 600\n      - run: echo plain\n      - if: always()\n        run: echo always\n";
    let run = run_text("job-timeout.yml", text, nothing, |_| {}).await;
    assert_eq!(run.job("slow").result, JobResult::Failure);
    assert_eq!(run.steps("slow"), [(C, C), (K, K), (S, S)]);
    assert!(
        run.runner_messages()
            .iter()
            .any(|m| m.contains("exceeded the maximum execution time of 0.03 minutes"))
    );
}

#[tokio::test]
async fn cancellation_skips_steps_except_always_and_cancelled() {
    let run = run_file("cancel.yml", nothing, |setup| {
        setup.cancel_on_line = Some("ready".to_owned());
    })
    .await;
    assert_eq!(run.result.result, JobResult::Cancelled);
    assert_eq!(run.job("cancel").result, JobResult::Cancelled);
    assert_eq!(
        run.lines("cancel"),
        ["ready", "always after cancel", "cancelled() is cancelled"]
    );
    assert_eq!(
        run.steps("cancel"),
        [(C, C), (K, K), (S, S), (S, S), (K, K)]
    );
}

#[tokio::test]
async fn secrets_and_add_mask_values_are_masked() {
    let run = run_file("masking.yml", nothing, |setup| {
        setup
            .options
            .secrets
            .insert("MY_SECRET".to_owned(), "hunter2-secret".to_owned());
    })
    .await;
    assert_eq!(
        run.result.result,
        JobResult::Success,
        "{:?}",
        run.runner_messages()
    );
    let text = run.sink.all_text();
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(!text.contains("dynamic-value-42"), "{text}");
    assert_eq!(
        run.lines("mask"),
        [
            "secret is ***",
            "env secret is ***",
            "dynamic is ***",
            "later step ***"
        ]
    );
    // An output holding a secret is not passed on.
    assert!(run.job("mask").outputs.is_empty());
    assert!(
        run.runner_messages()
            .contains(&"Skip output 'leaked' since it may contain secret.".to_owned())
    );
}

#[tokio::test]
async fn matrix_legs_all_run() {
    let run = run_file("matrix.yml", nothing, |_| {}).await;
    assert_eq!(run.result.result, JobResult::Success);
    let names: Vec<&str> = run.result.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "legs (linux, 1)",
            "legs (linux, 2)",
            "legs (mac, 1)",
            "legs (mac, 2)"
        ]
    );
    assert!(run.has_line("legs-0", "leg linux-1 0/4"));
    assert!(run.has_line("legs-3", "leg mac-2 3/4"));
}

#[tokio::test]
async fn fail_fast_cancels_the_other_legs() {
    let run = run_file("fail-fast.yml", nothing, |_| {}).await;
    assert_eq!(run.result.result, JobResult::Failure);
    assert_eq!(
        run.keys(),
        [
            ("ff-0".to_owned(), JobResult::Failure),
            ("ff-1".to_owned(), JobResult::Cancelled),
            ("ff-2".to_owned(), JobResult::Cancelled),
        ]
    );
}

#[tokio::test]
async fn without_fail_fast_legs_finish_and_dependants_see_results() {
    let run = run_file("no-fail-fast.yml", nothing, |_| {}).await;
    assert_eq!(run.result.result, JobResult::Failure);
    assert_eq!(
        run.keys(),
        [
            ("nff-0".to_owned(), JobResult::Failure),
            ("nff-1".to_owned(), JobResult::Success),
            ("nff-2".to_owned(), JobResult::Success),
            ("after".to_owned(), JobResult::Success),
            ("skipped".to_owned(), JobResult::Skipped),
            ("after-skipped".to_owned(), JobResult::Success),
        ]
    );
    assert!(run.has_line("after", "nff result failure"));
    assert!(run.has_line("after-skipped", "skipped result skipped"));
}

#[tokio::test]
async fn max_parallel_one_runs_legs_in_turn() {
    let text = "on: push\njobs:\n  seq:\n    runs-on: x\n    strategy:\n      max-parallel: 1\n      matrix:\n        n: [1, 2, 3]\n    steps:\n      - run: |\n          echo \"start ${{ matrix.n }}\" >> \"$GITHUB_WORKSPACE/order\"\n          sleep 0.2\n          echo \"end ${{ matrix.n }}\" >> \"$GITHUB_WORKSPACE/order\"\n";
    let run = run_text("max-parallel.yml", text, nothing, |_| {}).await;
    assert_eq!(run.result.result, JobResult::Success);
    let order = std::fs::read_to_string(run.workspace.path().join("order")).expect("order file");
    assert_eq!(order, "start 1\nend 1\nstart 2\nend 2\nstart 3\nend 3\n");
}

#[tokio::test]
async fn default_environment_variables() {
    let run = run_file(
        "default-env.yml",
        |workspace| {
            std::fs::write(workspace.join("a.txt"), "hello").expect("write a.txt");
        },
        |_| {},
    )
    .await;
    assert_eq!(
        run.result.result,
        JobResult::Success,
        "{:?}",
        run.runner_messages()
    );
    let workspace = std::fs::canonicalize(run.workspace.path()).expect("canonical");
    let ws = workspace.display();
    use sha2::Digest;
    let expected = sha2::Sha256::digest(sha2::Sha256::digest(b"hello"));
    let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        run.lines("defaults"),
        [
            format!("workspace={ws}"),
            format!("pwd={ws}"),
            format!("ctx={ws}"),
            "action=__run".to_owned(),
            "action=named".to_owned(),
            format!("hash={hex}"),
        ]
    );
}

#[tokio::test]
async fn shells_are_selected_like_github() {
    let run = run_file(
        "shells.yml",
        |workspace| std::fs::create_dir(workspace.join("sub")).expect("mkdir sub"),
        |_| {},
    )
    .await;
    assert_eq!(
        run.result.result,
        JobResult::Success,
        "{:?}",
        run.runner_messages()
    );
    let lines = run.lines("shells");
    assert_eq!(lines.first().map(String::as_str), Some("sh in sub"));
    assert_eq!(lines.get(1).map(String::as_str), Some("bash"));
    assert_eq!(lines.get(2).map(String::as_str), Some("python 3"));
    assert_eq!(lines.get(3).map(String::as_str), Some("python3 fallback"));
    assert!(
        lines
            .get(4)
            .is_some_and(|l| l.starts_with("custom /") && l.ends_with(".sh"))
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("pwsh failure pipefail failure")
    );
    assert!(
        run.runner_messages()
            .iter()
            .any(|m| m.starts_with("shell `pwsh` is not supported here")),
        "{:?}",
        run.runner_messages()
    );
}

#[tokio::test]
async fn unfetchable_actions_fail_the_job_at_setup() {
    let nowhere = tempfile::tempdir().expect("no mirror");
    let cache = tempfile::tempdir().expect("cache");
    let run = run_file("uses.yml", nothing, |setup| {
        setup.options.actions_url = format!("file://{}/none", nowhere.path().display());
        setup.options.actions_cache = cache.path().to_path_buf();
    })
    .await;
    assert_eq!(run.job("actions").result, JobResult::Failure);
    // As GitHub's "Set up job": no step runs when an action cannot be downloaded.
    assert!(run.steps("actions").is_empty());
    let messages = run.runner_messages();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("cannot fetch action `actions/checkout@v4`")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn job_filter_runs_only_that_job() {
    let run = run_file("outputs.yml", nothing, |setup| {
        setup.options.job_filter = Some("b".to_owned());
    })
    .await;
    assert_eq!(run.keys(), [("b".to_owned(), JobResult::Success)]);
    assert!(run.has_line("b", "got "));
    assert!(run.has_line("b", "result success"));
}

#[tokio::test]
async fn services_need_docker_on_the_host_backend() {
    let text = "on: push\njobs:\n  db:\n    runs-on: x\n    services:\n      pg:\n        image: postgres:15\n    steps:\n      - run: echo hi\n";
    let run = run_text("services.yml", text, nothing, |_| {}).await;
    assert_eq!(run.job("db").result, JobResult::Failure);
    assert!(
        run.runner_messages()
            .iter()
            .any(|m| m.contains("services need the Docker backend")),
        "{:?}",
        run.runner_messages()
    );
}

#[tokio::test]
async fn job_directories_are_removed_and_the_source_is_kept() {
    let run = run_file(
        "pass-fail.yml",
        |workspace| std::fs::write(workspace.join("keep.txt"), "x").expect("write"),
        |_| {},
    )
    .await;
    assert!(run.workspace.path().join("keep.txt").exists());
    let left: Vec<_> = std::fs::read_dir(run.job_root.path())
        .expect("job root")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(left, Vec::<std::path::PathBuf>::new());
}

/// An environment lost mid-step (a pod deleted, its node gone): the job fails even where the
/// step may fail, the error says what was lost, and nothing else runs — `always()` steps
/// included — while a job that does not need it still runs.
#[tokio::test]
async fn a_lost_environment_fails_the_job_and_skips_the_rest() {
    let workflow = r#"on: push
jobs:
  lost:
    runs-on: ubuntu-latest
    steps:
      - run: echo "before"
      - run: echo "losing"
        continue-on-error: true
        env:
          LOSE_ENVIRONMENT: now
      - run: echo "after"
      - if: always()
        run: echo "always"
  other:
    runs-on: ubuntu-latest
    steps:
      - run: echo "other ran"
"#;
    let run = run_text("lost.yml", workflow, nothing, |setup| setup.losing = true).await;
    assert_eq!(run.job("lost").result, JobResult::Failure);
    assert_eq!(run.steps("lost"), [(S, S), (F, S), (K, K), (K, K)]);
    assert!(run.has_line("lost", "losing"));
    assert!(!run.has_line("lost", "after"));
    assert!(!run.has_line("lost", "always"));
    let messages = run.runner_messages();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("the environment is gone (the test lost it)")),
        "{messages:?}"
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.contains("The job's environment is gone"))
            .count(),
        1,
        "{messages:?}"
    );
    assert_eq!(run.job("other").result, JobResult::Success);
    assert!(run.has_line("other", "other ran"));
}
