//! Small HTTP helpers shared by both protocols: response builders, query and body parsing,
//! bearer tokens, and the mapping of [`StoreError`] to status codes.
//!
//! Owns: nothing protocol-specific. Must not: touch the store.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use crate::store::{ByteStream, StoreError};

pub(crate) type Body = UnsyncBoxBody<Bytes, io::Error>;
pub(crate) type Response = http::Response<Body>;
/// Handlers return the error response itself, so `?` can bail out with the right status.
pub(crate) type Handled = Result<Response, Response>;

/// JSON request bodies are tiny; anything bigger is refused before it is buffered.
pub(crate) const MAX_JSON_BODY: usize = 64 * 1024;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty(status: StatusCode) -> Response {
    let mut response =
        http::Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = http::Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A v1-style error: the toolkit's REST client shows `message` from a JSON body.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    tracing::debug!(status = status.as_u16(), message, "cache request refused");
    json(status, &serde_json::json!({ "message": message }))
}

pub(crate) fn query(uri: &http::Uri) -> HashMap<String, String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A small request body (JSON, a block list) of at most `limit` bytes, which must arrive
/// whole within `timeout` (a client trickling it must not hold the connection).
pub(crate) async fn read_small(
    body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Response> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(_)) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large or unreadable",
        )),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )),
    }
}

pub(crate) async fn read_json<T: DeserializeOwned>(
    body: Incoming,
    timeout: Duration,
) -> Result<T, Response> {
    let bytes = read_small(body, MAX_JSON_BODY, timeout).await?;
    parse_json(&bytes)
}

/// A JSON request body as `T`; 400 with serde's reason otherwise.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))
}

/// An upload body as a stream; a pause of more than `stall` between two pieces ends it with
/// a `TimedOut` error (the write fails and the range is not recorded).
pub(crate) fn body_stream(body: Incoming, stall: Duration) -> ByteStream {
    let frames = TryStreamExt::map_err(BodyStream::new(body), io::Error::other);
    let data = frames.try_filter_map(|frame| std::future::ready(Ok(frame.into_data().ok())));
    let guarded = futures_util::stream::unfold(Some(Box::pin(data)), move |state| async move {
        let mut data = state?;
        match tokio::time::timeout(stall, data.next()).await {
            Ok(Some(item)) => Some((item, Some(data))),
            Ok(None) => None,
            Err(_) => Some((
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no request body data for {stall:?}"),
                )),
                None,
            )),
        }
    });
    Box::pin(guarded)
}

pub(crate) fn store_error_status(err: &StoreError) -> StatusCode {
    match err {
        StoreError::Conflict { .. } | StoreError::Busy { .. } => StatusCode::CONFLICT,
        StoreError::UnknownUpload { .. } | StoreError::UnknownEntry { .. } => StatusCode::NOT_FOUND,
        StoreError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        StoreError::UploadSpace { .. } | StoreError::TooManyUploads { .. } => {
            StatusCode::TOO_MANY_REQUESTS
        }
        StoreError::BadRange { .. }
        | StoreError::Incomplete { .. }
        | StoreError::UnknownBlock { .. }
        | StoreError::Body { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub(crate) fn store_error(err: &StoreError) -> Response {
    let status = store_error_status(err);
    if status.is_server_error() {
        tracing::error!(error = %err, cause = ?std::error::Error::source(err), "cache store failed");
    }
    error(status, &err.to_string())
}

/// Checks a key from a request: the toolkit's own limits (512 characters, no commas, which
/// separate keys in v1) plus no control characters. Keys never name files, so `../` is just
/// text.
pub(crate) fn check_key(key: &str) -> Result<(), Response> {
    let problem = if key.is_empty() {
        Some("cache key is empty")
    } else if key.chars().count() > 512 {
        Some("cache key is longer than 512 characters")
    } else if key.contains(',') {
        Some("cache key contains a comma")
    } else if key.chars().any(char::is_control) {
        Some("cache key contains a control character")
    } else {
        None
    };
    match problem {
        Some(message) => Err(error(StatusCode::BAD_REQUEST, message)),
        None => Ok(()),
    }
}

pub(crate) fn check_version(version: &str) -> Result<(), Response> {
    if version.is_empty() || version.len() > 512 || version.chars().any(char::is_control) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "cache version is missing or malformed",
        ));
    }
    Ok(())
}
