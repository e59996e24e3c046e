//! Which handler a request goes to, decided from its method and path alone ([`route`]), so
//! that the decision is pure and fuzzed (`fuzz/fuzz_targets/cache_http.rs`).
//!
//! Owns: the URL layout of both cache protocols and of artifacts. Must not: authenticate,
//! read bodies or touch the store.

use http::Method;

use crate::store::EntryId;
use crate::token::looks_like_token;

const TWIRP_PREFIX: &str = "/twirp/github.actions.results.api.v1.CacheService/";
const V1_MARKER: &str = "/_apis/artifactcache/";
const ARTIFACT_TWIRP_PREFIX: &str = "/twirp/github.actions.results.api.v1.ArtifactService/";
const ARTIFACT_BLOBS: &str = "/_apis/artifacts/";

/// Where a request goes. Ids that are not decimal numbers are `None` (a 404 in the handler).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// A cache v2 Twirp call, by method name.
    CacheTwirp(&'a str),
    /// An artifact Twirp call, by method name.
    ArtifactTwirp(&'a str),
    /// `PUT /_apis/artifacts/upload/{id}` (signed).
    ArtifactUpload(Option<EntryId>),
    /// `GET /_apis/artifacts/download/{id}` (signed).
    ArtifactDownload(Option<EntryId>),
    /// Under `<ACTIONS_CACHE_URL>_apis/artifactcache/`: `prefix` is the path before it
    /// (without the token), `path_token` the token when the prefix ends in one.
    V1 {
        prefix: &'a str,
        path_token: Option<&'a str>,
        call: V1Call,
    },
    /// Nothing here.
    NotFound,
}

/// A call under the v1 marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum V1Call {
    /// `GET artifacts/{id}`: an archive download (signed, no token).
    Download(Option<EntryId>),
    /// `PUT blobs/{id}`: a v2 blob upload (signed, no token).
    BlobUpload(Option<EntryId>),
    /// `GET cache?keys=…&version=…`.
    Lookup,
    /// `GET caches?key=…`.
    List,
    /// `POST caches`.
    Reserve,
    /// `PATCH caches/{id}`.
    Upload(Option<EntryId>),
    /// `POST caches/{id}`.
    Commit(Option<EntryId>),
    /// `POST clean`.
    Clean,
    /// Anything else under the marker (after authentication, a 404).
    Unknown,
}

/// The route of `method` on `path` (the URI's path, query excluded).
pub(crate) fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    if let Some(call) = path.strip_prefix(TWIRP_PREFIX) {
        return Route::CacheTwirp(call);
    }
    if let Some(call) = path.strip_prefix(ARTIFACT_TWIRP_PREFIX) {
        return Route::ArtifactTwirp(call);
    }
    if let Some(rest) = path.strip_prefix(ARTIFACT_BLOBS) {
        return match (method, rest.split_once('/')) {
            (&Method::PUT, Some(("upload", id))) => Route::ArtifactUpload(parse_id(id)),
            (&Method::GET, Some(("download", id))) => Route::ArtifactDownload(parse_id(id)),
            _ => Route::NotFound,
        };
    }
    // v1 keeps any path prefix of ACTIONS_CACHE_URL, so find the API marker anywhere. The
    // runner puts the job's token last in that prefix (a daemon's job sends Gitea's token as
    // the bearer); archive URLs are built without it, they are signed instead.
    let Some((prefix, rest)) = path.split_once(V1_MARKER) else {
        return Route::NotFound;
    };
    let (prefix, path_token) = match prefix.rsplit_once('/') {
        Some((before, last)) if looks_like_token(last) => (before, Some(last)),
        _ => (prefix, None),
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let call = match (method, segments.as_slice()) {
        (&Method::GET, ["artifacts", id]) => V1Call::Download(parse_id(id)),
        (&Method::PUT, ["blobs", id]) => V1Call::BlobUpload(parse_id(id)),
        (&Method::GET, ["cache"]) => V1Call::Lookup,
        (&Method::GET, ["caches"]) => V1Call::List,
        (&Method::POST, ["caches"]) => V1Call::Reserve,
        (&Method::PATCH, ["caches", id]) => V1Call::Upload(parse_id(id)),
        (&Method::POST, ["caches", id]) => V1Call::Commit(parse_id(id)),
        (&Method::POST, ["clean"]) => V1Call::Clean,
        _ => V1Call::Unknown,
    };
    Route::V1 {
        prefix,
        path_token,
        call,
    }
}

/// Ids in paths are decimal; anything else (`..`, names) is a 404 before any lookup.
fn parse_id(text: &str) -> Option<EntryId> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{Route, V1Call, route};
    use http::Method;

    #[test]
    fn routes() {
        let token = "aaaaaaaa.bbbbbbbbbb.cccccccc";
        let v1 = |prefix, path_token, call| Route::V1 {
            prefix,
            path_token,
            call,
        };
        let cases: Vec<(Method, String, Route<'_>)> = vec![
            (
                Method::GET,
                format!("/base/{token}/_apis/artifactcache/cache"),
                v1("/base", Some(token), V1Call::Lookup),
            ),
            (
                Method::PATCH,
                "/_apis/artifactcache/caches/12".to_owned(),
                v1("", None, V1Call::Upload(Some(12))),
            ),
            (
                Method::POST,
                "/p/_apis/artifactcache/caches/..%2Fx".to_owned(),
                v1("/p", None, V1Call::Commit(None)),
            ),
            (
                Method::GET,
                "/_apis/artifactcache/artifacts/99999999999999999999999".to_owned(),
                v1("", None, V1Call::Download(None)),
            ),
            (
                Method::DELETE,
                "/_apis/artifactcache/caches".to_owned(),
                v1("", None, V1Call::Unknown),
            ),
            (
                Method::PUT,
                "/_apis/artifacts/upload/3".to_owned(),
                Route::ArtifactUpload(Some(3)),
            ),
            (
                Method::PUT,
                "/_apis/artifacts/download/3".to_owned(),
                Route::NotFound,
            ),
            (
                Method::POST,
                "/twirp/github.actions.results.api.v1.CacheService/CreateCacheEntry".to_owned(),
                Route::CacheTwirp("CreateCacheEntry"),
            ),
            (Method::GET, "/".to_owned(), Route::NotFound),
        ];
        for (method, path, expected) in &cases {
            assert_eq!(route(method, path), *expected, "{method} {path}");
        }
    }
}
