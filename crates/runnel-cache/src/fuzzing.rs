//! One entry point that runs every parser of the untrusted parts of a cache or artifact
//! request over arbitrary bytes: the `cache_http` fuzz target calls it, and the crate's tests
//! replay the saved inputs under `tests/fuzz-regressions/` through it. No server, no store.
//!
//! Input format (anything else is still parsed as far as it goes): a request head — a line
//! `METHOD TARGET`, then `name: value` header lines — then an empty line and the body.
//!
//! Owns: nothing but the order of the calls. Must not: do IO.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::TokenVerifier;
use crate::auth::{UrlPurpose, UrlSigner};
use crate::http_util::{bearer, content_length, parse_json, query};
use crate::route::{Route, route};
use crate::token::{JobTokens, looks_like_token};

/// Feeds `data` to the routing, query, header, token, JSON body, `Content-Range` and block list
/// parsers a request reaches before any store call. It must never panic.
#[doc(hidden)]
pub fn parse_untrusted_request(data: &[u8]) {
    let (head, body) = split_head(data);
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let (method, target) = request_line
        .split_once(' ')
        .unwrap_or(("GET", request_line));
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            headers.append(name, value);
        }
    }

    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    if let Ok(uri) = target.parse::<Uri>() {
        request_target(&method, &uri, &headers);
    }
    // The header parsers, whatever the route.
    let _ = content_length(&headers);
    if let Some(token) = bearer(&headers) {
        token_parsers(token);
    }
    for value in headers.values() {
        if let Ok(text) = value.to_str() {
            let _ = crate::v1::parse_content_range(text);
        }
    }
    body_parsers(body);
}

/// The head and the body, split at the first empty line.
fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for separator in [&b"\r\n\r\n"[..], b"\n\n"] {
        if let Some(at) = data
            .windows(separator.len())
            .position(|window| window == separator)
        {
            let head = data.get(..at).unwrap_or_default();
            let body = data.get(at + separator.len()..).unwrap_or_default();
            return (head, body);
        }
    }
    (data, &[])
}

fn request_target(method: &Method, uri: &Uri, headers: &HeaderMap) {
    let query = query(uri);
    match route(method, uri.path()) {
        Route::V1 { path_token, .. } => {
            if let Some(token) = path_token {
                token_parsers(token);
            }
            let _ = crate::v1::lookup_query(uri);
        }
        Route::ArtifactUpload(id) | Route::ArtifactDownload(id) => {
            // A signature check parses `exp` and `sig`.
            let signer = UrlSigner::new([7; 32]);
            let exp = query.get("exp").map(String::as_str).unwrap_or_default();
            let sig = query.get("sig").map(String::as_str).unwrap_or_default();
            let _ = signer.verify(UrlPurpose::ArtifactUpload, id.unwrap_or(0), exp, sig);
        }
        Route::CacheTwirp(_) | Route::ArtifactTwirp(_) | Route::NotFound => {}
    }
    let _ = crate::server::origin_of(headers, std::net::SocketAddr::from(([127, 0, 0, 1], 1)));
}

fn token_parsers(token: &str) {
    let _ = looks_like_token(token);
    let tokens = JobTokens::from_secret(b"fuzzing secret, not a real one");
    let _ = tokens.verify(Some(token));
    tokens.revoke(token);
}

fn body_parsers(body: &[u8]) {
    let _ = crate::v1::reserve_request(body);
    let _ = parse_json::<crate::v1::CommitRequest>(body);
    let _ = crate::v2::create_request(body);
    let _ = parse_json::<crate::v2::FinalizeRequest>(body);
    let _ = crate::v2::download_request(body);
    crate::artifacts::parse_bodies(body);
    let text = String::from_utf8_lossy(body);
    let _ = crate::v2::parse_block_list(&text);
}
