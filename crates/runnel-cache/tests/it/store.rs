//! The disk store through the server: restarts and least-recently-used eviction.

use crate::harness::{Harness, TOKEN, restore_v1, save_v1, send};

#[tokio::test]
async fn entries_survive_a_restart_and_uploads_do_not() {
    let mut h = Harness::new(1 << 20).await;
    save_v1(&h, TOKEN, "kept", "v1", b"committed bytes").await;
    let open = send(
        http::Method::POST,
        &h.v1("caches"),
        Some(TOKEN),
        &[],
        serde_json::json!({ "key": "open", "version": "v1" }).to_string(),
    )
    .await;
    let open_id = open.json()["cacheId"].as_u64().expect("cacheId");
    h.restart().await;
    assert_eq!(
        restore_v1(&h, TOKEN, &["kept"], "v1").await,
        Some(("kept".to_owned(), b"committed bytes".to_vec()))
    );
    // The half-done upload is gone; its key can be reserved again, with a fresh id.
    let again = send(
        http::Method::POST,
        &h.v1("caches"),
        Some(TOKEN),
        &[],
        serde_json::json!({ "key": "open", "version": "v1" }).to_string(),
    )
    .await;
    let new_id = again.json()["cacheId"].as_u64().expect("cacheId");
    assert!(
        new_id > open_id,
        "ids are never reused: {new_id} after {open_id}"
    );
}

#[tokio::test]
async fn least_recently_used_entries_are_evicted() {
    let h = Harness::new(250).await;
    let hundred = vec![7u8; 100];
    save_v1(&h, TOKEN, "one", "v1", &hundred).await;
    save_v1(&h, TOKEN, "two", "v1", &hundred).await;
    // Using "one" makes "two" the least recently used.
    assert!(restore_v1(&h, TOKEN, &["one"], "v1").await.is_some());
    save_v1(&h, TOKEN, "three", "v1", &hundred).await;
    assert!(restore_v1(&h, TOKEN, &["one"], "v1").await.is_some());
    assert_eq!(restore_v1(&h, TOKEN, &["two"], "v1").await, None);
    assert!(restore_v1(&h, TOKEN, &["three"], "v1").await.is_some());
    let files = std::fs::read_dir(h.dir.path().join("entries"))
        .expect("list")
        .count();
    assert_eq!(files, 2);
}
