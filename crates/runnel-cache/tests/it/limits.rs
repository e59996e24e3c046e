//! Uploads nobody commits cannot fill the disk: reserved and received bytes count against the
//! store's limit (a reservation or chunk past it gets a 429 that says so), the open uploads of
//! a job and of the store are capped, idle uploads expire on the server's timer, and tiny or
//! empty entries are bounded by a count.

use std::time::Duration;

use http::{Method, StatusCode};

use crate::harness::{Harness, OTHER_JOB_TOKEN, PR_TOKEN, Reply, TOKEN, restore_v1, save_v1, send};

async fn reserve(h: &Harness, token: &str, key: &str, size: Option<u64>) -> Reply {
    let mut body = serde_json::json!({ "key": key, "version": "v1" });
    if let Some(size) = size {
        body["cacheSize"] = size.into();
    }
    send(
        Method::POST,
        &h.v1("caches"),
        Some(token),
        &[],
        body.to_string(),
    )
    .await
}

fn id(reply: &Reply) -> u64 {
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["cacheId"].as_u64().expect("cacheId")
}

async fn patch(h: &Harness, token: &str, id: u64, offset: usize, body: Vec<u8>) -> Reply {
    let range = format!("bytes {offset}-{}/*", offset + body.len() - 1);
    send(
        Method::PATCH,
        &h.v1(&format!("caches/{id}")),
        Some(token),
        &[("content-range", &range)],
        body,
    )
    .await
}

async fn commit(h: &Harness, token: &str, id: u64, size: usize) -> StatusCode {
    send(
        Method::POST,
        &h.v1(&format!("caches/{id}")),
        Some(token),
        &[],
        serde_json::json!({ "size": size }).to_string(),
    )
    .await
    .status
}

fn message(reply: &Reply) -> String {
    reply.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn reserved_and_received_bytes_count_against_the_size_limit() {
    let h = Harness::new(1000).await;
    // An announced size is held from the reservation on.
    let first = id(&reserve(&h, TOKEN, "first", Some(600)).await);
    let refused = reserve(&h, OTHER_JOB_TOKEN, "second", Some(600)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        message(&refused).contains("uploads in progress hold 600 of the 1000 bytes"),
        "{}",
        message(&refused)
    );
    // Without an announced size, each chunk is charged before it is written.
    let open = id(&reserve(&h, OTHER_JOB_TOKEN, "open", None).await);
    let chunk = patch(&h, OTHER_JOB_TOKEN, open, 0, vec![1; 500]).await;
    assert_eq!(chunk.status, StatusCode::TOO_MANY_REQUESTS, "600 + 500");
    assert_eq!(
        patch(&h, OTHER_JOB_TOKEN, open, 0, vec![1; 300])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // A sparse write far out is charged up to its end.
    let far = patch(&h, OTHER_JOB_TOKEN, open, 900, vec![1; 50]).await;
    assert_eq!(far.status, StatusCode::TOO_MANY_REQUESTS);
    // v2 blocks count too.
    let twirp = format!(
        "{}/twirp/github.actions.results.api.v1.CacheService/CreateCacheEntry",
        h.origin()
    );
    let created = send(
        Method::POST,
        &twirp,
        Some(PR_TOKEN),
        &[],
        serde_json::json!({ "key": "v2", "version": "v1" }).to_string(),
    )
    .await
    .json();
    let url = created["signed_upload_url"].as_str().expect("upload URL");
    let block = send(
        Method::PUT,
        &format!("{url}&comp=block&blockid=QUFB"),
        None,
        &[],
        vec![2; 200],
    )
    .await;
    assert_eq!(block.status, StatusCode::TOO_MANY_REQUESTS, "900 + 200");
    // Committing frees what the upload held.
    assert_eq!(
        patch(&h, TOKEN, first, 0, vec![3; 600]).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(commit(&h, TOKEN, first, 600).await, StatusCode::NO_CONTENT);
    let block = send(
        Method::PUT,
        &format!("{url}&comp=block&blockid=QUFB"),
        None,
        &[],
        vec![2; 200],
    )
    .await;
    assert_eq!(block.status, StatusCode::CREATED);
}

#[tokio::test]
async fn open_uploads_are_capped_per_job_and_in_total() {
    let h = Harness::custom(
        1 << 20,
        |store| {
            store.max_uploads_per_job = 2;
            store.max_uploads = 3;
        },
        |_| {},
    )
    .await;
    let one = id(&reserve(&h, TOKEN, "one", None).await);
    id(&reserve(&h, TOKEN, "two", None).await);
    let refused = reserve(&h, TOKEN, "three", None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        message(&refused).contains("this job already has 2 cache uploads in progress"),
        "{}",
        message(&refused)
    );
    // Zero-byte reservations are no way around it.
    id(&reserve(&h, OTHER_JOB_TOKEN, "four", None).await);
    let refused = reserve(&h, PR_TOKEN, "five", None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        message(&refused).contains("the cache already has 3"),
        "{}",
        message(&refused)
    );
    // A committed (empty) upload makes room.
    assert_eq!(commit(&h, TOKEN, one, 0).await, StatusCode::NO_CONTENT);
    id(&reserve(&h, TOKEN, "three", None).await);
}

#[tokio::test]
async fn idle_uploads_expire_on_the_servers_timer() {
    let h = Harness::custom(
        1000,
        |store| store.reservation_ttl = Duration::from_millis(300),
        |server| server.upload_sweep_interval = Duration::from_millis(100),
    )
    .await;
    let idle = id(&reserve(&h, TOKEN, "idle", Some(1000)).await);
    let uploads = h.dir.path().join("uploads");
    let files = || -> usize {
        std::fs::read_dir(&uploads)
            .expect("uploads dir")
            .filter_map(Result::ok)
            .filter(|session| session.path().is_dir())
            .map(|session| std::fs::read_dir(session.path()).expect("session").count())
            .sum()
    };
    assert_eq!(files(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Gone without anyone asking: no file, no upload, and its bytes are free.
    assert_eq!(files(), 0, "the sweeper removed the upload's file");
    assert_eq!(
        patch(&h, TOKEN, idle, 0, vec![1; 10]).await.status,
        StatusCode::NOT_FOUND
    );
    id(&reserve(&h, OTHER_JOB_TOKEN, "next", Some(1000)).await);
}

#[tokio::test]
async fn empty_entries_are_bounded_by_a_count() {
    let h = Harness::custom(1 << 20, |store| store.max_entries = 3, |_| {}).await;
    for key in ["e1", "e2", "e3", "e4", "e5"] {
        save_v1(&h, TOKEN, key, "v1", b"").await;
    }
    let mut kept = Vec::new();
    for key in ["e1", "e2", "e3", "e4", "e5"] {
        if restore_v1(&h, TOKEN, &[key], "v1").await.is_some() {
            kept.push(key);
        }
    }
    assert_eq!(
        kept,
        ["e3", "e4", "e5"],
        "the least recently used went first"
    );
}
