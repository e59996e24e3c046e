//! [`CacheServer`]: the HTTP/1 listener, request routing, authentication, and the shared state
//! the protocol handlers ([`crate::v1`], [`crate::v2`]) use.
//!
//! Owns: sockets, routing, and building the absolute URLs handed to clients. Must not: parse
//! protocol bodies (the handlers do) or touch files (the store does).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::artifacts::ArtifactStore;
use crate::auth::{JobIdentity, TokenError, TokenVerifier, UrlPurpose, UrlSigner};
use crate::http_util::{Handled, Response, bearer, error};
use crate::route::{Route, V1Call, route};
use crate::store::{EntryId, PruneRules, Store};
use crate::{artifacts, v1, v2};

/// Settings of a [`CacheServer`].
pub struct CacheServerConfig {
    /// Where to listen; port 0 picks a free port (see [`CacheServer::local_addr`]).
    pub listen: SocketAddr,
    /// Where archives live.
    pub store: Arc<dyn Store>,
    /// Checks the per-job tokens ([`crate::JobTokens`], or [`crate::NoAuth`]).
    pub tokens: Arc<dyn TokenVerifier>,
    /// Largest single upload body (a v1 chunk, a v2 block or single-shot PUT). The toolkit
    /// sends at most 128 MiB (v1 chunk cap, v2 single-shot size).
    pub max_upload_body: u64,
    /// How long a download URL stays valid.
    pub download_url_ttl: Duration,
    /// How long a v2 upload URL stays valid.
    pub upload_url_ttl: Duration,
    /// Serve artifacts v4 too, keeping them under this directory (local runs; in daemon mode
    /// Gitea serves artifacts). `None`: the ArtifactService answers 404.
    pub artifacts_dir: Option<PathBuf>,
    /// The largest artifact accepted (the sum of its blocks).
    pub max_artifact_size: u64,
    /// How often uploads idle past the store's reservation TTL are dropped
    /// ([`Store::expire_uploads`]).
    pub upload_sweep_interval: Duration,
    /// What the eviction sweep removes (`cache.retention`, `cache.repo_size_limit`); empty
    /// rules: no sweep.
    pub eviction: PruneRules,
    /// How often the eviction sweep runs (`cache.sweep_interval`); the first at start.
    pub eviction_interval: Duration,
    /// How long a request head may take to arrive, from when the connection starts waiting
    /// for it. Hyper starts this timer whenever it waits for a head, so it is also the idle
    /// (keep-alive) timeout: a connection with no next request closes after it.
    pub header_read_timeout: Duration,
    /// The longest pause inside a request body (a chunk, a block, a JSON body); the request
    /// then fails and its connection closes. Small bodies must arrive whole within it.
    pub body_stall_timeout: Duration,
    /// Connections served at once; more wait (in the listen backlog) until one closes.
    pub max_connections: usize,
}

impl CacheServerConfig {
    /// Defaults: 128 MiB bodies, 10-minute download URLs (as Gitea's runner), 6-hour upload URLs
    /// (a multi-GiB v2 upload can take long), expired uploads swept every minute, no eviction
    /// sweep (its interval an hour, as the Gitea runner's), 30 s for a
    /// request head (and for an idle kept-alive connection), 60 s of silence inside a body, 512
    /// connections.
    pub fn new(listen: SocketAddr, store: Arc<dyn Store>, tokens: Arc<dyn TokenVerifier>) -> Self {
        Self {
            listen,
            store,
            tokens,
            max_upload_body: 128 * 1024 * 1024,
            download_url_ttl: Duration::from_secs(600),
            upload_url_ttl: Duration::from_secs(6 * 3600),
            artifacts_dir: None,
            max_artifact_size: 10 << 30,
            upload_sweep_interval: Duration::from_secs(60),
            eviction: PruneRules::default(),
            eviction_interval: Duration::from_secs(3600),
            header_read_timeout: Duration::from_secs(30),
            body_stall_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding the listen address failed.
    #[error("binding the cache server to {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Generating the URL-signing secret failed.
    #[error("generating the cache server's URL-signing secret")]
    Secret {
        /// The cause.
        #[source]
        source: getrandom::Error,
    },
}

/// A running cache server. Dropping it (or [`CacheServer::shutdown`]) stops accepting
/// connections on every listener; requests already being served finish, then their
/// connections close.
pub struct CacheServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    tokens: Arc<dyn TokenVerifier>,
    signer: UrlSigner,
    pub(crate) max_upload_body: u64,
    pub(crate) body_stall_timeout: Duration,
    header_read_timeout: Duration,
    connections: Arc<Semaphore>,
    download_url_ttl: Duration,
    upload_url_ttl: Duration,
    local_addr: SocketAddr,
    pub(crate) artifacts: Option<ArtifactStore>,
}

impl CacheServer {
    /// Binds `config.listen` and serves on the current tokio runtime.
    pub async fn bind(config: CacheServerConfig) -> Result<Self, ServerError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|source| ServerError::Secret { source })?;
        let listener = bind_listener(config.listen).await?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            store: config.store,
            tokens: config.tokens,
            signer: UrlSigner::new(secret),
            max_upload_body: config.max_upload_body,
            body_stall_timeout: config.body_stall_timeout,
            header_read_timeout: config.header_read_timeout,
            connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
            download_url_ttl: config.download_url_ttl,
            upload_url_ttl: config.upload_url_ttl,
            local_addr,
            artifacts: config
                .artifacts_dir
                .map(|dir| ArtifactStore::new(dir, config.max_artifact_size)),
        });
        let (stop, _) = watch::channel(false);
        let server = Self {
            local_addr,
            shared,
            stop,
            tasks: Mutex::new(Vec::new()),
        };
        server.serve(listener, local_addr);
        server.sweep_uploads(config.upload_sweep_interval);
        server.sweep_entries(config.eviction, config.eviction_interval);
        Ok(server)
    }

    /// Also listens on `addr` (say, the gateway of a Docker network, so job containers reach
    /// the server while it stays off other interfaces). Same store, tokens and signatures.
    /// Returns the address bound (port 0 picks one).
    pub async fn listen_also(&self, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
        let listener = bind_listener(addr).await?;
        let bound = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        self.serve(listener, bound);
        Ok(bound)
    }

    fn serve(&self, listener: TcpListener, local_addr: SocketAddr) {
        let shared = Arc::clone(&self.shared);
        let mut stopped = self.stop.subscribe();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                // A free connection slot first: past the cap, clients wait in the backlog.
                let permit = tokio::select! {
                    _ = stopped.changed() => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                    permit = Arc::clone(&shared.connections).acquire_owned() => permit,
                };
                let Ok(permit) = permit else { break };
                let accepted = tokio::select! {
                    _ = stopped.changed() => break,
                    // Reaps finished connections so the set does not grow.
                    Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Usually EMFILE; back off instead of spinning.
                        tracing::warn!(error = %e, "cache server accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = Arc::clone(&shared);
                let mut stop = stopped.clone();
                let header_read_timeout = shared.header_read_timeout;
                connections.spawn(async move {
                    let _permit = permit;
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(shared.handle(request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_read_timeout)
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    let result = tokio::select! {
                        result = connection.as_mut() => result,
                        _ = stop.changed() => {
                            // Finish the request in flight, then close.
                            connection.as_mut().graceful_shutdown();
                            connection.await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "cache connection ended with an error");
                    }
                });
            }
            drop(listener);
            while connections.join_next().await.is_some() {}
        });
        tracing::info!(%local_addr, "cache server listening");
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(task);
    }

    /// Drops expired uploads every `interval` until the server stops.
    fn sweep_uploads(&self, interval: Duration) {
        let store = Arc::clone(&self.shared.store);
        let mut stopped = self.stop.subscribe();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = ticks.tick() => {}
                }
                match store.expire_uploads().await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "dropped expired cache uploads"),
                    Err(error) => tracing::warn!(%error, "dropping expired cache uploads failed"),
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(task);
    }

    /// Removes the entries `rules` select every `interval` (the first sweep at once) until the
    /// server stops; nothing when the rules are empty.
    fn sweep_entries(&self, rules: PruneRules, interval: Duration) {
        if rules.is_empty() {
            return;
        }
        let store = Arc::clone(&self.shared.store);
        let mut stopped = self.stop.subscribe();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = ticks.tick() => {}
                }
                match store.prune(rules).await {
                    Ok(removed) if removed.is_empty() => {}
                    Ok(removed) => tracing::info!(
                        count = removed.len(),
                        bytes = removed.iter().map(|e| e.size).sum::<u64>(),
                        "evicted cache entries (cache.retention, cache.repo_size_limit)"
                    ),
                    Err(error) => tracing::warn!(%error, "the cache eviction sweep failed"),
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(task);
    }

    /// The address [`CacheServer::bind`] bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, lets every request in flight finish, and waits until
    /// every connection is closed (bound it with a timeout: an upload may take long).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for CacheServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn bind_listener(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

impl Shared {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        tracing::trace!(%method, path, "cache request");
        let result = match route(&method, &path) {
            Route::CacheTwirp(call) => return v2::twirp(&self, call, request).await,
            Route::ArtifactTwirp(call) => return artifacts::twirp(&self, call, request).await,
            Route::ArtifactUpload(id) => artifacts::put_blob(&self, id, request).await,
            Route::ArtifactDownload(id) => artifacts::download(&self, id, request).await,
            Route::NotFound => Err(error(StatusCode::NOT_FOUND, "no such cache endpoint")),
            Route::V1 {
                prefix,
                path_token,
                call,
            } => self.v1(prefix, path_token, call, request).await,
        };
        result.unwrap_or_else(|response| response)
    }

    /// A v1 call: signed archive transfers go straight through, the rest need a job token.
    async fn v1(
        &self,
        prefix: &str,
        path_token: Option<&str>,
        call: V1Call,
        request: Request<Incoming>,
    ) -> Handled {
        match call {
            V1Call::Download(id) => return v1::download(self, id, request).await,
            V1Call::BlobUpload(id) => return v2::put_blob(self, id, request).await,
            _ => {}
        }
        let identity = self
            .authenticate(path_token, request.headers())
            .map_err(|reason| error(StatusCode::UNAUTHORIZED, &reason.to_string()))?;
        let base = format!("{}{prefix}/", self.origin(request.headers()));
        match call {
            V1Call::Lookup => v1::lookup(self, &identity, &base, request).await,
            V1Call::List => v1::list(self, &identity, request).await,
            V1Call::Reserve => v1::reserve(self, &identity, request).await,
            V1Call::Upload(id) => v1::upload(self, &identity, id, request).await,
            V1Call::Commit(id) => v1::commit(self, &identity, id, request).await,
            V1Call::Clean => Ok(crate::http_util::empty(StatusCode::OK)),
            V1Call::Download(_) | V1Call::BlobUpload(_) | V1Call::Unknown => {
                Err(error(StatusCode::NOT_FOUND, "no such cache endpoint"))
            }
        }
    }

    /// The identity of a request: from the token in the v1 path when there is one (it alone
    /// decides then), else from `Authorization: Bearer`.
    pub(crate) fn authenticate(
        &self,
        path_token: Option<&str>,
        headers: &http::HeaderMap,
    ) -> Result<JobIdentity, TokenError> {
        let token = path_token.or_else(|| bearer(headers));
        self.tokens.verify(token).inspect_err(|reason| {
            // A wrong secret is a setup mistake the operator of a shared server must see.
            if matches!(reason, TokenError::Signature) {
                tracing::warn!(%reason, "refused a cache request");
            } else {
                tracing::debug!(%reason, "refused a cache request");
            }
        })
    }

    /// `http://host[:port]` as the client addressed us, so the URLs we hand out resolve from
    /// wherever the client is (a job container reaches us by another address than the host).
    pub(crate) fn origin(&self, headers: &http::HeaderMap) -> String {
        origin_of(headers, self.local_addr)
    }

    pub(crate) fn sign(&self, purpose: UrlPurpose, id: EntryId) -> String {
        let ttl = match purpose {
            UrlPurpose::Download | UrlPurpose::ArtifactDownload => self.download_url_ttl,
            UrlPurpose::Upload | UrlPurpose::ArtifactUpload => self.upload_url_ttl,
        };
        self.signer.sign(purpose, id, ttl.as_secs())
    }

    /// Checks the `exp`/`sig` query of a signed URL.
    pub(crate) fn check_signature(
        &self,
        purpose: UrlPurpose,
        id: EntryId,
        query: &std::collections::HashMap<String, String>,
    ) -> Result<(), Response> {
        let exp = query.get("exp").map(String::as_str).unwrap_or("");
        let sig = query.get("sig").map(String::as_str).unwrap_or("");
        if self.signer.verify(purpose, id, exp, sig) {
            Ok(())
        } else {
            Err(error(
                StatusCode::FORBIDDEN,
                "invalid or expired signed URL",
            ))
        }
    }
}

/// `http://host[:port]` from the request's `Host` when it is a plain host name or address,
/// else `http://<fallback>`.
pub(crate) fn origin_of(headers: &http::HeaderMap, fallback: SocketAddr) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
        });
    match host {
        Some(host) => format!("http://{host}"),
        None => format!("http://{fallback}"),
    }
}
