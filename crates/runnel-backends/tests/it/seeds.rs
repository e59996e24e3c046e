//! The seed workflows run on the host backend: whatever needs the internet, actions or
//! Docker must fail with a clear message, and nothing may panic or hang. A github.com action
//! that cannot be fetched fails its job at setup, naming the URL and how to use a mirror.

use std::time::Duration;

use runnel_engine::JobResult;

use crate::support::run_text;

#[tokio::test]
async fn seed_workflows_run_to_a_result() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("seed dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let actions_cache = tempfile::tempdir().expect("actions cache");
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file).expect("seed readable");
        let run = run_text(
            &name,
            &text,
            |_| {},
            |setup| {
                setup.options.default_job_timeout = Duration::from_secs(60);
                setup.options.actions_cache = actions_cache.path().to_path_buf();
                setup.event.inputs = vec![("target".to_owned(), "staging".to_owned())];
            },
        )
        .await;
        assert!(!run.result.jobs.is_empty(), "{name}: no jobs");
        let messages = run.runner_messages();
        let uses_actions = text.contains("uses: ");
        // Offline (as here) a github.com action fails the job at setup with a hint; online
        // it is downloaded. Either way the runner says which.
        if uses_actions {
            assert!(
                messages
                    .iter()
                    .any(|m| (m.starts_with("cannot fetch action `")
                        && m.contains("point the runner's `actions_url` at a mirror"))
                        || m.starts_with("Download action repository")
                        || m.contains("need the Docker backend")),
                "{name}: {messages:?}"
            );
        }
        // Every job that ran reports a result; none is left without one.
        for job in &run.result.jobs {
            assert!(
                matches!(
                    job.result,
                    JobResult::Success
                        | JobResult::Failure
                        | JobResult::Skipped
                        | JobResult::Cancelled
                ),
                "{name}: {}",
                job.key
            );
        }
        eprintln!("{name}: {:?} {:?}", run.result.result, run.keys());
    }
}
