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
