//! Operator endpoints: counters the daemon keeps ([`Metrics`]) and a small HTTP server
//! answering `GET /metrics` (Prometheus text format 0.0.4), `/healthz` (the process answers)
//! and `/readyz` (declared to Gitea, and the last poll succeeded recently).
//!
//! Owns: the metric names and the endpoints. Must not: change what the daemon does; the
//! counters are written by the poller and the reporters and only read here.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use runnel_engine::JobResult;
use tokio_util::sync::CancellationToken;

/// What the daemon counts. Shared by the poller, the reporters and the HTTP server.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    capacity: AtomicI64,
    jobs_running: AtomicI64,
    /// success, failure, cancelled, skipped.
    jobs_finished: [AtomicU64; 4],
    polls: AtomicU64,
    poll_errors: AtomicU64,
    /// Unix time in milliseconds of the last FetchTask that answered; 0: none yet.
    last_poll_ok_ms: AtomicU64,
    fetch_micros_sum: AtomicU64,
    report_calls: AtomicU64,
    report_errors: AtomicU64,
    report_micros_sum: AtomicU64,
    rows_sent: AtomicU64,
    rows_spooled: AtomicU64,
    rows_buffered: AtomicI64,
    tasks_recovered: AtomicU64,
    declared: AtomicBool,
    /// How recent the last good poll must be for `/readyz`, in milliseconds.
    ready_window_ms: AtomicU64,
    /// Why `health_check` holds fetching back; `None`: it does not.
    unhealthy: std::sync::Mutex<Option<String>>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Metrics {
    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity as i64, Ordering::Relaxed);
    }

    /// What `health_check` says: `Some(reason)` while it holds fetching back.
    pub(crate) fn set_unhealthy(&self, reason: Option<String>) {
        *self
            .unhealthy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = reason;
    }

    pub(crate) fn set_ready_window(&self, window: Duration) {
        self.ready_window_ms
            .store(window.as_millis() as u64, Ordering::Relaxed);
    }

    pub(crate) fn declared(&self) {
        self.declared.store(true, Ordering::Relaxed);
    }

    /// Jobs running now and the capacity, for systemd's status line (`notify`).
    pub(crate) fn jobs_and_capacity(&self) -> (i64, i64) {
        (
            self.jobs_running.load(Ordering::Relaxed),
            self.capacity.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn job_started(&self) {
        self.jobs_running.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn job_finished(&self, result: JobResult) {
        self.jobs_running.fetch_sub(1, Ordering::Relaxed);
        let index = match result {
            JobResult::Success => 0,
            JobResult::Failure => 1,
            JobResult::Cancelled => 2,
            JobResult::Skipped => 3,
        };
        if let Some(counter) = self.jobs_finished.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn poll(&self, took: Duration, ok: bool) {
        self.polls.fetch_add(1, Ordering::Relaxed);
        self.fetch_micros_sum
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if ok {
            self.last_poll_ok_ms.store(unix_ms(), Ordering::Relaxed);
        } else {
            self.poll_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn report_call(&self, took: Duration, ok: bool) {
        self.report_calls.fetch_add(1, Ordering::Relaxed);
        self.report_micros_sum
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if !ok {
            self.report_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `count` rows were acknowledged by Gitea.
    pub(crate) fn rows_sent(&self, count: u64) {
        self.rows_sent.fetch_add(count, Ordering::Relaxed);
        self.rows_buffered
            .fetch_sub(count as i64, Ordering::Relaxed);
    }

    /// `count` new rows are waiting for Gitea; `spooled` says whether they reached the spool.
    pub(crate) fn rows_added(&self, count: u64, spooled: bool) {
        self.rows_buffered
            .fetch_add(count as i64, Ordering::Relaxed);
        if spooled {
            self.rows_spooled.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Rows that will never be sent (a task given up) leave the buffer gauge.
    pub(crate) fn rows_dropped(&self, count: u64) {
        self.rows_buffered
            .fetch_sub(count as i64, Ordering::Relaxed);
    }

    pub(crate) fn task_recovered(&self) {
        self.tasks_recovered.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether `/readyz` answers 200, and why not.
    fn readiness(&self) -> Result<(), String> {
        if !self.declared.load(Ordering::Relaxed) {
            return Err("not declared to Gitea yet".to_owned());
        }
        if let Some(reason) = self
            .unhealthy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Err(format!("health check failed: {reason}"));
        }
        let last = self.last_poll_ok_ms.load(Ordering::Relaxed);
        if last == 0 {
            return Err("no successful poll yet".to_owned());
        }
        let age = unix_ms().saturating_sub(last);
        let window = self.ready_window_ms.load(Ordering::Relaxed);
        if age > window {
            return Err(format!(
                "last successful poll {:.1} s ago (more than {:.1} s)",
                age as f64 / 1000.0,
                window as f64 / 1000.0
            ));
        }
        Ok(())
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let geti = |a: &AtomicI64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let metric =
            |out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                for (labels, value) in samples {
                    let _ = writeln!(out, "{name}{labels} {value}");
                }
            };
        metric(
            &mut out,
            "runnel_capacity",
            "gauge",
            "Jobs this runner may run at once (runner.capacity).",
            &[("", geti(&self.capacity) as f64)],
        );
        metric(
            &mut out,
            "runnel_jobs_running",
            "gauge",
            "Jobs running now.",
            &[("", geti(&self.jobs_running) as f64)],
        );
        let finished: Vec<(&str, f64)> = [
            "{result=\"success\"}",
            "{result=\"failure\"}",
            "{result=\"cancelled\"}",
            "{result=\"skipped\"}",
        ]
        .into_iter()
        .zip(self.jobs_finished.iter().map(|c| get(c) as f64))
        .collect();
        metric(
            &mut out,
            "runnel_jobs_total",
            "counter",
            "Jobs finished, by result.",
            &finished,
        );
        metric(
            &mut out,
            "runnel_polls_total",
            "counter",
            "FetchTask calls made.",
            &[("", get(&self.polls) as f64)],
        );
        metric(
            &mut out,
            "runnel_poll_errors_total",
            "counter",
            "FetchTask calls that failed.",
            &[("", get(&self.poll_errors) as f64)],
        );
        summary(
            &mut out,
            "runnel_poll_duration_seconds",
            "Time FetchTask calls took.",
            get(&self.fetch_micros_sum) as f64 / 1e6,
            get(&self.polls),
        );
        let last = get(&self.last_poll_ok_ms);
        metric(
            &mut out,
            "runnel_last_successful_poll_timestamp_seconds",
            "gauge",
            "Unix time of the last FetchTask that answered (0: none yet).",
            &[("", last as f64 / 1000.0)],
        );
        metric(
            &mut out,
            "runnel_report_calls_total",
            "counter",
            "UpdateLog and UpdateTask calls made.",
            &[("", get(&self.report_calls) as f64)],
        );
        metric(
            &mut out,
            "runnel_report_errors_total",
            "counter",
            "UpdateLog and UpdateTask calls that failed (they are repeated).",
            &[("", get(&self.report_errors) as f64)],
        );
        summary(
            &mut out,
            "runnel_report_duration_seconds",
            "Time UpdateLog and UpdateTask calls took.",
            get(&self.report_micros_sum) as f64 / 1e6,
            get(&self.report_calls),
        );
        metric(
            &mut out,
            "runnel_log_rows_sent_total",
            "counter",
            "Log rows Gitea acknowledged.",
            &[("", get(&self.rows_sent) as f64)],
        );
        metric(
            &mut out,
            "runnel_log_rows_spooled_total",
            "counter",
            "Log rows written to the durable spool.",
            &[("", get(&self.rows_spooled) as f64)],
        );
        metric(
            &mut out,
            "runnel_log_rows_buffered",
            "gauge",
            "Log rows waiting for Gitea's acknowledgement.",
            &[("", geti(&self.rows_buffered).max(0) as f64)],
        );
        metric(
            &mut out,
            "runnel_tasks_recovered_total",
            "counter",
            "Tasks of an earlier daemon process finished from the spool.",
            &[("", get(&self.tasks_recovered) as f64)],
        );
        let ready = if self.readiness().is_ok() { 1.0 } else { 0.0 };
        metric(
            &mut out,
            "runnel_ready",
            "gauge",
            "1 when /readyz answers 200.",
            &[("", ready)],
        );
        out
    }
}

/// A Prometheus summary without quantiles: `_sum` and `_count`.
fn summary(out: &mut String, name: &str, help: &str, sum: f64, count: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} summary");
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
}

/// Serves the endpoints on `addr` until `shutdown`; returns the bound address (port 0 picks a
/// free one).
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = shutdown.cancelled() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let response = answer(&metrics, request.method(), request.uri().path());
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

fn answer(metrics: &Metrics, method: &hyper::Method, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if method != hyper::Method::GET {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".to_owned(),
        )
    } else {
        match path {
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics.render(),
            ),
            "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
            "/readyz" => match metrics.readiness() {
                Ok(()) => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
                Err(reason) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("not ready: {reason}\n"),
                ),
            },
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found: try /metrics, /healthz or /readyz\n".to_owned(),
            ),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_a_declare_and_a_recent_poll() {
        let metrics = Metrics::default();
        metrics.set_ready_window(Duration::from_secs(30));
        assert!(metrics.readiness().is_err());
        metrics.declared();
        assert!(metrics.readiness().is_err());
        metrics.poll(Duration::from_millis(3), true);
        assert_eq!(metrics.readiness(), Ok(()));
        metrics.last_poll_ok_ms.store(1, Ordering::Relaxed);
        let reason = metrics.readiness().err().unwrap_or_default();
        assert!(reason.contains("last successful poll"), "{reason}");
    }

    #[test]
    fn the_exposition_has_help_type_and_labelled_samples() {
        let metrics = Metrics::default();
        metrics.set_capacity(2);
        metrics.job_started();
        metrics.job_finished(JobResult::Failure);
        metrics.rows_added(3, true);
        metrics.rows_sent(2);
        let text = metrics.render();
        for expected in [
            "# TYPE runnel_jobs_total counter",
            "runnel_jobs_total{result=\"failure\"} 1",
            "runnel_jobs_total{result=\"success\"} 0",
            "# TYPE runnel_poll_duration_seconds summary",
            "runnel_poll_duration_seconds_count 0",
            "runnel_capacity 2",
            "runnel_jobs_running 0",
            "runnel_log_rows_spooled_total 3",
            "runnel_log_rows_sent_total 2",
            "runnel_log_rows_buffered 1",
        ] {
            assert!(text.contains(expected), "{expected} missing in:\n{text}");
        }
    }
}
