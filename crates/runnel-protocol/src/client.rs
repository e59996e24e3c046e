//! The protocol client: configuration, transport choice, identity, timeouts and retries.
//!
//! Owns: turning a method call into attempts on a transport, with a timeout per attempt and
//! exponential backoff with jitter between attempts that failed for transient reasons. Must not:
//! loop forever (the daemon decides how long to keep trying) or log at more than `debug` for an
//! attempt that will be retried.
//!
//! Transport choice. [`Transport::Auto`] (the default) probes once, with a Ping: gRPC first
//! (h2c on `http://`, TLS+ALPN h2 on `https://`), and Connect over HTTP/1.1 if that fails while
//! Connect works. gRPC keeps every poll, log and state update of all jobs on one multiplexed
//! connection; Connect over HTTP/1.1 is what the peer uses and what survives reverse proxies
//! that do not forward HTTP/2 or gRPC. When both probes fail nothing is decided and the next
//! call probes again. [`Transport::Connect`] and [`Transport::Grpc`] force one.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use tokio::sync::OnceCell;

use crate::connect::ConnectTransport;
use crate::error::{Cause, Error, Rpc};
use crate::grpc::GrpcTransport;
use crate::proto::{ping, runner};

/// Which wire protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Probe: gRPC if the server answers it, else Connect.
    #[default]
    Auto,
    /// Connect unary over HTTP/1.1 (`application/proto`).
    Connect,
    /// gRPC over HTTP/2 (h2c or TLS).
    Grpc,
}

/// When and how often a failed call is repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub initial_backoff: Duration,
    /// Upper bound of a delay.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Five attempts, 200 ms doubling up to 5 s: rides out a Gitea restart of a few seconds.
    pub const STANDARD: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(5),
    };

    /// The delay before retry number `retry` (1-based): exponential, with "equal jitter" (half
    /// fixed, half random) so many runners restarted together do not retry in lockstep.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// A runner's credentials, from the Register answer or the `.runner` file.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The runner's UUID.
    pub uuid: String,
    /// The runner's token (a secret).
    pub token: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("uuid", &self.uuid)
            .field("token", &"***")
            .finish()
    }
}

/// Everything the client needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The Gitea instance, e.g. `https://gitea.example.com/` (a sub-path is kept).
    pub base_url: String,
    /// Which protocol to speak.
    pub transport: Transport,
    /// Accept any TLS certificate (the peer's `runner.insecure`).
    pub insecure_tls: bool,
    /// Deadline of each attempt of every call except FetchTask.
    pub timeout: Duration,
    /// Deadline of each FetchTask attempt (the peer's `runner.fetch_timeout`).
    pub fetch_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// The runner's credentials; needed by every call but Ping and Register.
    pub identity: Option<Identity>,
    /// Sent as `User-Agent: runnel/<version>` and `x-runner-version`.
    pub runner_version: String,
    /// Capabilities advertised in Register and Declare (proto v0.6.0; Gitea 1.27 stores
    /// `cancelling`, older servers ignore the field). Every Declare replaces what the server
    /// holds, so all clients of one runner must send the same list.
    pub capabilities: Vec<String>,
}

/// What runnel's runner supports beyond proto v0.4.1: `cancelling` — a task cancelled in
/// Gitea is answered `RESULT_CANCELLED`, the job's `always()`/`cancelled()` steps and post
/// hooks run, then the final state is reported (Gitea ≥ 1.27 keeps the task in its
/// *cancelling* state, with a valid token, until then).
pub const RUNNER_CAPABILITIES: &[&str] = &["cancelling"];

/// The header in which Gitea ≥ 1.27 names its own capabilities on a Declare answer.
const SERVER_CAPABILITIES_HEADER: &str = "x-gitea-actions-capabilities";

/// A Declare answer: the runner as the server now holds it, and what the server supports.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub runner: runner::Runner,
    /// From the `X-Gitea-Actions-Capabilities` answer header (comma separated on the wire),
    /// e.g. `job-summary`; empty from Gitea ≤ 1.26.
    pub server_capabilities: Vec<String>,
}

impl ClientConfig {
    /// Defaults: automatic transport, verified TLS, 30 s per call, 5 s per fetch (the peer's
    /// default), standard retries, no identity, [`RUNNER_CAPABILITIES`].
    pub fn new(base_url: &str, runner_version: &str) -> ClientConfig {
        ClientConfig {
            base_url: base_url.to_owned(),
            transport: Transport::Auto,
            insecure_tls: false,
            timeout: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
            retry: RetryPolicy::STANDARD,
            identity: None,
            runner_version: runner_version.to_owned(),
            capabilities: RUNNER_CAPABILITIES
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The base URL is not an absolute `http(s)://` URL.
    #[error("invalid Gitea URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// TLS could not be set up.
    #[error("cannot set up TLS for {url}")]
    Tls {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: crate::tls::TlsError,
    },
    /// The gRPC channel could not be set up.
    #[error("cannot set up gRPC for {url}")]
    Grpc {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// The identity or version contains characters not allowed in an HTTP header.
    #[error("runner identity or version is not a valid HTTP header value")]
    Header(#[source] http::header::InvalidHeaderValue),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    Connect,
    Grpc,
}

struct Inner {
    base_url: String,
    /// `{base path}/api/actions`, without a trailing slash.
    mount: String,
    connect: ConnectTransport,
    grpc: GrpcTransport,
    resolved: OnceCell<Resolved>,
}

/// A client of one Gitea instance. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    config: Arc<ClientConfig>,
    /// Version headers, sent on every call.
    common_headers: HeaderMap,
    /// `common_headers` plus the identity, for calls that need it.
    identity_headers: Option<HeaderMap>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client; connects lazily, at the first call.
    pub fn new(config: ClientConfig) -> Result<Client, ConfigError> {
        let url_error = |reason: &str| ConfigError::Url {
            url: config.base_url.clone(),
            reason: reason.to_owned(),
        };
        let uri: Uri = config
            .base_url
            .parse()
            .map_err(|_| url_error("not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| url_error("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(url_error("the scheme must be http or https"));
        }
        let authority = uri.authority().ok_or_else(|| url_error("no host"))?;
        if uri.query().is_some() {
            return Err(url_error("a query string is not allowed"));
        }
        let base_path = uri.path().trim_end_matches('/');
        let origin: Uri = format!("{scheme}://{authority}")
            .parse()
            .map_err(|_| url_error("not a URL"))?;
        let base_url = format!("{scheme}://{authority}{base_path}");
        let tls =
            crate::tls::client_config(config.insecure_tls).map_err(|source| ConfigError::Tls {
                url: base_url.clone(),
                source,
            })?;
        let grpc = GrpcTransport::new(&origin, tls.clone(), config.timeout).map_err(|source| {
            ConfigError::Grpc {
                url: base_url.clone(),
                source,
            }
        })?;
        let inner = Inner {
            mount: format!("{base_path}/api/actions"),
            base_url,
            connect: ConnectTransport::new(tls),
            grpc,
            resolved: OnceCell::new(),
        };
        let mut common_headers = HeaderMap::new();
        let agent = HeaderValue::try_from(format!("runnel/{}", config.runner_version))
            .map_err(ConfigError::Header)?;
        common_headers.insert(http::header::USER_AGENT, agent);
        let version =
            HeaderValue::try_from(config.runner_version.as_str()).map_err(ConfigError::Header)?;
        common_headers.insert(HeaderName::from_static("x-runner-version"), version);
        let mut client = Client {
            inner: Arc::new(inner),
            config: Arc::new(config.clone()),
            common_headers,
            identity_headers: None,
        };
        if let Some(identity) = config.identity {
            client = client.with_identity(identity)?;
        }
        Ok(client)
    }

    /// The same client (sharing connections) acting as the runner `identity`.
    pub fn with_identity(&self, identity: Identity) -> Result<Client, ConfigError> {
        let mut headers = self.common_headers.clone();
        headers.insert(
            HeaderName::from_static("x-runner-uuid"),
            HeaderValue::try_from(identity.uuid.as_str()).map_err(ConfigError::Header)?,
        );
        let mut token =
            HeaderValue::try_from(identity.token.as_str()).map_err(ConfigError::Header)?;
        token.set_sensitive(true);
        headers.insert(HeaderName::from_static("x-runner-token"), token);
        let mut config = (*self.config).clone();
        config.identity = Some(identity);
        Ok(Client {
            inner: self.inner.clone(),
            config: Arc::new(config),
            common_headers: self.common_headers.clone(),
            identity_headers: Some(headers),
        })
    }

    /// The server's base URL, normalised (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The transport in use: the forced one, the one `Auto` settled on, or `Auto` while
    /// undecided.
    pub fn transport(&self) -> Transport {
        match (self.config.transport, self.inner.resolved.get()) {
            (Transport::Auto, Some(Resolved::Grpc)) => Transport::Grpc,
            (Transport::Auto, Some(Resolved::Connect)) => Transport::Connect,
            (forced, _) => forced,
        }
    }

    /// Checks that the server speaks the protocol; returns its greeting ("Hello, <data>!").
    pub async fn ping(&self, data: &str) -> Result<String, Error> {
        let request = ping::PingRequest {
            data: data.to_owned(),
        };
        let response: ping::PingResponse = self.call(Rpc::Ping, request).await?;
        Ok(response.data)
    }

    /// Registers a new runner with a registration token. The answer's `uuid` and `token` are
    /// the runner's credentials: persist them (see [`crate::runner_file`]).
    pub async fn register(
        &self,
        mut request: runner::RegisterRequest,
    ) -> Result<runner::Runner, Error> {
        if request.capabilities.is_empty() {
            request.capabilities = self.config.capabilities.clone();
        }
        let response: runner::RegisterResponse = self.call(Rpc::Register, request).await?;
        self.require(Rpc::Register, response.runner, "runner")
    }

    /// Replaces the runner's labels (names only), version and capabilities on the server.
    pub async fn declare(&self, version: &str, labels: &[String]) -> Result<runner::Runner, Error> {
        Ok(self.declare_full(version, labels).await?.runner)
    }

    /// [`declare`](Client::declare), also returning the capabilities the server announces.
    pub async fn declare_full(&self, version: &str, labels: &[String]) -> Result<Declared, Error> {
        let request = runner::DeclareRequest {
            version: version.to_owned(),
            labels: labels.to_vec(),
            capabilities: self.config.capabilities.clone(),
        };
        let (response, headers): (runner::DeclareResponse, HeaderMap) =
            self.call_with_headers(Rpc::Declare, request).await?;
        let server_capabilities = headers
            .get_all(SERVER_CAPABILITIES_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Declared {
            runner: self.require(Rpc::Declare, response.runner, "runner")?,
            server_capabilities,
        })
    }

    /// Asks for a task. `tasks_version` is the last one seen (0 forces the server to look).
    pub async fn fetch_task(&self, tasks_version: i64) -> Result<runner::FetchTaskResponse, Error> {
        self.call(Rpc::FetchTask, runner::FetchTaskRequest { tasks_version })
            .await
    }

    /// Reports a task's state and new outputs; the answer's result says whether it was
    /// cancelled.
    pub async fn update_task(
        &self,
        request: runner::UpdateTaskRequest,
    ) -> Result<runner::UpdateTaskResponse, Error> {
        self.call(Rpc::UpdateTask, request).await
    }

    /// Appends log rows; the answer says how many rows the server holds.
    pub async fn update_log(
        &self,
        request: runner::UpdateLogRequest,
    ) -> Result<runner::UpdateLogResponse, Error> {
        self.call(Rpc::UpdateLog, request).await
    }

    fn require<T>(&self, rpc: Rpc, value: Option<T>, field: &'static str) -> Result<T, Error> {
        value.ok_or_else(|| self.error(rpc, 1, Cause::MissingField(field)))
    }

    fn error(&self, rpc: Rpc, attempts: u32, cause: Cause) -> Error {
        Error {
            rpc,
            url: self.inner.base_url.clone(),
            attempts,
            cause,
        }
    }

    async fn call<Req, Resp>(&self, rpc: Rpc, request: Req) -> Result<Resp, Error>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        Ok(self.call_with_headers(rpc, request).await?.0)
    }

    /// A call, with the answer's headers (gRPC: its initial metadata).
    async fn call_with_headers<Req, Resp>(
        &self,
        rpc: Rpc,
        request: Req,
    ) -> Result<(Resp, HeaderMap), Error>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let headers = if rpc.needs_identity() {
            match &self.identity_headers {
                Some(headers) => headers,
                None => return Err(self.error(rpc, 0, Cause::NoIdentity)),
            }
        } else {
            &self.common_headers
        };
        let timeout = if rpc == Rpc::FetchTask {
            self.config.fetch_timeout
        } else {
            self.config.timeout
        };
        let policy = self.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.attempt(rpc, request.clone(), headers, timeout).await;
            let cause = match result {
                Ok(response) => return Ok(response),
                Err(cause) => cause,
            };
            let retry = attempt < policy.max_attempts.max(1)
                && cause.is_transient()
                && (rpc.is_idempotent() || cause.request_not_sent());
            if !retry {
                return Err(self.error(rpc, attempt, cause));
            }
            let delay = policy.backoff(attempt);
            tracing::debug!(%rpc, attempt, ?delay, error = %cause, "retrying runner protocol call");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt<Req, Resp>(
        &self,
        rpc: Rpc,
        request: Req,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Result<(Resp, HeaderMap), Cause>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let resolved = match self.config.transport {
            Transport::Connect => Resolved::Connect,
            Transport::Grpc => Resolved::Grpc,
            Transport::Auto => match self.inner.resolved.get() {
                Some(resolved) => *resolved,
                None => self.resolve().await?,
            },
        };
        let path = format!("{}{}", self.inner.mount, rpc.path());
        match resolved {
            Resolved::Grpc => self.inner.grpc.call(&path, request, headers, timeout).await,
            Resolved::Connect => {
                let url = format!("{}{}", self.inner.base_url, rpc.path_under_mount());
                let (bytes, answer_headers) = self
                    .inner
                    .connect
                    .call(&url, request.encode_to_vec(), headers, timeout)
                    .await?;
                let response = Resp::decode(bytes).map_err(|e| Cause::Decode(Box::new(e)))?;
                Ok((response, answer_headers))
            }
        }
    }

    /// Settles `Transport::Auto` with a Ping over gRPC, then over Connect.
    async fn resolve(&self) -> Result<Resolved, Cause> {
        let timeout = self.config.timeout.min(Duration::from_secs(10));
        let path = format!("{}{}", self.inner.mount, Rpc::Ping.path());
        let probe = ping::PingRequest {
            data: "runnel".to_owned(),
        };
        let grpc: Result<(ping::PingResponse, HeaderMap), Cause> = self
            .inner
            .grpc
            .call(&path, probe.clone(), &self.common_headers, timeout)
            .await;
        let choice = match grpc {
            Ok(_) => Resolved::Grpc,
            Err(grpc_cause) => {
                let url = format!("{}{}", self.inner.base_url, Rpc::Ping.path_under_mount());
                let connect = self
                    .inner
                    .connect
                    .call(
                        &url,
                        prost::Message::encode_to_vec(&probe),
                        &self.common_headers,
                        timeout,
                    )
                    .await;
                match connect {
                    Ok(_) => {
                        tracing::debug!(error = %grpc_cause, "gRPC probe failed; using Connect over HTTP/1.1");
                        Resolved::Connect
                    }
                    Err(cause) => return Err(cause),
                }
            }
        };
        tracing::debug!(transport = ?choice, url = %self.inner.base_url, "runner protocol transport chosen");
        Ok(*self.inner.resolved.get_or_init(|| async { choice }).await)
    }
}

impl Rpc {
    /// The path below the base URL: `/api/actions` plus the method path.
    fn path_under_mount(self) -> String {
        format!("/api/actions{}", self.path())
    }
}

#[cfg(test)]
mod tests;
