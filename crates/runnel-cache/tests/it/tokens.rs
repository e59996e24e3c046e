//! Signed job tokens at the HTTP edge, as a fleet uses them: a runner mints with the shared
//! secret and never talks to the server; the token rides in the v1 base URL (a daemon's job
//! sends Gitea's token as the bearer) or as the bearer (v2). A token reads and writes its own
//! repository only; a token of another secret, an expired or revoked one gets a 401 whose text
//! says why. `NoAuth` lets everything through in one shared scope. Shutdown lets an upload in
//! flight finish.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use runnel_cache::{
    CacheServer, CacheServerConfig, DiskStore, DiskStoreConfig, JobTokens, NoAuth, RefScope,
    TokenRequest, TokenVerifier,
};

use crate::harness::{main_refs, send};

const SECRET: &[u8] = b"a fleet's shared secret, 32 bytes";

struct Server {
    server: CacheServer,
    _dir: tempfile::TempDir,
}

async fn start(tokens: Arc<dyn TokenVerifier>) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(DiskStoreConfig::new(dir.path().to_path_buf(), 1 << 30))
        .await
        .expect("open the disk store");
    let addr = "127.0.0.1:0".parse().expect("literal address");
    let server = CacheServer::bind(CacheServerConfig::new(addr, Arc::new(store), tokens))
        .await
        .expect("bind");
    Server { server, _dir: dir }
}

fn mint(tokens: &JobTokens, repository: &str, lifetime: Duration) -> String {
    mint_for_ref(tokens, repository, &main_refs(), lifetime)
}

fn mint_for_ref(
    tokens: &JobTokens,
    repository: &str,
    refs: &RefScope,
    lifetime: Duration,
) -> String {
    let request = TokenRequest {
        repository,
        job: "build",
        run: "1",
        refs,
        lifetime,
    };
    tokens.mint(&request).expect("mint")
}

impl Server {
    /// `ACTIONS_CACHE_URL` as the runner hands it out, plus `rest`.
    fn v1(&self, token: &str, rest: &str) -> String {
        format!(
            "http://{}/{token}/_apis/artifactcache/{rest}",
            self.server.local_addr()
        )
    }
}

/// Saves `data` under `key` through the v1 calls; the bearer is someone else's (Gitea's).
async fn save(server: &Server, token: &str, key: &str, data: &'static [u8]) -> StatusCode {
    let gitea = Some("gitea-runtime-token-the-server-cannot-check");
    let json = [("content-type", "application/json")];
    let reserve = send(
        Method::POST,
        &server.v1(token, "caches"),
        gitea,
        &json,
        serde_json::json!({ "key": key, "version": "v" }).to_string(),
    )
    .await;
    if reserve.status != StatusCode::OK {
        return reserve.status;
    }
    let id = reserve.json()["cacheId"].as_u64().expect("cacheId");
    let range = format!("bytes 0-{}/*", data.len() - 1);
    let upload = send(
        Method::PATCH,
        &server.v1(token, &format!("caches/{id}")),
        gitea,
        &[("content-range", &range)],
        data,
    )
    .await;
    assert_eq!(upload.status, StatusCode::NO_CONTENT);
    let commit = send(
        Method::POST,
        &server.v1(token, &format!("caches/{id}")),
        gitea,
        &json,
        serde_json::json!({ "size": data.len() }).to_string(),
    )
    .await;
    commit.status
}

/// A v1 lookup: the status and, on a hit, the archive.
async fn restore(server: &Server, token: &str, key: &str) -> (StatusCode, String, Option<Vec<u8>>) {
    let url = server.v1(token, &format!("cache?keys={key}&version=v"));
    let reply = send(Method::GET, &url, None, &[], Vec::new()).await;
    let message = reply.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if reply.status != StatusCode::OK {
        return (reply.status, message, None);
    }
    let location = reply.json()["archiveLocation"]
        .as_str()
        .expect("archiveLocation")
        .to_owned();
    assert!(
        !location.contains(token),
        "the archive URL must not carry the job token"
    );
    let archive = send(Method::GET, &location, None, &[], Vec::new()).await;
    (reply.status, message, Some(archive.body))
}

#[tokio::test]
async fn a_token_minted_elsewhere_reads_and_writes_its_own_repository_only() {
    let runner = JobTokens::from_secret(SECRET);
    let server = start(Arc::new(JobTokens::from_secret(SECRET))).await;
    let hour = Duration::from_secs(3600);
    let repo_a = mint(&runner, "owner/a", hour);
    let repo_b = mint(&runner, "owner/b", hour);

    assert_eq!(
        save(&server, &repo_a, "deps-1", b"from a").await,
        StatusCode::NO_CONTENT
    );
    let (status, _, archive) = restore(&server, &repo_a, "deps-").await;
    assert_eq!(
        (status, archive.as_deref()),
        (StatusCode::OK, Some(&b"from a"[..]))
    );
    // Repository B sees nothing of A's, even by exact key, and saves its own.
    assert_eq!(
        restore(&server, &repo_b, "deps-1").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        save(&server, &repo_b, "deps-1", b"from b").await,
        StatusCode::NO_CONTENT
    );
    let (_, _, archive) = restore(&server, &repo_b, "deps-1").await;
    assert_eq!(archive.as_deref(), Some(&b"from b"[..]));
    let (_, _, archive) = restore(&server, &repo_a, "deps-1").await;
    assert_eq!(archive.as_deref(), Some(&b"from a"[..]));

    // The same token as the bearer works too (v2 and `runnel run` send it there).
    let v2 = send(
        Method::POST,
        &format!(
            "http://{}/twirp/github.actions.results.api.v1.CacheService/GetCacheEntryDownloadURL",
            server.server.local_addr()
        ),
        Some(&repo_a),
        &[("content-type", "application/json")],
        r#"{"key":"deps-1","version":"v"}"#,
    )
    .await;
    assert_eq!(v2.json()["matched_key"], "deps-1", "{:?}", v2.json());
}

/// The ref scope travels in the signed token: a server that only knows the secret keeps a
/// pull request's save away from the default branch.
#[tokio::test]
async fn the_ref_scope_in_a_token_decides_what_its_job_restores() {
    let runner = JobTokens::from_secret(SECRET);
    let server = start(Arc::new(JobTokens::from_secret(SECRET))).await;
    let hour = Duration::from_secs(3600);
    let main = mint(&runner, "owner/a", hour);
    let pull_request = RefScope {
        own: "refs/pull/9/head".to_owned(),
        fallback: vec!["refs/heads/main".to_owned()],
    };
    let pr = mint_for_ref(&runner, "owner/a", &pull_request, hour);
    assert_eq!(
        save(&server, &main, "deps-1", b"main").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        save(&server, &pr, "deps-2", b"planted").await,
        StatusCode::NO_CONTENT
    );
    let (_, _, archive) = restore(&server, &main, "deps-").await;
    assert_eq!(archive.as_deref(), Some(&b"main"[..]));
    let (_, _, archive) = restore(&server, &pr, "deps-").await;
    assert_eq!(archive.as_deref(), Some(&b"planted"[..]));
}

#[tokio::test]
async fn wrong_secret_expired_and_revoked_tokens_get_a_401_that_says_why() {
    let server_tokens = Arc::new(JobTokens::from_secret(SECRET));
    let server = start(server_tokens.clone()).await;
    let stranger = JobTokens::from_secret(b"another fleet's secret");
    let foreign = mint(&stranger, "owner/a", Duration::from_secs(3600));
    let (status, message, _) = restore(&server, &foreign, "deps-").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("cache.shared_secret"), "{message}");
    assert_eq!(
        save(&server, &foreign, "deps-1", b"x").await,
        StatusCode::UNAUTHORIZED
    );

    let expired = mint(&server_tokens, "owner/a", Duration::ZERO);
    let (status, message, _) = restore(&server, &expired, "deps-").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("expired"), "{message}");

    let revoked = mint(&server_tokens, "owner/a", Duration::from_secs(3600));
    assert_eq!(
        restore(&server, &revoked, "deps-").await.0,
        StatusCode::NO_CONTENT
    );
    server_tokens.revoke(&revoked);
    let (status, message, _) = restore(&server, &revoked, "deps-").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("revoked"), "{message}");

    // A path without a token and no bearer: missing.
    let url = format!(
        "http://{}/_apis/artifactcache/cache?keys=k&version=v",
        server.server.local_addr()
    );
    let reply = send(Method::GET, &url, None, &[], Vec::new()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("no cache token")),
        "{:?}",
        reply.json()
    );
}

#[tokio::test]
async fn no_auth_lets_every_client_in_one_shared_scope() {
    let server = start(Arc::new(NoAuth)).await;
    let anything = "a.b.c-not-a-real-token";
    assert_eq!(
        save(&server, "x", "deps-1", b"shared").await,
        StatusCode::NO_CONTENT
    );
    let (status, _, archive) = restore(&server, anything, "deps-").await;
    assert_eq!(
        (status, archive.as_deref()),
        (StatusCode::OK, Some(&b"shared"[..]))
    );
}

#[tokio::test]
async fn shutdown_lets_an_upload_in_flight_finish() {
    let tokens = Arc::new(JobTokens::from_secret(SECRET));
    let server = start(tokens.clone()).await;
    let token = mint(&tokens, "owner/a", Duration::from_secs(3600));
    let reserve = send(
        Method::POST,
        &server.v1(&token, "caches"),
        None,
        &[("content-type", "application/json")],
        r#"{"key":"k","version":"v"}"#,
    )
    .await;
    let id = reserve.json()["cacheId"].as_u64().expect("cacheId");

    // A chunk whose body arrives in two halves, with the shutdown in between.
    let addr = server.server.local_addr();
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let (body_tx, body_rx) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(2);
    let body = http_body_util::StreamBody::new(tokio_stream_from(body_rx));
    let request = http::Request::builder()
        .method(Method::PATCH)
        .uri(format!("/{token}/_apis/artifactcache/caches/{id}"))
        .header("host", addr.to_string())
        .header("content-range", "bytes 0-7/*")
        .header("content-length", "8")
        .body(body)
        .expect("request");
    let response = tokio::spawn(async move { sender.send_request(request).await });
    body_tx
        .send(Ok(hyper::body::Frame::data(Bytes::from_static(b"half"))))
        .await
        .expect("send the first half");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shutdown = tokio::spawn(server.server.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!shutdown.is_finished(), "shutdown waits for the upload");
    body_tx
        .send(Ok(hyper::body::Frame::data(Bytes::from_static(b"done"))))
        .await
        .expect("send the second half");
    drop(body_tx);
    let response = response.await.expect("join").expect("response");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let _ = response.into_body().collect().await;
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown ends once the upload is done")
        .expect("join");
}

/// An `mpsc` receiver as a `Stream` (without pulling in `tokio-stream`).
fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
