//! Connections cannot be held open for free: a request head must arrive within the header
//! timeout (which also closes idle kept-alive connections), a body may not pause longer than
//! the stall timeout, and past the connection cap new clients wait until one closes.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Harness, TOKEN, restore_v1, send};

const SHORT: Duration = Duration::from_millis(300);

/// Reads until the server closes the connection; `None` if it has not within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

async fn connect(h: &Harness) -> TcpStream {
    let addr = h.origin().trim_start_matches("http://").to_owned();
    TcpStream::connect(&addr).await.expect("connect")
}

#[tokio::test]
async fn half_sent_heads_and_idle_connections_are_closed() {
    let h = Harness::custom(1 << 20, |_| {}, |server| server.header_read_timeout = SHORT).await;
    // A head that never ends.
    let mut half = connect(&h).await;
    half.write_all(b"GET /prefix-token/_apis/artifactcache/cache?keys=k&version=v HTTP/1.1\r\nhost: x\r\nx-slow: 1")
        .await
        .expect("write");
    let started = Instant::now();
    assert!(
        closed_within(&mut half, Duration::from_secs(5))
            .await
            .is_some(),
        "a half-sent head keeps its connection"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // A connection that never sends anything.
    let mut silent = connect(&h).await;
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some(),
        "a silent connection stays open"
    );
    // A kept-alive connection after its request.
    let mut kept = connect(&h).await;
    kept.write_all(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = closed_within(&mut kept, Duration::from_secs(5))
        .await
        .expect("an idle kept-alive connection stays open");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    // The server still serves.
    assert_eq!(restore_v1(&h, TOKEN, &["k"], "v1").await, None);
}

#[tokio::test]
async fn a_stalled_upload_body_is_cut_and_not_recorded() {
    let h = Harness::custom(1 << 20, |_| {}, |server| server.body_stall_timeout = SHORT).await;
    let reserve = send(
        Method::POST,
        &h.v1("caches"),
        Some(TOKEN),
        &[],
        serde_json::json!({ "key": "stalled", "version": "v1" }).to_string(),
    )
    .await;
    let id = reserve.json()["cacheId"].as_u64().expect("cacheId");
    let mut stream = connect(&h).await;
    let head = format!(
        "PATCH /prefix-token/_apis/artifactcache/caches/{id} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-range: bytes 0-99/*\r\ncontent-length: 100\r\n\r\n0123456789"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // The rest never comes, and the connection is not closed by the client.
    let answer = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("a stalled body holds its connection");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let commit = send(
        Method::POST,
        &h.v1(&format!("caches/{id}")),
        Some(TOKEN),
        &[],
        serde_json::json!({ "size": 10 }).to_string(),
    )
    .await;
    assert_eq!(
        commit.status,
        StatusCode::BAD_REQUEST,
        "nothing was recorded"
    );

    // A JSON body that trickles is cut too.
    let mut stream = connect(&h).await;
    let head = format!(
        "POST /prefix-token/_apis/artifactcache/caches HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 40\r\n\r\n{{\"key\""
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let answer = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("a trickling JSON body holds its connection");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let h = Harness::custom(
        1 << 20,
        |_| {},
        |server| {
            server.max_connections = 2;
            server.header_read_timeout = Duration::from_secs(30);
        },
    )
    .await;
    let first = connect(&h).await;
    let _second = connect(&h).await;
    let third = tokio::spawn({
        let url = h.v1("cache?keys=k&version=v1");
        async move { send(Method::GET, &url, Some(TOKEN), &[], "").await.status }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection was served");
    drop(first);
    let status = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a slot is free")
        .expect("request task");
    assert_eq!(status, StatusCode::NO_CONTENT);
}
