//! The seed workflows run on the host backend: whatever needs the internet, actions or
//! Docker must fail with a clear message, and nothing may panic or hang.

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
                setup.event.inputs = vec![("target".to_owned(), "staging".to_owned())];
            },
        )
        .await;
        assert!(!run.result.jobs.is_empty(), "{name}: no jobs");
        let messages = run.runner_messages();
        let uses_actions = text.contains("uses: ");
        if uses_actions {
            assert!(
                messages.iter().any(|m| m.contains("are not supported yet")
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
