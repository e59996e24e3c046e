//! A task's flow through the daemon: run and reported, failing, refused for its labels,
//! cancelled from Gitea.

use runnel_protocol::proto::runner::Result as Outcome;

use crate::gitea::FakeGitea;
use crate::run_once;

#[tokio::test]
async fn a_task_is_run_and_its_rows_steps_outputs_and_result_are_reported() {
    let gitea = FakeGitea::start().await;
    let job = "  build:\n    runs-on: linux\n    outputs:\n      answer: ${{ steps.compute.outputs.answer }}\n    steps:\n      - run: echo hello from the host backend\n      - id: compute\n        run: echo answer=42 >> \"$GITHUB_OUTPUT\"\n";
    let (reported, prepared) = run_once(&gitea, job).await;
    assert_eq!(reported.result, Some(Outcome::Success), "{reported:#?}");
    assert_eq!(reported.steps, [Outcome::Success, Outcome::Success]);
    assert!(
        reported.logged("hello from the host backend"),
        "{reported:#?}"
    );
    assert!(
        reported.logged("runnel-test on runner fake: task 1"),
        "{reported:#?}"
    );
    assert_eq!(
        reported.rows.last().map(String::as_str),
        Some("Job success")
    );
    assert!(reported.log_closed, "{reported:#?}");
    assert_eq!(
        reported.outputs.get("answer").map(String::as_str),
        Some("42")
    );
    assert_eq!(prepared, 1);
}

#[tokio::test]
async fn a_failing_step_fails_the_task_and_skips_the_steps_after_it() {
    let gitea = FakeGitea::start().await;
    let job = "  build:\n    runs-on: linux\n    steps:\n      - run: exit 3\n      - run: echo never\n      - if: always()\n        run: echo cleanup\n";
    let (reported, _) = run_once(&gitea, job).await;
    assert_eq!(reported.result, Some(Outcome::Failure), "{reported:#?}");
    assert_eq!(
        reported.steps,
        [Outcome::Failure, Outcome::Skipped, Outcome::Success]
    );
    assert!(reported.logged("cleanup"), "{reported:#?}");
    assert!(
        !reported.rows.iter().any(|row| row == "never"),
        "{reported:#?}"
    );
}

#[tokio::test]
async fn a_task_whose_runs_on_matches_no_label_fails_before_anything_runs() {
    let gitea = FakeGitea::start().await;
    let job = "  build:\n    runs-on: windows\n    steps:\n      - run: echo never\n";
    let (reported, prepared) = run_once(&gitea, job).await;
    assert_eq!(reported.result, Some(Outcome::Failure), "{reported:#?}");
    assert!(
        reported.logged("no label of this runner (linux) matches runs-on (windows)"),
        "{reported:#?}"
    );
    assert_eq!(prepared, 0, "no environment is prepared for it");
}

#[tokio::test]
async fn an_invalid_payload_fails_the_task_with_its_problems_in_the_log() {
    let gitea = FakeGitea::start().await;
    let job = "  build:\n    runs-on: linux\n    stepz: []\n";
    let (reported, prepared) = run_once(&gitea, job).await;
    assert_eq!(reported.result, Some(Outcome::Failure), "{reported:#?}");
    assert!(
        reported.logged("the task's workflow payload is not valid"),
        "{reported:#?}"
    );
    assert_eq!(prepared, 0);
}

#[tokio::test]
async fn a_cancel_from_gitea_stops_the_job() {
    let gitea = FakeGitea::start().await;
    gitea.cancel_after(1, "started, now waiting");
    let job = "  build:\n    runs-on: linux\n    steps:\n      - run: |\n          echo started, now waiting\n          sleep 30\n          echo not cancelled\n";
    // Not cancelled, the job would end after 30 s with success.
    let (reported, _) = run_once(&gitea, job).await;
    assert_eq!(reported.result, Some(Outcome::Cancelled), "{reported:#?}");
    assert_eq!(reported.steps, [Outcome::Cancelled]);
    assert!(!reported.logged("not cancelled"), "{reported:#?}");
}

/// The Gitea runner's job variables (issue #16 item 9): Gitea's OIDC offer from the task
/// context (its token masked), `ACT` by default, `ImageOS` from the label, `RUNNER_WORKSPACE`.
#[tokio::test]
async fn a_job_gets_the_gitea_runners_variables_and_the_oidc_offer() {
    let gitea = FakeGitea::start().await;
    gitea.set_context(
        "actions_id_token_request_url",
        "http://gitea.test/api/actions/_apis/pipelines/oidc?run=1",
    );
    gitea.set_context("actions_id_token_request_token", "the-oidc-token");
    let job = "  build:\n    runs-on: linux\n    steps:\n      - run: |\n          echo \"url=$ACTIONS_ID_TOKEN_REQUEST_URL\"\n          echo \"token=$ACTIONS_ID_TOKEN_REQUEST_TOKEN\"\n          test \"$ACTIONS_ID_TOKEN_REQUEST_TOKEN\" = the-oidc-token\n          echo \"act=$ACT imageos=$ImageOS\"\n          test \"$RUNNER_WORKSPACE\" = \"$(dirname \"$GITHUB_WORKSPACE\")\"\n";
    let (reported, _) = run_once(&gitea, job).await;
    assert_eq!(reported.result, Some(Outcome::Success), "{reported:#?}");
    assert!(
        reported.logged("url=http://gitea.test/api/actions/_apis/pipelines/oidc?run=1"),
        "{reported:#?}"
    );
    assert!(reported.logged("token=***"), "{reported:#?}");
    assert!(!reported.logged("the-oidc-token"), "{reported:#?}");
    assert!(reported.logged("act=true imageos=linux"), "{reported:#?}");
}

/// Without Gitea's offer a job has no OIDC variables.
#[tokio::test]
async fn a_job_without_the_oidc_offer_has_no_oidc_variables() {
    let gitea = FakeGitea::start().await;
    let job = "  build:\n    runs-on: linux\n    steps:\n      - run: test -z \"${ACTIONS_ID_TOKEN_REQUEST_URL+x}${ACTIONS_ID_TOKEN_REQUEST_TOKEN+x}\"\n";
    let (reported, _) = run_once(&gitea, job).await;
    assert_eq!(reported.result, Some(Outcome::Success), "{reported:#?}");
}
