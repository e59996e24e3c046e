//! Job summaries: what a task's steps wrote to `$GITHUB_STEP_SUMMARY`, uploaded to Gitea when
//! it takes them (≥ 1.27 announces `job-summary` on Declare), else logged as one headed block
//! at the end of the job's log (1.26 has no summary API).
//!
//! Owns: the capability check ([`SummaryUploads::for_server`]), the per-task upload target
//! (run id from the context, the job's id from the claims of `gitea_runtime_token`, the task
//! token), how summaries map onto Gitea's step slots, the upload itself (`PUT
//! /api/actions_pipeline/_apis/pipelines/workflows/{run}/jobs/{job}/steps/{index}/summary`,
//! `text/markdown`, `Authorization: Bearer <task token>`), and the log rows: the block, the
//! note that the summary was uploaded, or one warning line when an upload failed. Must not:
//! fail the job or hold its final report for long (a few bounded attempts); read or mask
//! summaries (the engine hands them over masked).
//!
//! Facts checked against Gitea 1.27.3 (`tests/gitea/README.md`): the endpoint is per step and
//! only takes a step index the task has; a second PUT replaces; an empty body clears; the
//! content type must be `text/markdown` (with parameters) or `application/octet-stream` or
//! absent (curl's form default is refused); 1 MiB per step and 1 MiB per job in total, both
//! answered 400. The runtime JWT is refused once a cancel has made the task *cancelling*
//! (500 "task is not running") while the task token still works, so the task token is the
//! bearer; the job's database id is in no context field, only in the JWT's `JobID` claim.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::context::TaskContext;

/// What Gitea's Declare answer names when it takes job summaries.
pub(crate) const JOB_SUMMARY_CAPABILITY: &str = "job-summary";
/// Attempts per slot for failures that may pass (no answer, or a 5xx other than Gitea's
/// "task is not running").
const ATTEMPTS: u32 = 3;
/// Bound of one PUT.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error answer goes into the warning.
const EXCERPT_CHARS: usize = 200;

/// One step's summary as the engine reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SummaryPart {
    /// The step's 0-based position in the job (a `pre`/`post` hook's is its step's).
    pub(crate) index: usize,
    /// The step's display name.
    pub(crate) step: String,
    /// Masked Markdown.
    pub(crate) markdown: String,
}

/// The HTTP client summaries are uploaded with, for a server that takes them.
#[derive(Clone)]
pub(crate) struct SummaryUploads {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The runner's Gitea address (what `.runner` names), without a trailing slash.
    base_url: String,
}

impl SummaryUploads {
    /// An uploader when `capabilities` (Declare's answer header) include
    /// [`JOB_SUMMARY_CAPABILITY`]; `None` otherwise, or when TLS cannot be set up (logged:
    /// summaries then stay in the job log).
    pub(crate) fn for_server(
        capabilities: &[String],
        base_url: &str,
        insecure_tls: bool,
    ) -> Option<SummaryUploads> {
        if !capabilities.iter().any(|c| c == JOB_SUMMARY_CAPABILITY) {
            return None;
        }
        match runnel_protocol::tls_client_config(insecure_tls) {
            Ok(tls) => Some(SummaryUploads::new(base_url, tls)),
            Err(error) => {
                tracing::warn!(
                    error = %crate::reporter::error_chain(&error),
                    "job summaries stay in the job log: cannot set up TLS for uploading them"
                );
                None
            }
        }
    }

    fn new(base_url: &str, tls: rustls::ClientConfig) -> SummaryUploads {
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        SummaryUploads {
            http: HyperClient::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Where task `context`'s summaries go; `Err` says why they cannot be uploaded (they are
    /// then logged).
    pub(crate) fn target(
        &self,
        context: &TaskContext,
        steps: usize,
    ) -> Result<SummaryTarget, &'static str> {
        let run_id = context.text("run_id");
        if run_id.is_empty() || !run_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err("the task has no run id");
        }
        let job_id = job_id_from_runtime_token(&context.text("gitea_runtime_token"))
            .ok_or("the task's runtime token names no job")?;
        let token = context.text("token");
        if token.is_empty() {
            return Err("the task has no token");
        }
        Ok(SummaryTarget {
            uploads: self.clone(),
            job_url: format!(
                "{}/api/actions_pipeline/_apis/pipelines/workflows/{run_id}/jobs/{job_id}",
                self.base_url
            ),
            token,
            steps,
        })
    }
}

/// The `JobID` claim of Gitea's runtime token (a JWT; its signature is Gitea's business).
fn job_id_from_runtime_token(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("JobID")?.as_i64().filter(|id| *id > 0)
}

/// One task's upload target.
#[derive(Clone)]
pub(crate) struct SummaryTarget {
    uploads: SummaryUploads,
    /// `…/workflows/{run}/jobs/{job}`.
    job_url: String,
    /// The task token (a secret).
    token: String,
    /// How many steps the task has: Gitea takes only those indexes.
    steps: usize,
}

/// The summaries' Markdown per Gitea step slot, in slot order.
#[derive(Debug, PartialEq, Eq)]
struct Slot {
    index: usize,
    markdown: String,
    /// The parts joined into it (kept for the log when the upload fails).
    parts: Vec<SummaryPart>,
}

/// Assigns `parts` (in the order they were written) to slots `0..steps`: a part goes to its
/// step's slot, or to a later one when an earlier part already went there (a `post` hook
/// writes after later steps), so reading the slots in order reads the parts in the order
/// they were written — as GitHub shows a job's summary. Parts in one slot are joined as
/// GitHub joins steps: one after another, each ending with a newline.
fn slots(parts: Vec<SummaryPart>, steps: usize) -> Vec<Slot> {
    let mut slots: Vec<Slot> = Vec::new();
    let last = steps.saturating_sub(1);
    for part in parts {
        let floor = slots.last().map_or(0, |slot| slot.index);
        let index = part.index.max(floor).min(last);
        if slots.last().is_none_or(|slot| slot.index != index) {
            slots.push(Slot {
                index,
                markdown: String::new(),
                parts: Vec::new(),
            });
        }
        let Some(slot) = slots.last_mut() else {
            continue;
        };
        slot.markdown.push_str(&part.markdown);
        if !part.markdown.ends_with('\n') {
            slot.markdown.push('\n');
        }
        slot.parts.push(part);
    }
    slots
}

/// What an upload left for the job log.
#[derive(Debug, Default)]
pub(crate) struct Uploaded {
    /// Parts Gitea did not take: they go to the log block.
    pub(crate) left: Vec<SummaryPart>,
    /// A note that the summary is on Gitea, or one warning line.
    pub(crate) row: Option<String>,
}

/// Why one PUT failed: its URL and what came back.
struct PutFailure {
    url: String,
    what: String,
    /// Trying the other slots would fail the same way (no answer at all).
    unreachable: bool,
}

impl SummaryTarget {
    /// Uploads `parts`, one PUT per step slot, each retried a little while Gitea gives no
    /// answer; never fails the job. What Gitea did not take comes back for the log block,
    /// with one warning line naming the first failed call.
    pub(crate) async fn upload(&self, parts: Vec<SummaryPart>) -> Uploaded {
        if parts.is_empty() {
            return Uploaded::default();
        }
        let mut left = Vec::new();
        let mut failure: Option<PutFailure> = None;
        let mut uploaded = 0;
        for slot in slots(parts, self.steps) {
            if failure.as_ref().is_some_and(|f| f.unreachable) {
                left.extend(slot.parts);
                continue;
            }
            match self.put(slot.index, slot.markdown).await {
                Ok(()) => uploaded += slot.parts.len(),
                Err(failed) => {
                    tracing::warn!(url = %failed.url, error = %failed.what, "uploading a job summary failed");
                    left.extend(slot.parts);
                    failure.get_or_insert(failed);
                }
            }
        }
        let row = match failure {
            Some(failed) => Some(format!(
                "Warning: uploading the job summary failed: PUT {} {}; the summary of {} follows in this log instead",
                failed.url,
                failed.what,
                plural(left.len(), "step")
            )),
            None => Some(format!(
                "The job summary (written by {}) was uploaded to Gitea; the run's page shows it",
                plural(uploaded, "step")
            )),
        };
        Uploaded { left, row }
    }

    /// One slot's PUT, with [`ATTEMPTS`] tries while there is no answer or a 5xx.
    async fn put(&self, index: usize, markdown: String) -> Result<(), PutFailure> {
        let url = format!("{}/steps/{index}/summary", self.job_url);
        let body = Bytes::from(markdown);
        let mut backoff = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failed = match self.attempt(&url, body.clone()).await {
                Ok(()) => return Ok(()),
                Err(failed) => failed,
            };
            let retry = match &failed {
                Attempt::NoAnswer(_) => true,
                Attempt::Status(status, text) => {
                    status.is_server_error() && !text.contains("not running")
                }
            };
            if !retry || attempt >= ATTEMPTS {
                let (what, unreachable) = match failed {
                    Attempt::NoAnswer(error) => (format!("got no answer: {error}"), true),
                    Attempt::Status(status, text) if text.is_empty() => {
                        (format!("answered HTTP {}", status.as_u16()), false)
                    }
                    Attempt::Status(status, text) => {
                        (format!("answered HTTP {} ({text})", status.as_u16()), false)
                    }
                };
                return Err(PutFailure {
                    url,
                    what,
                    unreachable,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }

    async fn attempt(&self, url: &str, body: Bytes) -> Result<(), Attempt> {
        let mut request = Request::builder()
            .method(Method::PUT)
            .uri(url)
            .header(header::CONTENT_TYPE, "text/markdown; charset=utf-8")
            .body(Full::new(body))
            .map_err(|error| Attempt::NoAnswer(error.to_string()))?;
        let mut bearer = HeaderValue::try_from(format!("Bearer {}", self.token))
            .map_err(|_| Attempt::NoAnswer("the task token is not a header value".to_owned()))?;
        bearer.set_sensitive(true);
        request.headers_mut().insert(header::AUTHORIZATION, bearer);
        let exchange = async {
            let response = self
                .uploads
                .http
                .request(request)
                .await
                .map_err(|error| Attempt::NoAnswer(crate::reporter::error_chain(&error)))?;
            let status = response.status();
            let text = Limited::new(response.into_body(), 4096)
                .collect()
                .await
                .map(|body| String::from_utf8_lossy(&body.to_bytes()).into_owned())
                .unwrap_or_default();
            Ok::<_, Attempt>((status, text))
        };
        let (status, text) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| Attempt::NoAnswer(format!("timed out after {CALL_TIMEOUT:?}")))??;
        if status.is_success() {
            return Ok(());
        }
        let excerpt: String = text.trim().chars().take(EXCERPT_CHARS).collect();
        Err(Attempt::Status(status, excerpt))
    }
}

/// `1 step`, `2 steps`.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// How one attempt failed.
enum Attempt {
    NoAnswer(String),
    Status(StatusCode, String),
}

/// The job's step summaries as log rows: one headed block of plain Markdown, one row per
/// line — what a Gitea without the summary API shows, and where summaries it did not take go.
pub(crate) fn log_rows(parts: &[SummaryPart]) -> Vec<String> {
    if parts.is_empty() {
        return Vec::new();
    }
    let mut rows = vec!["==== Job summary ($GITHUB_STEP_SUMMARY) ====".to_owned()];
    for part in parts {
        rows.push(format!("---- from step: {}", part.step));
        rows.extend(part.markdown.lines().map(str::to_owned));
    }
    rows.push("==== end of job summary ====".to_owned());
    rows
}

#[cfg(test)]
mod tests;
