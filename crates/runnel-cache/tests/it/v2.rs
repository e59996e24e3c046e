//! Protocol v2: Twirp calls and block-blob uploads.

use http::{Method, StatusCode};

use crate::harness::{Harness, OTHER_REPO_TOKEN, TOKEN, send};

async fn twirp(
    h: &Harness,
    token: Option<&str>,
    call: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let url = format!(
        "{}/twirp/github.actions.results.api.v1.CacheService/{call}",
        h.origin()
    );
    let reply = send(
        Method::POST,
        &url,
        token,
        &[("content-type", "application/json")],
        body.to_string(),
    )
    .await;
    (reply.status, reply.json())
}

async fn create(h: &Harness, key: &str) -> serde_json::Value {
    let (status, json) = twirp(
        h,
        Some(TOKEN),
        "CreateCacheEntry",
        serde_json::json!({ "key": key, "version": "v" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    json
}

async fn download(
    h: &Harness,
    token: &str,
    key: &str,
    restore: &[&str],
) -> Option<(String, Vec<u8>)> {
    let (status, json) = twirp(
        h,
        Some(token),
        "GetCacheEntryDownloadURL",
        serde_json::json!({ "key": key, "restore_keys": restore, "version": "v" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    if json["ok"] != true {
        return None;
    }
    let url = json["signed_download_url"].as_str().expect("url");
    let reply = send(Method::GET, url, None, &[], "").await;
    assert_eq!(reply.status, StatusCode::OK);
    Some((
        json["matched_key"].as_str().unwrap_or("").to_owned(),
        reply.body,
    ))
}

#[tokio::test]
async fn single_shot_and_block_uploads_round_trip() {
    single_shot_and_block_uploads_round_trip_on(&Harness::new(1 << 20).await).await;
}

/// Shared with the S3 store's tests.
pub(crate) async fn single_shot_and_block_uploads_round_trip_on(h: &Harness) {
    let created = create(h, "single").await;
    assert_eq!(created["ok"], true);
    let url = created["signed_upload_url"]
        .as_str()
        .expect("upload url")
        .to_owned();
    let put = send(
        Method::PUT,
        &url,
        None,
        &[("x-ms-blob-type", "BlockBlob")],
        "one shot",
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert!(
        put.headers.contains_key("x-ms-request-id"),
        "the Azure SDK needs it"
    );
    // Not visible before finalize.
    assert_eq!(download(h, TOKEN, "single", &[]).await, None);
    let (status, fin) = twirp(
        h,
        Some(TOKEN),
        "FinalizeCacheEntryUpload",
        serde_json::json!({ "key": "single", "version": "v", "size_bytes": "8" }),
    )
    .await;
    assert_eq!(
        (status, &fin["ok"]),
        (StatusCode::OK, &serde_json::json!(true))
    );
    assert!(fin["entry_id"].is_string(), "int64 as a JSON string: {fin}");
    assert_eq!(
        download(h, TOKEN, "single", &[]).await,
        Some(("single".to_owned(), b"one shot".to_vec()))
    );

    let created = create(h, "blocks").await;
    let url = created["signed_upload_url"]
        .as_str()
        .expect("upload url")
        .to_owned();
    for (id, data) in [("QUFB", "first-"), ("QkJC", "second")] {
        let put = send(
            Method::PUT,
            &format!("{url}&comp=block&blockid={id}"),
            None,
            &[],
            data,
        )
        .await;
        assert_eq!(put.status, StatusCode::CREATED);
    }
    let list = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>QkJC</Latest><Latest>QUFB</Latest></BlockList>";
    let put = send(
        Method::PUT,
        &format!("{url}&comp=blocklist"),
        None,
        &[],
        list,
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let (_, fin) = twirp(
        h,
        Some(TOKEN),
        "FinalizeCacheEntryUpload",
        serde_json::json!({ "key": "blocks", "version": "v", "size_bytes": "12" }),
    )
    .await;
    assert_eq!(fin["ok"], true);
    // Block-list order, not arrival order; a restore key finds the newest prefix match.
    assert_eq!(
        download(h, TOKEN, "nope", &["b"]).await,
        Some(("blocks".to_owned(), b"secondfirst-".to_vec()))
    );
    assert_eq!(download(h, OTHER_REPO_TOKEN, "blocks", &[]).await, None);
}

#[tokio::test]
async fn v2_refusals() {
    v2_refusals_on(&Harness::new(1 << 20).await).await;
}

/// Shared with the S3 store's tests.
pub(crate) async fn v2_refusals_on(h: &Harness) {
    let (status, json) = twirp(
        h,
        Some("wrong"),
        "CreateCacheEntry",
        serde_json::json!({ "key": "k", "version": "v" }),
    )
    .await;
    assert_eq!(
        (status, json["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (status, _) = twirp(h, Some(TOKEN), "NoSuchCall", serde_json::json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let created = create(h, "k").await;
    let url = created["signed_upload_url"]
        .as_str()
        .expect("upload url")
        .to_owned();
    // A second create of the same key while uploading: ok:false, which the client skips.
    assert_eq!(create(h, "k").await["ok"], false);
    // A tampered signature, a missing Content-Length-consistent body, an unknown block.
    let tampered = url.replace("sig=", "sig=00");
    assert_eq!(
        send(Method::PUT, &tampered, None, &[], "x").await.status,
        StatusCode::FORBIDDEN
    );
    let list = "<BlockList><Latest>bm9wZQ==</Latest></BlockList>";
    assert_eq!(
        send(
            Method::PUT,
            &format!("{url}&comp=blocklist"),
            None,
            &[],
            list
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    // Finalize with nothing uploaded for that size.
    let (status, _) = twirp(
        h,
        Some(TOKEN),
        "FinalizeCacheEntryUpload",
        serde_json::json!({ "key": "k", "version": "v", "size_bytes": "5" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(download(h, TOKEN, "k", &[]).await, None);
}
