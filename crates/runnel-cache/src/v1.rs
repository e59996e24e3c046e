//! Cache protocol v1: the REST API under `<ACTIONS_CACHE_URL>_apis/artifactcache/`.
//!
//! Owns: its request and response JSON and the `Content-Range` header. Must not: touch files
//! or decide matching (the store does).

use http::{Request, StatusCode, header};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::auth::{JobIdentity, UrlPurpose};
use crate::http_util::{
    Handled, MAX_JSON_BODY, Response, body_stream, check_key, check_version, content_length, error,
    json, parse_json, query, read_json, read_small, store_error,
};
use crate::server::Shared;
use crate::store::{Entry, EntryId};

/// The toolkit sends at most 10 keys (primary plus restore keys).
const MAX_KEYS: usize = 10;

fn require_id(id: Option<EntryId>) -> Result<EntryId, Response> {
    id.ok_or_else(|| error(StatusCode::NOT_FOUND, "cache id must be a decimal number"))
}

fn creation_time(entry: &Entry) -> String {
    // Milliseconds since the epoch as text; the toolkit only displays it.
    entry.created_at_ms.to_string()
}

/// The checked keys and version of a lookup's query.
pub(crate) fn lookup_query(uri: &http::Uri) -> Result<(Vec<String>, String), Response> {
    let query = query(uri);
    let version = query.get("version").map(String::as_str).unwrap_or("");
    check_version(version)?;
    let keys: Vec<String> = query
        .get("keys")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .map(str::to_owned)
        .collect();
    if keys.len() > MAX_KEYS {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "at most 10 cache keys are allowed",
        ));
    }
    for key in &keys {
        check_key(key)?;
    }
    Ok((keys, version.to_owned()))
}

/// `GET cache?keys=k1,k2&version=v`: 200 with the archive URL, or 204 on a miss.
pub(crate) async fn lookup(
    shared: &Shared,
    identity: &JobIdentity,
    base: &str,
    request: Request<Incoming>,
) -> Handled {
    let (keys, version) = lookup_query(request.uri())?;
    let found = shared
        .store
        .lookup(
            &identity.repository,
            identity.refs.as_ref(),
            &keys,
            &version,
        )
        .await
        .map_err(|e| store_error(&e))?;
    let Some(entry) = found else {
        return Ok(crate::http_util::empty(StatusCode::NO_CONTENT));
    };
    let location = format!(
        "{base}_apis/artifactcache/artifacts/{}?{}",
        entry.id,
        shared.sign(UrlPurpose::Download, entry.id)
    );
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "result": "hit",
            "archiveLocation": location,
            "cacheKey": entry.key,
            "cacheVersion": entry.version,
            "scope": entry.repository,
            "creationTime": creation_time(&entry),
        }),
    ))
}

/// `GET caches?key=k`: the entries with exactly that key (the client asks only for debugging).
pub(crate) async fn list(
    shared: &Shared,
    identity: &JobIdentity,
    request: Request<Incoming>,
) -> Handled {
    let query = query(request.uri());
    let key = query.get("key").map(String::as_str);
    let entries = shared
        .store
        .list(&identity.repository, key)
        .await
        .map_err(|e| store_error(&e))?;
    let caches: Vec<serde_json::Value> = entries
        .iter()
        .map(|entry| {
            serde_json::json!({
                "cacheKey": entry.key,
                "cacheVersion": entry.version,
                "scope": entry.repository,
                "creationTime": creation_time(entry),
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "totalCount": caches.len(), "artifactCaches": caches }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReserveRequest {
    key: String,
    version: String,
    cache_size: Option<u64>,
}

/// A reserve body with its key and version checked.
pub(crate) fn reserve_request(bytes: &[u8]) -> Result<ReserveRequest, Response> {
    let body: ReserveRequest = parse_json(bytes)?;
    check_key(&body.key)?;
    check_version(&body.version)?;
    Ok(body)
}

/// `POST caches`: 200 with `cacheId`; 409 when the key is taken, 400 when too large (the
/// client reports that as over the data cap).
pub(crate) async fn reserve(
    shared: &Shared,
    identity: &JobIdentity,
    request: Request<Incoming>,
) -> Handled {
    let bytes = read_small(
        request.into_body(),
        MAX_JSON_BODY,
        shared.body_stall_timeout,
    )
    .await?;
    let body = reserve_request(&bytes)?;
    match shared
        .store
        .reserve(identity, &body.key, &body.version, body.cache_size)
        .await
    {
        Ok(id) => Ok(json(StatusCode::OK, &serde_json::json!({ "cacheId": id }))),
        Err(e @ crate::StoreError::TooLarge { .. }) => {
            Err(error(StatusCode::BAD_REQUEST, &e.to_string()))
        }
        Err(e) => Err(store_error(&e)),
    }
}

/// Parses `bytes <start>-<end>/<total or *>` (end inclusive) into `(start, len)`.
pub(crate) fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let range = value.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    // `0-18446744073709551615` is 2^64 bytes: not a length.
    let len = (end - start).checked_add(1)?;
    let total = total.trim();
    if total != "*" {
        let total: u64 = total.parse().ok()?;
        if end >= total {
            return None;
        }
    }
    Some((start, len))
}

/// `PATCH caches/{id}`: one chunk at its `Content-Range` offset.
pub(crate) async fn upload(
    shared: &Shared,
    identity: &JobIdentity,
    id: Option<EntryId>,
    request: Request<Incoming>,
) -> Handled {
    let id = require_id(id)?;
    let range = request
        .headers()
        .get(header::CONTENT_RANGE)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "missing Content-Range header"))?;
    let (offset, len) = parse_content_range(range).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "malformed Content-Range (expected bytes <start>-<end>/*)",
        )
    })?;
    if len > shared.max_upload_body {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "chunk is larger than the server allows",
        ));
    }
    if let Some(length) = content_length(request.headers())
        && length != len
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Content-Length does not match Content-Range",
        ));
    }
    let body = body_stream(request.into_body(), shared.body_stall_timeout);
    shared
        .store
        .write_range(identity, id, offset, len, body)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(crate::http_util::empty(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
pub(crate) struct CommitRequest {
    size: u64,
}

/// `POST caches/{id}` with `{"size": n}`: the upload must cover exactly `0..n`.
pub(crate) async fn commit(
    shared: &Shared,
    identity: &JobIdentity,
    id: Option<EntryId>,
    request: Request<Incoming>,
) -> Handled {
    let id = require_id(id)?;
    let body: CommitRequest = read_json(request.into_body(), shared.body_stall_timeout).await?;
    shared
        .store
        .commit(identity, id, body.size)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(crate::http_util::empty(StatusCode::NO_CONTENT))
}

/// `GET artifacts/{id}?exp=…&sig=…`: the archive, authorized by the signature alone because the
/// toolkit sends no token on downloads.
pub(crate) async fn download(
    shared: &Shared,
    id: Option<EntryId>,
    request: Request<Incoming>,
) -> Handled {
    let id = require_id(id)?;
    shared.check_signature(UrlPurpose::Download, id, &query(request.uri()))?;
    let (size, stream) = shared.store.read(id).await.map_err(|e| store_error(&e))?;
    let body = http_body_util::StreamBody::new(futures_util::TryStreamExt::map_ok(
        stream,
        hyper::body::Frame::data,
    ));
    let mut response = http::Response::new(http_body_util::BodyExt::boxed_unsync(body));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, size.into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_range() {
        let cases: &[(&str, Option<(u64, u64)>)] = &[
            ("bytes 0-9/*", Some((0, 10))),
            ("bytes 32-32/*", Some((32, 1))),
            ("bytes 0-9/10", Some((0, 10))),
            ("bytes 0-10/10", None),
            ("bytes 9-0/*", None),
            ("bytes -1-3/*", None),
            ("bytes 0-9", None),
            ("items 0-9/*", None),
            ("bytes a-b/*", None),
            ("bytes 0-18446744073709551615/*", None),
            ("", None),
        ];
        for (header, expected) in cases {
            assert_eq!(parse_content_range(header), *expected, "{header:?}");
        }
    }
}
