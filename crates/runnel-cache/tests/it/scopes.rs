//! Cache isolation by git ref, through both protocols: a job restores its own ref's entries
//! first, then its base branch's and the default branch's; it saves to its own ref only. So a
//! pull request cannot plant the newest restore-key match of the default branch. Entries
//! without a ref (from before scopes, or an unscoped grant) are everyone's, searched last; an
//! index written before scopes existed keeps working.

use http::{Method, StatusCode};

use crate::harness::{
    Harness, OTHER_PR_TOKEN, PR_TOKEN, TOKEN, UNSCOPED_TOKEN, restore_v1, save_v1, send,
};

#[tokio::test]
async fn a_pull_request_cannot_plant_the_default_branchs_restore_match() {
    isolation_by_ref_on(&Harness::new(1 << 20).await).await;
}

/// A v2 lookup: the matched key, or `None` on a miss.
async fn restore_v2(h: &Harness, token: &str, key: &str, restore_keys: &[&str]) -> Option<String> {
    let url = format!(
        "{}/twirp/github.actions.results.api.v1.CacheService/GetCacheEntryDownloadURL",
        h.origin()
    );
    let body = serde_json::json!({ "key": key, "restore_keys": restore_keys, "version": "v1" });
    let reply = send(Method::POST, &url, Some(token), &[], body.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    (json["ok"] == true).then(|| json["matched_key"].as_str().unwrap_or("").to_owned())
}

async fn matched_v1(h: &Harness, token: &str, keys: &[&str]) -> Option<String> {
    restore_v1(h, token, keys, "v1").await.map(|(key, _)| key)
}

/// Shared with the S3 store's tests.
pub(crate) async fn isolation_by_ref_on(h: &Harness) {
    // Oldest first: an unscoped save, the default branch's, then the pull request's.
    save_v1(h, UNSCOPED_TOKEN, "deps-legacy", "v1", b"legacy").await;
    save_v1(h, TOKEN, "deps-main", "v1", b"main").await;
    save_v1(h, PR_TOKEN, "deps-pr", "v1", b"planted").await;

    // The default branch never sees the pull request's newer entry, in either protocol.
    assert_eq!(
        restore_v1(h, TOKEN, &["deps-missing", "deps-"], "v1").await,
        Some(("deps-main".to_owned(), b"main".to_vec()))
    );
    assert_eq!(matched_v1(h, TOKEN, &["deps-pr"]).await, None);
    assert_eq!(
        restore_v2(h, TOKEN, "deps-missing", &["deps-"]).await,
        Some("deps-main".to_owned())
    );
    // The pull request reads its own entry first, then its base's and the default branch's.
    assert_eq!(
        matched_v1(h, PR_TOKEN, &["deps-main", "deps-"]).await,
        Some("deps-pr".to_owned()),
        "all keys in the own ref before any fallback"
    );
    assert_eq!(
        matched_v1(h, PR_TOKEN, &["deps-main"]).await,
        Some("deps-main".to_owned())
    );
    assert_eq!(
        restore_v2(h, PR_TOKEN, "deps-main", &[]).await,
        Some("deps-main".to_owned())
    );
    // Another pull request does not see the first one's entries.
    assert_eq!(
        matched_v1(h, OTHER_PR_TOKEN, &["deps-"]).await,
        Some("deps-main".to_owned())
    );
    // Entries without a ref: everyone reads them, after every ref's own.
    assert_eq!(
        matched_v1(h, OTHER_PR_TOKEN, &["deps-legacy"]).await,
        Some("deps-legacy".to_owned())
    );
    assert_eq!(
        matched_v1(h, UNSCOPED_TOKEN, &["deps-"]).await,
        Some("deps-legacy".to_owned()),
        "an unscoped grant reads the unscoped entries only"
    );

    // Each ref has its own key space: the pull request may save a key the default branch
    // has, and the default branch keeps restoring its own.
    save_v1(h, PR_TOKEN, "deps-main", "v1", b"pr's copy").await;
    assert_eq!(
        restore_v1(h, TOKEN, &["deps-main"], "v1").await,
        Some(("deps-main".to_owned(), b"main".to_vec()))
    );
    assert_eq!(
        restore_v1(h, PR_TOKEN, &["deps-main"], "v1").await,
        Some(("deps-main".to_owned(), b"pr's copy".to_vec()))
    );
    // Within one ref a committed key is still final.
    let again = send(
        Method::POST,
        &h.v1("caches"),
        Some(PR_TOKEN),
        &[],
        serde_json::json!({ "key": "deps-main", "version": "v1" }).to_string(),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

/// An index from before scopes (no `ref` on its entries): opened as is, its entries are read
/// by every ref, and a new save of the same key in a ref is a separate entry.
#[tokio::test]
async fn an_index_written_before_scopes_stays_readable() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("entries")).expect("entries dir");
    std::fs::write(dir.path().join("entries/1"), b"old bytes").expect("archive");
    let index = serde_json::json!({
        "format": 1,
        "next_id": 2,
        "clock": 1,
        "entries": [{
            "id": 1, "repository": "owner/repo", "key": "deps-old", "version": "v1",
            "size": 9, "created_seq": 1, "created_at_ms": 1_700_000_000_000u64, "last_used": 1,
        }],
    });
    std::fs::write(dir.path().join("index.json"), index.to_string()).expect("index");
    let mut h = Harness::new_in(dir, 1 << 20).await;
    assert_eq!(
        restore_v1(&h, PR_TOKEN, &["deps-"], "v1").await,
        Some(("deps-old".to_owned(), b"old bytes".to_vec()))
    );
    save_v1(&h, TOKEN, "deps-old", "v1", b"new bytes").await;
    h.restart().await;
    assert_eq!(
        restore_v1(&h, TOKEN, &["deps-old"], "v1").await,
        Some(("deps-old".to_owned(), b"new bytes".to_vec()))
    );
    assert_eq!(
        restore_v1(&h, OTHER_PR_TOKEN, &["deps-old"], "v1").await,
        Some(("deps-old".to_owned(), b"new bytes".to_vec())),
        "the default branch's entry comes before the unscoped one"
    );
    assert_eq!(
        restore_v1(&h, UNSCOPED_TOKEN, &["deps-old"], "v1").await,
        Some(("deps-old".to_owned(), b"old bytes".to_vec()))
    );
    let index = std::fs::read_to_string(h.dir.path().join("index.json")).expect("index");
    assert!(index.contains(r#""ref":"refs/heads/main""#), "{index}");
}
