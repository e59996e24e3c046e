//! A server on a temporary directory plus a minimal HTTP client.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use runnel_cache::{
    CacheServer, CacheServerConfig, DiskStore, DiskStoreConfig, JobIdentity, RefScope, Store,
    TokenError, TokenVerifier,
};
use tempfile::TempDir;

/// Jobs of `owner/repo` on its default branch `refs/heads/main`.
pub(crate) const TOKEN: &str = "job-token-a";
pub(crate) const OTHER_JOB_TOKEN: &str = "job-token-b";
/// A job of `owner/other` on `refs/heads/main`.
pub(crate) const OTHER_REPO_TOKEN: &str = "job-token-other-repo";
/// Pull request 1 of `owner/repo` (base `dev`), and pull request 2 (base `main`).
pub(crate) const PR_TOKEN: &str = "job-token-pr-1";
pub(crate) const OTHER_PR_TOKEN: &str = "job-token-pr-2";
/// A grant with no ref, as `NoAuth` or a token minted before scopes existed.
pub(crate) const UNSCOPED_TOKEN: &str = "job-token-unscoped";

pub(crate) const MAIN: &str = "refs/heads/main";

pub(crate) struct Harness {
    pub(crate) server: Option<CacheServer>,
    pub(crate) dir: TempDir,
    pub(crate) size_limit: u64,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A job of `repository` on the default branch.
pub(crate) fn identity(repository: &str, job: &str) -> JobIdentity {
    scoped_identity(repository, job, Some((MAIN, &[MAIN])))
}

/// What a job of the default branch reads.
pub(crate) fn main_refs() -> RefScope {
    RefScope {
        own: MAIN.to_owned(),
        fallback: vec![MAIN.to_owned()],
    }
}

/// A job whose token carries `(own ref, fallback refs)`, or no refs at all.
pub(crate) fn scoped_identity(
    repository: &str,
    job: &str,
    refs: Option<(&str, &[&str])>,
) -> JobIdentity {
    JobIdentity {
        repository: repository.to_owned(),
        job: job.to_owned(),
        run: "1".to_owned(),
        token_id: job.to_owned(),
        refs: refs.map(|(own, fallback)| RefScope {
            own: own.to_owned(),
            fallback: fallback.iter().map(|r| (*r).to_owned()).collect(),
        }),
    }
}

/// Fixed tokens for the protocol tests (signed tokens have tests of their own in `tokens`).
struct FixedTokens;

impl TokenVerifier for FixedTokens {
    fn verify(&self, token: Option<&str>) -> Result<JobIdentity, TokenError> {
        match token {
            Some(TOKEN) => Ok(identity("owner/repo", "1")),
            Some(OTHER_JOB_TOKEN) => Ok(identity("owner/repo", "2")),
            Some(OTHER_REPO_TOKEN) => Ok(identity("owner/other", "3")),
            Some(PR_TOKEN) => Ok(scoped_identity(
                "owner/repo",
                "4",
                Some(("refs/pull/1/head", &["refs/heads/dev", MAIN])),
            )),
            Some(OTHER_PR_TOKEN) => Ok(scoped_identity(
                "owner/repo",
                "5",
                Some(("refs/pull/2/head", &[MAIN])),
            )),
            Some(UNSCOPED_TOKEN) => Ok(scoped_identity("owner/repo", "6", None)),
            Some(_) => Err(TokenError::Signature),
            None => Err(TokenError::Missing),
        }
    }
}

pub(crate) async fn start_server(dir: &std::path::Path, size_limit: u64) -> CacheServer {
    let store = DiskStore::open(DiskStoreConfig::new(dir.to_path_buf(), size_limit))
        .await
        .expect("open the disk store");
    serve(Arc::new(store)).await
}

/// A server over `store` that knows the three test tokens.
pub(crate) async fn serve(store: Arc<dyn Store>) -> CacheServer {
    let addr = "127.0.0.1:0".parse().expect("literal address");
    CacheServer::bind(CacheServerConfig::new(addr, store, Arc::new(FixedTokens)))
        .await
        .expect("bind the cache server")
}

impl Harness {
    pub(crate) async fn new(size_limit: u64) -> Self {
        Self::new_in(tempfile::tempdir().expect("temp dir"), size_limit).await
    }

    /// A server on a store in `dir`, which may hold a store already.
    pub(crate) async fn new_in(dir: TempDir, size_limit: u64) -> Self {
        let server = start_server(dir.path(), size_limit).await;
        Self {
            server: Some(server),
            dir,
            size_limit,
        }
    }

    /// A server on a fresh disk store of `size_limit` bytes whose store and server settings
    /// `store` and `server` adjust (no restarts: those take the defaults).
    pub(crate) async fn custom(
        size_limit: u64,
        store: impl FnOnce(&mut DiskStoreConfig),
        server: impl FnOnce(&mut CacheServerConfig),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store_config = DiskStoreConfig::new(dir.path().to_path_buf(), size_limit);
        store(&mut store_config);
        let disk = DiskStore::open(store_config)
            .await
            .expect("open the disk store");
        let addr = "127.0.0.1:0".parse().expect("literal address");
        let mut config = CacheServerConfig::new(addr, Arc::new(disk), Arc::new(FixedTokens));
        server(&mut config);
        let server = CacheServer::bind(config)
            .await
            .expect("bind the cache server");
        Self {
            server: Some(server),
            dir,
            size_limit,
        }
    }

    /// A server over another store (`dir` is then only scratch space; no restarts).
    pub(crate) async fn with_store(store: Arc<dyn Store>, size_limit: u64) -> Self {
        Self {
            server: Some(serve(store).await),
            dir: tempfile::tempdir().expect("temp dir"),
            size_limit,
        }
    }

    pub(crate) fn origin(&self) -> String {
        let server = self.server.as_ref().expect("server running");
        format!("http://{}", server.local_addr())
    }

    /// The v1 base, i.e. `ACTIONS_CACHE_URL` (with a path prefix, as act uses).
    pub(crate) fn v1(&self, rest: &str) -> String {
        format!("{}/prefix-token/_apis/artifactcache/{rest}", self.origin())
    }

    pub(crate) async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.server = Some(start_server(self.dir.path(), self.size_limit).await);
    }
}

/// One request on a fresh connection.
pub(crate) async fn send(
    method: Method,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let uri: http::Uri = url.parse().expect("test URL");
    let authority = uri.authority().expect("URL has a host").to_string();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header("host", authority);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).expect("request");
    let response = sender.send_request(request).await.expect("send request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("read body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// Reserve, upload in `chunks` (sent in reverse order), commit. Returns the cache id.
pub(crate) async fn save_v1(
    h: &Harness,
    token: &str,
    key: &str,
    version: &str,
    data: &[u8],
) -> u64 {
    let reserve = send(
        Method::POST,
        &h.v1("caches"),
        Some(token),
        &[("content-type", "application/json")],
        serde_json::json!({ "key": key, "version": version, "cacheSize": data.len() }).to_string(),
    )
    .await;
    assert_eq!(
        reserve.status,
        StatusCode::OK,
        "reserve {key}: {}",
        String::from_utf8_lossy(&reserve.body)
    );
    let id = reserve.json()["cacheId"].as_u64().expect("cacheId");
    let half = data.len() / 2;
    for (start, chunk) in [(half, &data[half..]), (0, &data[..half])] {
        if chunk.is_empty() {
            continue;
        }
        let range = format!("bytes {}-{}/*", start, start + chunk.len() - 1);
        let reply = send(
            Method::PATCH,
            &h.v1(&format!("caches/{id}")),
            Some(token),
            &[
                ("content-range", &range),
                ("content-type", "application/octet-stream"),
            ],
            chunk.to_vec(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "upload {range}");
    }
    let commit = send(
        Method::POST,
        &h.v1(&format!("caches/{id}")),
        Some(token),
        &[("content-type", "application/json")],
        serde_json::json!({ "size": data.len() }).to_string(),
    )
    .await;
    assert!(
        commit.status.is_success(),
        "commit: {}",
        String::from_utf8_lossy(&commit.body)
    );
    id
}

/// v1 lookup: `Some((matched key, archive bytes))` on a hit.
pub(crate) async fn restore_v1(
    h: &Harness,
    token: &str,
    keys: &[&str],
    version: &str,
) -> Option<(String, Vec<u8>)> {
    let keys: String = form_urlencoded::byte_serialize(keys.join(",").as_bytes()).collect();
    let url = h.v1(&format!("cache?keys={keys}&version={version}"));
    let reply = send(Method::GET, &url, Some(token), &[], Vec::new()).await;
    if reply.status == StatusCode::NO_CONTENT {
        return None;
    }
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "lookup: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    let location = json["archiveLocation"].as_str().expect("archiveLocation");
    let download = send(Method::GET, location, None, &[], Vec::new()).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(
        download
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()),
        Some(download.body.len().to_string().as_str())
    );
    Some((
        json["cacheKey"].as_str().unwrap_or("").to_owned(),
        download.body,
    ))
}
