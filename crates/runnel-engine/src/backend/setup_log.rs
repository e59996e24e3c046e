//! Lines a backend writes to the job's log while it prepares the job (image pulls and the
//! like): [`setup_log`]. The engine runs [`Backend::prepare`](super::Backend::prepare) inside
//! [`with_setup_log`] and shows each line as a runner message of the job, masked like step
//! output, before the first step.
//!
//! A task-local channel rather than a parameter, so that every backend that wraps another one
//! (label routers, the daemon's per-label backends, host jobs with Docker services) passes it
//! on without knowing it exists.
//!
//! Must not: block or fail the caller; a line written outside `prepare`, or while nobody
//! listens, goes nowhere.

use std::future::Future;

use tokio::sync::mpsc;

tokio::task_local! {
    static SETUP_LOG: mpsc::UnboundedSender<String>;
}

/// Writes `text` (one line) to the log of the job being prepared by this task.
pub fn setup_log(text: &str) {
    let _ = SETUP_LOG.try_with(|log| log.send(text.to_owned()));
}

/// Runs `future` with [`setup_log`] lines going to `log`.
pub(crate) async fn with_setup_log<F: Future>(
    log: mpsc::UnboundedSender<String>,
    future: F,
) -> F::Output {
    SETUP_LOG.scope(log, future).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_reach_the_scope_and_nothing_else() {
        setup_log("outside: dropped");
        let (log, mut lines) = mpsc::unbounded_channel();
        let answer = with_setup_log(log, async {
            setup_log("pulling a");
            // Nested futures in the same task see the scope too.
            async { setup_log("pulled a") }.await;
            42
        })
        .await;
        assert_eq!(answer, 42);
        let mut seen = Vec::new();
        while let Ok(line) = lines.try_recv() {
            seen.push(line);
        }
        assert_eq!(seen, ["pulling a", "pulled a"]);
    }
}
