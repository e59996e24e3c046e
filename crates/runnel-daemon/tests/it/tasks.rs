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

/// `health_check:`: while the operator's script fails, no task is fetched; once it passes, the
/// queued task runs.
#[tokio::test]
async fn a_failing_health_check_holds_fetching_back_until_it_passes() {
    use std::os::unix::fs::PermissionsExt;

    let gitea = FakeGitea::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let marker = dir.path().join("healthy");
    let script = dir.path().join("check.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntest -e '{}'\n", marker.display()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let extra = format!(
        "health_check:\n  enabled: true\n  min_free_disk_space_mb: 1\n  script: {}\n  interval: 50ms\n  timeout: 5s\nhost:\n  workdir_parent: {}\n",
        script.display(),
        dir.path().join("work").display()
    );
    let job = "  build:\n    runs-on: linux\n    steps:\n      - run: echo admitted\n";
    let held = async {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let fetches = gitea.fetches();
        std::fs::write(&marker, "").unwrap_or_else(|e| panic!("{e}"));
        fetches
    };
    let ((reported, _), fetches_while_failing) =
        tokio::join!(crate::run_once_in(&gitea, job, dir.path(), &extra), held);
    assert_eq!(fetches_while_failing, 0, "fetched while the check failed");
    assert_eq!(reported.result, Some(Outcome::Success), "{reported:#?}");
    assert!(reported.logged("admitted"), "{reported:#?}");
}

/// Too little free space holds fetching back as a failing script does.
#[tokio::test]
async fn too_little_free_space_holds_fetching_back() {
    let gitea = FakeGitea::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    gitea.add_task(1, "name: test\non: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: echo never\n");
    // More free space than any disk has.
    let extra = format!(
        "health_check:\n  enabled: true\n  min_free_disk_space_mb: 1000000000000\nhost:\n  workdir_parent: {}\n",
        dir.path().join("work").display()
    );
    let config = crate::config_with(dir.path(), &gitea.url(), &extra);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let daemon = crate::daemon_options(config);
    let assembly = crate::assembly_for(&daemon.config, &dir.path().join("work"));
    let stop = shutdown.clone();
    let stopper = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        stop.cancel();
    };
    let (ran, ()) = tokio::join!(
        runnel_daemon::run_daemon(daemon, assembly, shutdown),
        stopper
    );
    if let Err(error) = ran {
        panic!("{error}");
    }
    assert_eq!(gitea.fetches(), 0);
}

/// `log.job`: each task's log copied to `<start>-task-<id>.log` (0600), one timestamped line a
/// row, the result last; a copy stops at `max_size`; expired copies go when a task starts.
#[tokio::test]
async fn the_task_log_is_copied_to_log_job_dir() {
    use std::os::unix::fs::PermissionsExt;

    let gitea = FakeGitea::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let logs = dir.path().join("job-logs");
    std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("{e}"));
    let expired = logs.join("20200101-000000-task-9.log");
    let kept = logs.join("notes.txt");
    for path in [&expired, &kept] {
        let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 24 * 3600);
        file.set_modified(old).unwrap_or_else(|e| panic!("{e}"));
    }
    let extra = format!("log:\n  job:\n    dir: {}\n", logs.display());
    let job = "  build:\n    runs-on: linux\n    steps:\n      - run: printf 'one\\ntwo\\n'\n";
    let (reported, _) = crate::run_once_in(&gitea, job, dir.path(), &extra).await;
    assert_eq!(reported.result, Some(Outcome::Success), "{reported:#?}");
    assert!(!expired.exists(), "an expired copy is removed");
    assert!(kept.exists(), "what is not a task's copy stays");
    let copies: Vec<_> = std::fs::read_dir(&logs)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-task-1.log"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let name = copies[0]
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    assert!(
        name.len() == "20260101-120000-task-1.log".len() && name.as_bytes()[8] == b'-',
        "{name}"
    );
    let mode = std::fs::metadata(&copies[0]).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let text = std::fs::read_to_string(&copies[0]).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().any(|l| l.ends_with(" one")), "{text}");
    assert!(lines.iter().any(|l| l.ends_with(" two")), "{text}");
    assert!(lines.iter().any(|l| l.ends_with(" Job success")), "{text}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.ends_with(" [runner] job success")),
        "{text}"
    );
    // `2026-01-01T12:00:00.000Z one`: UTC to the millisecond.
    let first = lines.first().copied().unwrap_or_default();
    assert_eq!(first.as_bytes().get(23), Some(&b'Z'), "{first}");
    assert_eq!(first.as_bytes().get(10), Some(&b'T'), "{first}");
}

#[tokio::test]
async fn a_task_log_copy_stops_at_max_size_and_still_ends_with_the_result() {
    let gitea = FakeGitea::start().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let logs = dir.path().join("job-logs");
    let extra = format!(
        "log:\n  job:\n    dir: {}\n    max_size: 300\n",
        logs.display()
    );
    let job = "  build:\n    runs-on: linux\n    steps:\n      - run: seq 1 200\n";
    let (reported, _) = crate::run_once_in(&gitea, job, dir.path(), &extra).await;
    assert_eq!(reported.result, Some(Outcome::Success), "{reported:#?}");
    assert!(reported.logged("200"), "Gitea still gets every row");
    let copy = std::fs::read_dir(&logs)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .next()
        .unwrap_or_else(|| panic!("no copy in {}", logs.display()));
    let text = std::fs::read_to_string(&copy).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        text.contains("[runner] the copy stops here: log.job.max_size of 300 bytes reached"),
        "{text}"
    );
    assert!(!text.contains(" 200\n"), "{text}");
    assert!(text.trim_end().ends_with("[runner] job success"), "{text}");
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
