//! Protocol v1: round trips, matching, and every bad input we promise a clear error for.

use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{
    Harness, OTHER_JOB_TOKEN, OTHER_REPO_TOKEN, TOKEN, restore_v1, save_v1, send,
};

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn save_then_restore_with_github_matching() {
    save_then_restore_with_github_matching_on(&Harness::new(64 * MIB).await).await;
}

/// Shared with the S3 store's tests.
pub(crate) async fn save_then_restore_with_github_matching_on(h: &Harness) {
    let archive: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    save_v1(h, TOKEN, "linux-deps-aaa", "v1", &archive).await;
    save_v1(h, TOKEN, "linux-deps-bbb", "v1", b"newer").await;

    let exact = restore_v1(h, TOKEN, &["linux-deps-aaa", "linux-deps-"], "v1").await;
    assert_eq!(exact, Some(("linux-deps-aaa".to_owned(), archive.clone())));
    // Restore-key fallback: the newest prefix match.
    let fallback = restore_v1(h, TOKEN, &["linux-deps-ccc", "linux-deps-"], "v1").await;
    assert_eq!(
        fallback,
        Some(("linux-deps-bbb".to_owned(), b"newer".to_vec()))
    );
    // Another version (other paths or compressor) is another entry.
    assert_eq!(restore_v1(h, TOKEN, &["linux-deps-aaa"], "v2").await, None);
    // Another repository never sees it.
    assert_eq!(
        restore_v1(h, OTHER_REPO_TOKEN, &["linux-deps-aaa"], "v1").await,
        None
    );
    // Another job of the same repository does.
    assert!(
        restore_v1(h, OTHER_JOB_TOKEN, &["linux-deps-aaa"], "v1")
            .await
            .is_some()
    );
}

#[tokio::test]
async fn keys_with_dot_dot_are_plain_text() {
    let h = Harness::new(MIB).await;
    save_v1(&h, TOKEN, "../../etc/passwd", "v1", b"data").await;
    let hit = restore_v1(&h, TOKEN, &["../../etc/passwd"], "v1").await;
    assert_eq!(hit, Some(("../../etc/passwd".to_owned(), b"data".to_vec())));
    // Nothing but the store's own layout exists, and entries are named by id.
    let mut names: Vec<String> = std::fs::read_dir(h.dir.path())
        .expect("list store")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(names, ["entries", "index.json", "index.lock", "uploads"]);
    let entries: Vec<String> = std::fs::read_dir(h.dir.path().join("entries"))
        .expect("list entries")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(
        entries
            .iter()
            .all(|name| name.bytes().all(|b| b.is_ascii_digit())),
        "{entries:?}"
    );
}

async fn reserve(h: &Harness, token: &str, key: &str) -> (StatusCode, Option<u64>) {
    let reply = send(
        Method::POST,
        &h.v1("caches"),
        Some(token),
        &[],
        serde_json::json!({ "key": key, "version": "v1" }).to_string(),
    )
    .await;
    (reply.status, reply.json()["cacheId"].as_u64())
}

async fn patch(h: &Harness, token: &str, id: u64, range: &str, body: &[u8]) -> StatusCode {
    send(
        Method::PATCH,
        &h.v1(&format!("caches/{id}")),
        Some(token),
        &[("content-range", range)],
        body.to_vec(),
    )
    .await
    .status
}

async fn commit(h: &Harness, token: &str, id: u64, size: u64) -> StatusCode {
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

#[tokio::test]
async fn bad_requests_get_clear_errors_and_corrupt_nothing() {
    bad_requests_get_clear_errors_and_corrupt_nothing_on(&Harness::new(1000).await).await;
}

/// Shared with the S3 store's tests (`h`'s size limit must be 1000).
pub(crate) async fn bad_requests_get_clear_errors_and_corrupt_nothing_on(h: &Harness) {
    let (status, id) = reserve(h, TOKEN, "key").await;
    assert_eq!(status, StatusCode::OK);
    let id = id.expect("cacheId");

    // Authentication.
    let lookup = h.v1("cache?keys=key&version=v1");
    assert_eq!(
        send(Method::GET, &lookup, None, &[], "").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(Method::GET, &lookup, Some("nope"), &[], "")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        patch(h, "nope", id, "bytes 0-3/*", b"abcd").await,
        StatusCode::UNAUTHORIZED
    );

    // (Content-Range, body, expected status)
    let cases: &[(&str, &[u8], StatusCode)] = &[
        ("bytes 0-3", b"abcd", StatusCode::BAD_REQUEST),
        ("bytes 3-0/*", b"abcd", StatusCode::BAD_REQUEST),
        ("bytes=0-3/*", b"abcd", StatusCode::BAD_REQUEST),
        // The body is shorter or longer than the range.
        ("bytes 0-9/*", b"abcd", StatusCode::BAD_REQUEST),
        ("bytes 0-1/*", b"abcd", StatusCode::BAD_REQUEST),
        // Past the store's size limit.
        ("bytes 997-1000/*", b"abcd", StatusCode::PAYLOAD_TOO_LARGE),
        (
            "bytes 18446744073709551612-18446744073709551615/*",
            b"abcd",
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (range, body, expected) in cases {
        assert_eq!(patch(h, TOKEN, id, range, body).await, *expected, "{range}");
    }
    // Another job may not write into or commit this job's upload.
    assert_eq!(
        patch(h, OTHER_JOB_TOKEN, id, "bytes 0-3/*", b"abcd").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        commit(h, OTHER_JOB_TOKEN, id, 4).await,
        StatusCode::NOT_FOUND
    );
    // Not a number, or a traversal attempt, in the id.
    for path in ["caches/abc", "caches/..%2F..%2Fx", "caches/-1"] {
        let reply = send(
            Method::PATCH,
            &h.v1(path),
            Some(TOKEN),
            &[("content-range", "bytes 0-3/*")],
            "abcd",
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }

    // The same key while this upload is open: conflict, as GitHub's 409.
    assert_eq!(reserve(h, TOKEN, "key").await.0, StatusCode::CONFLICT);
    assert_eq!(
        reserve(h, OTHER_JOB_TOKEN, "key").await.0,
        StatusCode::CONFLICT
    );
    // Another repository has its own key space.
    assert_eq!(reserve(h, OTHER_REPO_TOKEN, "key").await.0, StatusCode::OK);
    // Malformed keys.
    for key in ["", "a,b", "line\nbreak", &"k".repeat(513)] {
        assert_eq!(
            reserve(h, TOKEN, key).await.0,
            StatusCode::BAD_REQUEST,
            "{key:?}"
        );
    }
    let too_big = send(
        Method::POST,
        &h.v1("caches"),
        Some(TOKEN),
        &[],
        serde_json::json!({ "key": "big", "version": "v1", "cacheSize": 1001 }).to_string(),
    )
    .await;
    assert_eq!(
        too_big.status,
        StatusCode::BAD_REQUEST,
        "the client reads 400 as over the data cap"
    );

    // A gap: commit refuses, nothing is visible.
    assert_eq!(
        patch(h, TOKEN, id, "bytes 4-7/*", b"efgh").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(commit(h, TOKEN, id, 8).await, StatusCode::BAD_REQUEST);
    assert_eq!(restore_v1(h, TOKEN, &["key"], "v1").await, None);
    // Filling the gap makes it committable; a size beyond what was sent is refused first.
    assert_eq!(
        patch(h, TOKEN, id, "bytes 0-3/*", b"abcd").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(commit(h, TOKEN, id, 9).await, StatusCode::BAD_REQUEST);
    assert_eq!(commit(h, TOKEN, id, 8).await, StatusCode::NO_CONTENT);
    assert_eq!(
        restore_v1(h, TOKEN, &["key"], "v1").await,
        Some(("key".to_owned(), b"abcdefgh".to_vec()))
    );

    // Immutable once committed: no more writes, no second commit, no new reserve.
    assert_eq!(
        patch(h, TOKEN, id, "bytes 0-3/*", b"XXXX").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(commit(h, TOKEN, id, 8).await, StatusCode::NOT_FOUND);
    assert_eq!(reserve(h, TOKEN, "key").await.0, StatusCode::CONFLICT);
    assert_eq!(
        restore_v1(h, TOKEN, &["key"], "v1").await,
        Some(("key".to_owned(), b"abcdefgh".to_vec()))
    );

    // Downloads need a valid signature.
    for query in ["", "?exp=99999999999&sig=00", "?exp=1&sig=zz"] {
        let url = h.v1(&format!("artifacts/{id}{query}"));
        assert_eq!(
            send(Method::GET, &url, None, &[], "").await.status,
            StatusCode::FORBIDDEN,
            "{query}"
        );
    }
    // A JSON body over the limit.
    let huge = format!("{{\"key\":\"{}\",\"version\":\"v1\"}}", "k".repeat(100_000));
    let reply = send(Method::POST, &h.v1("caches"), Some(TOKEN), &[], huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn truncated_upload_is_not_recorded() {
    truncated_upload_is_not_recorded_on(&Harness::new(MIB).await).await;
}

/// Shared with the S3 store's tests.
pub(crate) async fn truncated_upload_is_not_recorded_on(h: &Harness) {
    let (_, id) = reserve(h, TOKEN, "cut").await;
    let id = id.expect("cacheId");
    // Declare 100 bytes, send 10, close the connection.
    let addr = h.origin().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "PATCH /prefix-token/_apis/artifactcache/caches/{id} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\ncontent-range: bytes 0-99/*\r\ncontent-length: 100\r\n\r\n0123456789"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    // The range was not recorded, so commit fails and nothing is served.
    assert_eq!(commit(h, TOKEN, id, 100).await, StatusCode::BAD_REQUEST);
    assert_eq!(commit(h, TOKEN, id, 10).await, StatusCode::BAD_REQUEST);
    assert_eq!(restore_v1(h, TOKEN, &["cut"], "v1").await, None);
}
