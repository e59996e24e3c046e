//! Cache protocol v2: the Twirp `github.actions.results.api.v1.CacheService` (JSON, snake_case,
//! int64 as strings) and the Azure-block-blob-style uploads to the URLs it signs.
//!
//! Owns: Twirp bodies and errors, the blob PUT variants (single shot, `comp=block`,
//! `comp=blocklist`). Must not: touch files or decide matching.

use http::{Method, Request, StatusCode, header};
use hyper::body::Incoming;
use serde::{Deserialize, Deserializer};

use crate::auth::{JobIdentity, UrlPurpose};
use crate::http_util::{
    Handled, MAX_JSON_BODY, Response, body_stream, check_key, check_version, content_length, error,
    json, parse_json, query, read_small, store_error_status,
};
use crate::server::Shared;
use crate::store::{EntryId, StoreError};

/// A Twirp error: `{"code": "...", "msg": "..."}` with the status Twirp assigns to the code.
fn twirp_error(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "already_exists",
        StatusCode::TOO_MANY_REQUESTS => "resource_exhausted",
        StatusCode::REQUEST_TIMEOUT => "deadline_exceeded",
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST => "invalid_argument",
        StatusCode::METHOD_NOT_ALLOWED => "bad_route",
        _ => "internal",
    };
    // Twirp maps invalid_argument to 400 and bad_route to 404.
    let status = match code {
        "invalid_argument" => StatusCode::BAD_REQUEST,
        "bad_route" => StatusCode::NOT_FOUND,
        _ => status,
    };
    tracing::debug!(code, message, "cache v2 request refused");
    json(status, &serde_json::json!({ "code": code, "msg": message }))
}

/// Re-labels a v1-style error response (from the shared helpers) as a Twirp error.
fn as_twirp(response: Response) -> Response {
    let status = response.status();
    twirp_error(
        status,
        status.canonical_reason().unwrap_or("request refused"),
    )
}

fn store_twirp(err: &StoreError) -> Response {
    if matches!(store_error_status(err), StatusCode::INTERNAL_SERVER_ERROR) {
        tracing::error!(error = %err, cause = ?std::error::Error::source(err), "cache store failed");
    }
    twirp_error(store_error_status(err), &err.to_string())
}

/// int64 fields arrive as JSON strings (protobuf JSON) but accept numbers too.
fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    match Either::deserialize(deserializer)? {
        Either::Number(n) => Ok(n),
        Either::Text(text) => text.parse().map_err(serde::de::Error::custom),
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateRequest {
    key: String,
    version: String,
}

#[derive(Deserialize)]
pub(crate) struct FinalizeRequest {
    key: String,
    version: String,
    #[serde(alias = "sizeBytes", deserialize_with = "int64")]
    size_bytes: u64,
}

#[derive(Deserialize)]
struct DownloadUrlRequest {
    key: String,
    #[serde(default, alias = "restoreKeys")]
    restore_keys: Vec<String>,
    version: String,
}

/// The checked keys (primary first) and version of a `GetCacheEntryDownloadURL` body.
pub(crate) fn download_request(bytes: &[u8]) -> Result<(Vec<String>, String), Response> {
    let body: DownloadUrlRequest = parse_json(bytes).map_err(as_twirp)?;
    check_version(&body.version).map_err(as_twirp)?;
    let mut keys = vec![body.key];
    keys.extend(body.restore_keys);
    if keys.len() > 10 {
        return Err(twirp_error(
            StatusCode::BAD_REQUEST,
            "at most 10 cache keys are allowed",
        ));
    }
    for key in &keys {
        check_key(key).map_err(as_twirp)?;
    }
    Ok((keys, body.version))
}

/// `POST /twirp/github.actions.results.api.v1.CacheService/<call>`.
pub(crate) async fn twirp(shared: &Shared, call: &str, request: Request<Incoming>) -> Response {
    if request.method() != Method::POST {
        return twirp_error(StatusCode::METHOD_NOT_ALLOWED, "Twirp calls are POST");
    }
    let identity = match shared.authenticate(None, request.headers()) {
        Ok(identity) => identity,
        Err(reason) => return twirp_error(StatusCode::UNAUTHORIZED, &reason.to_string()),
    };
    let origin = shared.origin(request.headers());
    let body = match read_small(
        request.into_body(),
        MAX_JSON_BODY,
        shared.body_stall_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(refused) => return as_twirp(refused),
    };
    let body = &body[..];
    let result = match call {
        "CreateCacheEntry" => create(shared, &identity, &origin, body).await,
        "FinalizeCacheEntryUpload" => finalize(shared, &identity, body).await,
        "GetCacheEntryDownloadURL" => download_url(shared, &identity, &origin, body).await,
        _ => Err(twirp_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "no such CacheService method",
        )),
    };
    result.unwrap_or_else(|response| response)
}

/// A `CreateCacheEntry` body with its key and version checked.
pub(crate) fn create_request(bytes: &[u8]) -> Result<CreateRequest, Response> {
    let body: CreateRequest = parse_json(bytes).map_err(as_twirp)?;
    check_key(&body.key).map_err(as_twirp)?;
    check_version(&body.version).map_err(as_twirp)?;
    Ok(body)
}

async fn create(shared: &Shared, identity: &JobIdentity, origin: &str, body: &[u8]) -> Handled {
    let body = create_request(body)?;
    match shared
        .store
        .reserve(identity, &body.key, &body.version, None)
        .await
    {
        Ok(id) => {
            let url = format!(
                "{origin}/_apis/artifactcache/blobs/{id}?{}",
                shared.sign(UrlPurpose::Upload, id)
            );
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "ok": true, "signed_upload_url": url }),
            ))
        }
        // The client reads ok:false as "another job may be creating this cache" and skips.
        Err(e @ StoreError::Conflict { .. }) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "ok": false, "signed_upload_url": "", "message": e.to_string() }),
        )),
        Err(e) => Err(store_twirp(&e)),
    }
}

async fn finalize(shared: &Shared, identity: &JobIdentity, body: &[u8]) -> Handled {
    let body: FinalizeRequest = parse_json(body).map_err(as_twirp)?;
    let id = shared
        .store
        .find_upload(identity, &body.key, &body.version)
        .await
        .map_err(|e| store_twirp(&e))?
        .ok_or_else(|| twirp_error(StatusCode::NOT_FOUND, "no upload in progress for this key"))?;
    let entry = shared
        .store
        .commit(identity, id, body.size_bytes)
        .await
        .map_err(|e| store_twirp(&e))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "ok": true, "entry_id": entry.id.to_string() }),
    ))
}

async fn download_url(
    shared: &Shared,
    identity: &JobIdentity,
    origin: &str,
    body: &[u8],
) -> Handled {
    let (keys, version) = download_request(body)?;
    let found = shared
        .store
        .lookup(
            &identity.repository,
            identity.refs.as_ref(),
            &keys,
            &version,
        )
        .await
        .map_err(|e| store_twirp(&e))?;
    let reply = match found {
        Some(entry) => serde_json::json!({
            "ok": true,
            "signed_download_url": format!(
                "{origin}/_apis/artifactcache/artifacts/{}?{}",
                entry.id,
                shared.sign(UrlPurpose::Download, entry.id)
            ),
            "matched_key": entry.key,
        }),
        None => serde_json::json!({ "ok": false, "signed_download_url": "", "matched_key": "" }),
    };
    Ok(json(StatusCode::OK, &reply))
}

/// Azure's block-blob reply: 201 with a request id (the Azure SDK fails without one).
fn blob_created(id: EntryId) -> Response {
    let mut response = crate::http_util::empty(StatusCode::CREATED);
    let headers = response.headers_mut();
    if let Ok(value) = header::HeaderValue::from_str(&format!("runnel-cache-{id}")) {
        headers.insert("x-ms-request-id", value);
    }
    headers.insert(
        "x-ms-version",
        header::HeaderValue::from_static("2024-08-04"),
    );
    response
}

/// The largest block list accepted: 50,000 blocks of 64-byte ids, as Azure allows, fit well
/// under it.
pub(crate) const MAX_BLOCK_LIST: usize = 8 * 1024 * 1024;

/// The `<Latest>`/`<Committed>`/`<Uncommitted>` ids of an Azure block list, in order.
pub(crate) fn parse_block_list(xml: &str) -> Option<Vec<String>> {
    let body = xml
        .split_once("<BlockList>")?
        .1
        .split_once("</BlockList>")?
        .0;
    let mut ids = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let open_end = rest.strip_prefix('<')?.find('>')? + 1;
        let tag = rest.get(1..open_end)?;
        if !matches!(tag, "Latest" | "Committed" | "Uncommitted") {
            return None;
        }
        let after = rest.get(open_end + 1..)?;
        let close = format!("</{tag}>");
        let (id, tail) = after.split_once(close.as_str())?;
        ids.push(id.trim().to_owned());
        rest = tail.trim();
    }
    Some(ids)
}

/// `PUT blobs/{id}?exp=…&sig=…[&comp=block&blockid=…|&comp=blocklist]`.
pub(crate) async fn put_blob(
    shared: &Shared,
    id: Option<EntryId>,
    request: Request<Incoming>,
) -> Handled {
    let id = id.ok_or_else(|| error(StatusCode::NOT_FOUND, "blob id must be a decimal number"))?;
    let query = query(request.uri());
    shared.check_signature(UrlPurpose::Upload, id, &query)?;
    let owner = shared
        .store
        .upload_owner(id)
        .await
        .map_err(|e| crate::http_util::store_error(&e))?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "no upload in progress with this id"))?;
    let store_err = |e: StoreError| crate::http_util::store_error(&e);
    match query.get("comp").map(String::as_str) {
        Some("blocklist") => {
            let xml: String = {
                let bytes = read_small(
                    request.into_body(),
                    MAX_BLOCK_LIST,
                    shared.body_stall_timeout,
                )
                .await?;
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| error(StatusCode::BAD_REQUEST, "block list is not UTF-8"))?
            };
            let ids = parse_block_list(&xml)
                .ok_or_else(|| error(StatusCode::BAD_REQUEST, "malformed block list XML"))?;
            shared
                .store
                .put_block_list(&owner, id, &ids)
                .await
                .map_err(store_err)?;
        }
        Some("block") => {
            let block_id = query
                .get("blockid")
                .filter(|b| !b.is_empty() && b.len() <= 1024)
                .ok_or_else(|| error(StatusCode::BAD_REQUEST, "missing or oversized blockid"))?
                .clone();
            let len = upload_length(shared, request.headers())?;
            let body = body_stream(request.into_body(), shared.body_stall_timeout);
            shared
                .store
                .write_block(&owner, id, &block_id, len, body)
                .await
                .map_err(store_err)?;
        }
        None => {
            let len = upload_length(shared, request.headers())?;
            let body = body_stream(request.into_body(), shared.body_stall_timeout);
            shared
                .store
                .write_range(&owner, id, 0, len, body)
                .await
                .map_err(store_err)?;
        }
        Some(_) => return Err(error(StatusCode::BAD_REQUEST, "unsupported comp parameter")),
    }
    Ok(blob_created(id))
}

fn upload_length(shared: &Shared, headers: &http::HeaderMap) -> Result<u64, Response> {
    let len = content_length(headers)
        .ok_or_else(|| error(StatusCode::LENGTH_REQUIRED, "Content-Length is required"))?;
    if len > shared.max_upload_body {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body is larger than the server allows",
        ));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::parse_block_list;

    #[test]
    fn block_lists() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            (
                "<?xml version=\"1.0\"?><BlockList><Latest>AAA=</Latest><Latest>AAE=</Latest></BlockList>",
                Some(&["AAA=", "AAE="]),
            ),
            (
                "<BlockList>\n  <Uncommitted>b</Uncommitted>\n</BlockList>",
                Some(&["b"]),
            ),
            ("<BlockList></BlockList>", Some(&[])),
            ("<BlockList><Evil>x</Evil></BlockList>", None),
            ("<BlockList><Latest>x</BlockList>", None),
            ("nothing", None),
        ];
        for (xml, expected) in cases {
            let got = parse_block_list(xml);
            let expected = expected.map(|ids| ids.iter().map(|s| (*s).to_owned()).collect());
            assert_eq!(got, expected, "{xml}");
        }
    }
}
