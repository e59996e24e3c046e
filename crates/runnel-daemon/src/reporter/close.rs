//! The reporter's final sequence ([`Worker::close`]): outputs, the last rows with `no_more`,
//! then the result, retried with backoff within the reporter's patience, and what happens to
//! the spool file afterwards (removed once delivered, parked for redelivery when Gitea stayed
//! away). Must not: send anything while the job runs (the parent module's `Worker::run` does).

use std::time::Duration;

use runnel_protocol::proto::runner;
use tokio::time::Instant;

use super::Worker;

impl Worker {
    /// The final sequence: outputs until acknowledged, every row with `no_more`, then the
    /// result. Repeated with backoff while Gitea is unreachable, for up to `close_patience`
    /// (one `close_timeout` once the daemon is stopping). Delivered: the spool file goes;
    /// not delivered: it stays, parked for the background redelivery and the next start.
    /// Returns whether Gitea took everything.
    pub(super) async fn close(self) -> bool {
        /// Outputs Gitea keeps refusing (a value over its limit) must not hold the result.
        const OUTPUT_ROUNDS: u32 = 3;
        let task_id = self.shared.lock().task_id;
        let mut deadline = Instant::now() + self.context.timing.close_patience;
        let mut backoff = Duration::from_millis(100);
        let mut phase = 0u8;
        let mut output_rounds = 0;
        let result = self.shared.lock().result.unwrap_or(runner::Result::Failure);
        loop {
            let attempt = match phase {
                0 if self.shared.lock().outputs.is_empty() => Ok(true),
                0 => {
                    output_rounds += 1;
                    self.send_state(runner::Result::Unspecified)
                        .await
                        .map(|()| {
                            self.shared.lock().outputs.is_empty() || output_rounds >= OUTPUT_ROUNDS
                        })
                }
                1 => match self.send_rows(true).await {
                    Ok(()) => Ok(self.shared.lock().rows.is_empty()),
                    Err(failed) if failed.archived => Ok(true),
                    Err(failed) => Err(failed),
                },
                _ => self.send_state(result).await.map(|()| true),
            };
            match attempt {
                Ok(true) => {
                    phase += 1;
                    backoff = Duration::from_millis(100);
                    if phase == 3 {
                        tracing::info!(task_id, result = result.as_str_name(), "task reported");
                        self.settle(true);
                        return true;
                    }
                    continue;
                }
                Ok(false) => {}
                Err(failed) if failed.permanent => {
                    tracing::error!(task_id, "Gitea refuses this task's report; giving it up");
                    self.settle(true);
                    return false;
                }
                Err(_) => {}
            }
            let stopping = self.context.stopping.is_cancelled();
            if stopping {
                deadline = deadline.min(Instant::now() + self.context.timing.close_timeout);
            }
            if Instant::now() >= deadline {
                let kept = self.settle(false);
                if stopping {
                    tracing::error!(
                        task_id,
                        "Gitea did not take this task's report; the spool keeps it for the next start"
                    );
                } else if kept {
                    tracing::error!(
                        task_id,
                        "Gitea did not take this task's report in time; the spool keeps it and it is retried in the background"
                    );
                    self.context.parked.park(task_id);
                } else {
                    tracing::error!(
                        task_id,
                        "Gitea did not take this task's report in time and it has no spool file; it is lost"
                    );
                }
                return false;
            }
            if stopping {
                tokio::time::sleep(backoff).await;
            } else {
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = self.context.stopping.cancelled() => {}
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// The report is over: the spool file goes when `done` (delivered, or refused for good),
    /// and the rows this process still held leave the buffered-rows gauge. Returns whether a
    /// complete spool file stays behind.
    fn settle(&self, done: bool) -> bool {
        let mut state = self.shared.lock();
        let left = state.rows.len() as u64;
        state.metrics.rows_dropped(left);
        match state.spool.take() {
            Some(spool) if done => {
                spool.remove();
                false
            }
            Some(spool) => spool.is_active(),
            None => false,
        }
    }
}
