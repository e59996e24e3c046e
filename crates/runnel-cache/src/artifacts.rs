//! Artifacts v4: the Twirp `github.actions.results.api.v1.ArtifactService` that
//! `upload-artifact@v4`/`download-artifact@v4` (`@actions/artifact` ≥ 2) talk to, with
//! Azure-block-blob-style uploads to URLs this server signs. Served for local runs; in daemon
//! mode Gitea serves artifacts itself.
//!
//! Storage: one directory per artifact under the store's root, named by a number this module
//! assigns; blocks are files named by their arrival number, never by the client's block id or
//! the artifact name. Artifacts are scoped to the token's run: any job of the run lists and
//! downloads them, as on GitHub. An artifact is listed only once finalized with the size and
//! SHA-256 the client computed.
//!
//! Owns: the ArtifactService bodies, the artifact index (in memory: a run lives in one
//! process) and its files. Must not: touch the cache store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::StreamExt;
use http::{Method, Request, StatusCode, header};
use hyper::body::Incoming;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::auth::{JobIdentity, UrlPurpose};
use crate::http_util::{Body, Handled, Response, body_stream, content_length, json, query};
use crate::server::Shared;

/// Where artifacts live and how big one may get.
#[derive(Debug)]
pub(crate) struct ArtifactStore {
    root: PathBuf,
    max_size: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    artifacts: HashMap<u64, Artifact>,
}

#[derive(Debug)]
struct Artifact {
    run: String,
    job: String,
    name: String,
    /// Client block id → (file number, length).
    blocks: HashMap<String, (u64, u64)>,
    next_block: u64,
    /// Bytes in staged blocks plus the assembled content.
    staged: u64,
    /// Length of `content` once assembled (block list or single-shot PUT).
    content: Option<u64>,
    finalized: Option<Finalized>,
}

#[derive(Debug, Clone)]
struct Finalized {
    size: u64,
    digest: String,
    created_at_ms: u64,
}

impl ArtifactStore {
    pub(crate) fn new(root: PathBuf, max_size: u64) -> ArtifactStore {
        ArtifactStore {
            root,
            max_size,
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn dir(&self, id: u64) -> PathBuf {
        self.root.join(id.to_string())
    }
}

fn twirp_error(status: StatusCode, code: &str, message: &str) -> Response {
    tracing::debug!(code, message, "artifact request refused");
    json(status, &serde_json::json!({ "code": code, "msg": message }))
}

fn bad(message: &str) -> Response {
    twirp_error(StatusCode::BAD_REQUEST, "invalid_argument", message)
}

fn not_found(message: &str) -> Response {
    twirp_error(StatusCode::NOT_FOUND, "not_found", message)
}

fn internal(what: &str, path: &Path, error: &std::io::Error) -> Response {
    tracing::error!(path = %path.display(), %error, "{what}");
    twirp_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", what)
}

/// An artifact name as upload-artifact allows it: no path separators, no characters the
/// toolkit refuses, no control characters.
fn check_name(name: &str) -> Result<(), Response> {
    let refused = ['"', ':', '<', '>', '|', '*', '?', '\r', '\n', '\\', '/'];
    if name.is_empty() || name.chars().count() > 256 {
        return Err(bad("artifact name must be 1 to 256 characters"));
    }
    if name.chars().any(|c| refused.contains(&c) || c.is_control()) || name == ".." {
        return Err(bad(
            "artifact name contains a character that is not allowed",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Ids {
    #[serde(default, alias = "workflowRunBackendId")]
    workflow_run_backend_id: String,
}

#[derive(Deserialize)]
struct NamedRequest {
    #[serde(flatten)]
    ids: Ids,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct FinalizeRequest {
    #[serde(flatten)]
    ids: Ids,
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "int64")]
    size: u64,
    #[serde(default)]
    hash: Option<String>,
}

#[derive(Deserialize)]
struct ListRequest {
    #[serde(flatten)]
    ids: Ids,
    #[serde(default, alias = "nameFilter")]
    name_filter: Option<String>,
    #[serde(default, alias = "idFilter", deserialize_with = "opt_int64")]
    id_filter: Option<u64>,
}

fn int64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    opt_int64(deserializer).map(Option::unwrap_or_default)
}

fn opt_int64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    match Option::<Either>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Either::Number(n)) => Ok(Some(n)),
        Some(Either::Text(text)) => text.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// The token's run must be the run the request names: a job sees its own run's artifacts.
fn check_run(identity: &JobIdentity, ids: &Ids) -> Result<(), Response> {
    if ids.workflow_run_backend_id != identity.run {
        return Err(twirp_error(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "the token does not belong to this workflow run",
        ));
    }
    Ok(())
}

/// `POST /twirp/github.actions.results.api.v1.ArtifactService/<call>`.
pub(crate) async fn twirp(shared: &Shared, call: &str, request: Request<Incoming>) -> Response {
    let Some(store) = shared.artifacts.as_ref() else {
        return not_found("this server does not store artifacts");
    };
    if request.method() != Method::POST {
        return twirp_error(StatusCode::NOT_FOUND, "bad_route", "Twirp calls are POST");
    }
    let identity = match shared.authenticate(None, request.headers()) {
        Ok(identity) => identity,
        Err(reason) => {
            return twirp_error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                &reason.to_string(),
            );
        }
    };
    let origin = shared.origin(request.headers());
    let body = match crate::http_util::read_small(
        request.into_body(),
        crate::http_util::MAX_JSON_BODY,
        shared.body_stall_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(refused) if refused.status() == StatusCode::REQUEST_TIMEOUT => {
            return twirp_error(
                StatusCode::REQUEST_TIMEOUT,
                "deadline_exceeded",
                "the request body did not arrive in time",
            );
        }
        Err(_) => return bad("invalid or oversized JSON body"),
    };
    let body = &body[..];
    let result = match call {
        "CreateArtifact" => create(shared, store, &identity, &origin, body).await,
        "FinalizeArtifact" => finalize(store, &identity, body).await,
        "ListArtifacts" => list(store, &identity, body),
        "GetSignedArtifactURL" => signed_url(shared, store, &identity, &origin, body),
        "DeleteArtifact" => delete(store, &identity, body).await,
        _ => Err(twirp_error(
            StatusCode::NOT_FOUND,
            "bad_route",
            "no such ArtifactService method",
        )),
    };
    result.unwrap_or_else(|response| response)
}

fn read<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|_| bad("invalid JSON body"))
}

/// Every ArtifactService body shape parsed from `body`, the name checked as the handlers do
/// (for the fuzz target: none of it may panic).
pub(crate) fn parse_bodies(body: &[u8]) {
    if let Ok(request) = read::<NamedRequest>(body) {
        let _ = check_name(&request.name);
    }
    let _ = read::<FinalizeRequest>(body);
    let _ = read::<ListRequest>(body);
}

async fn create(
    shared: &Shared,
    store: &ArtifactStore,
    identity: &JobIdentity,
    origin: &str,
    body: &[u8],
) -> Handled {
    let request: NamedRequest = read(body)?;
    check_run(identity, &request.ids)?;
    check_name(&request.name)?;
    let id = {
        let mut state = store.lock();
        let taken = state
            .artifacts
            .values()
            .any(|a| a.run == identity.run && a.name == request.name && a.finalized.is_some());
        if taken {
            return Err(twirp_error(
                StatusCode::CONFLICT,
                "already_exists",
                "an artifact with this name already exists in the workflow run",
            ));
        }
        // A new upload under the same name replaces an unfinished one.
        state
            .artifacts
            .retain(|_, a| !(a.run == identity.run && a.name == request.name));
        let id = state.next_id;
        state.next_id += 1;
        state.artifacts.insert(
            id,
            Artifact {
                run: identity.run.clone(),
                job: identity.job.clone(),
                name: request.name.clone(),
                blocks: HashMap::new(),
                next_block: 0,
                staged: 0,
                content: None,
                finalized: None,
            },
        );
        id
    };
    let dir = store.dir(id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| internal("creating the artifact directory failed", &dir, &e))?;
    let url = format!(
        "{origin}/_apis/artifacts/upload/{id}?{}",
        shared.sign(UrlPurpose::ArtifactUpload, id)
    );
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "ok": true, "signed_upload_url": url }),
    ))
}

/// The finalized or unfinished artifact `name` of the token's run.
fn find(state: &State, run: &str, name: &str, finalized: bool) -> Option<u64> {
    state
        .artifacts
        .iter()
        .filter(|(_, a)| a.run == run && a.name == name && a.finalized.is_some() == finalized)
        .map(|(id, _)| *id)
        .max()
}

async fn finalize(store: &ArtifactStore, identity: &JobIdentity, body: &[u8]) -> Handled {
    let request: FinalizeRequest = read(body)?;
    check_run(identity, &request.ids)?;
    let (id, content) = {
        let state = store.lock();
        let id = find(&state, &identity.run, &request.name, false)
            .ok_or_else(|| not_found("no artifact upload in progress with this name"))?;
        let content = state.artifacts.get(&id).and_then(|a| a.content);
        (id, content)
    };
    let Some(length) = content else {
        return Err(bad("the artifact's blob was never committed"));
    };
    if length != request.size {
        return Err(bad(&format!(
            "size {} does not match the {length} bytes uploaded",
            request.size
        )));
    }
    let path = store.dir(id).join("content");
    let digest = sha256_file(&path)
        .await
        .map_err(|e| internal("reading the artifact failed", &path, &e))?;
    let digest = format!("sha256:{digest}");
    if let Some(hash) = request.hash.as_deref().filter(|h| !h.is_empty())
        && !hash.eq_ignore_ascii_case(&digest)
    {
        return Err(bad("hash does not match the uploaded bytes"));
    }
    let mut state = store.lock();
    let artifact = state
        .artifacts
        .get_mut(&id)
        .ok_or_else(|| not_found("the artifact was deleted"))?;
    artifact.finalized = Some(Finalized {
        size: length,
        digest,
        created_at_ms: crate::clock::now_ms(),
    });
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "ok": true, "artifact_id": id.to_string() }),
    ))
}

fn list(store: &ArtifactStore, identity: &JobIdentity, body: &[u8]) -> Handled {
    let request: ListRequest = read(body)?;
    check_run(identity, &request.ids)?;
    let state = store.lock();
    let mut found: Vec<(&u64, &Artifact, &Finalized)> = state
        .artifacts
        .iter()
        .filter(|(_, a)| a.run == identity.run)
        .filter_map(|(id, a)| a.finalized.as_ref().map(|f| (id, a, f)))
        .filter(|(_, a, _)| request.name_filter.as_ref().is_none_or(|n| a.name == *n))
        .filter(|(id, _, _)| request.id_filter.is_none_or(|wanted| **id == wanted))
        .collect();
    found.sort_by_key(|(id, _, _)| **id);
    let artifacts: Vec<serde_json::Value> = found
        .into_iter()
        .map(|(id, a, f)| {
            serde_json::json!({
                "workflow_run_backend_id": a.run,
                "workflow_job_run_backend_id": a.job,
                "database_id": id.to_string(),
                "name": a.name,
                "size": f.size.to_string(),
                "created_at": crate::clock::rfc3339_millis(f.created_at_ms),
                "digest": f.digest,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "artifacts": artifacts }),
    ))
}

fn signed_url(
    shared: &Shared,
    store: &ArtifactStore,
    identity: &JobIdentity,
    origin: &str,
    body: &[u8],
) -> Handled {
    let request: NamedRequest = read(body)?;
    check_run(identity, &request.ids)?;
    let id = find(&store.lock(), &identity.run, &request.name, true)
        .ok_or_else(|| not_found("no artifact with this name in the workflow run"))?;
    let url = format!(
        "{origin}/_apis/artifacts/download/{id}?{}",
        shared.sign(UrlPurpose::ArtifactDownload, id)
    );
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "signed_url": url }),
    ))
}

async fn delete(store: &ArtifactStore, identity: &JobIdentity, body: &[u8]) -> Handled {
    let request: NamedRequest = read(body)?;
    check_run(identity, &request.ids)?;
    let id = {
        let mut state = store.lock();
        let id = find(&state, &identity.run, &request.name, true)
            .ok_or_else(|| not_found("no artifact with this name in the workflow run"))?;
        state.artifacts.remove(&id);
        id
    };
    let dir = store.dir(id);
    if let Err(error) = tokio::fs::remove_dir_all(&dir).await {
        tracing::warn!(dir = %dir.display(), %error, "removing a deleted artifact's files failed");
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "ok": true, "artifact_id": id.to_string() }),
    ))
}

async fn sha256_file(path: &Path) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(buffer.get(..n).unwrap_or_default());
    }
    Ok(crate::auth::hex(&hasher.finalize()))
}

fn plain_error(status: StatusCode, message: &str) -> Response {
    crate::http_util::error(status, message)
}

/// The artifact store and the artifact id a signed blob URL names, or 404.
fn blob_target(shared: &Shared, id: Option<u64>) -> Result<(&ArtifactStore, u64), Response> {
    let store = shared.artifacts.as_ref().ok_or_else(|| {
        plain_error(
            StatusCode::NOT_FOUND,
            "this server does not store artifacts",
        )
    })?;
    let id = id.ok_or_else(|| plain_error(StatusCode::NOT_FOUND, "no such artifact"))?;
    Ok((store, id))
}

/// `PUT /_apis/artifacts/upload/{id}?exp&sig[&comp=block&blockid=…|&comp=blocklist]`.
pub(crate) async fn put_blob(
    shared: &Shared,
    id: Option<u64>,
    request: Request<Incoming>,
) -> Handled {
    let (store, id) = blob_target(shared, id)?;
    let query = query(request.uri());
    shared.check_signature(UrlPurpose::ArtifactUpload, id, &query)?;
    let dir = store.dir(id);
    match query.get("comp").map(String::as_str) {
        Some("blocklist") => {
            let bytes = crate::http_util::read_small(
                request.into_body(),
                crate::v2::MAX_BLOCK_LIST,
                shared.body_stall_timeout,
            )
            .await?;
            let xml = String::from_utf8_lossy(&bytes);
            let ids = crate::v2::parse_block_list(&xml)
                .ok_or_else(|| plain_error(StatusCode::BAD_REQUEST, "malformed block list XML"))?;
            assemble(store, id, &dir, &ids).await?;
        }
        Some("block") => {
            let block_id = query
                .get("blockid")
                .filter(|b| !b.is_empty() && b.len() <= 1024)
                .ok_or_else(|| {
                    plain_error(StatusCode::BAD_REQUEST, "missing or oversized blockid")
                })?
                .clone();
            let len = reserve(shared, store, id, request.headers())?;
            let number = {
                let mut state = store.lock();
                let artifact = open_upload(&mut state, id)?;
                let number = artifact.next_block;
                artifact.next_block += 1;
                number
            };
            let path = dir.join(format!("block-{number}"));
            if let Err(response) =
                write_body(&path, len, request.into_body(), shared.body_stall_timeout).await
            {
                release(store, id, len);
                return Err(response);
            }
            let mut state = store.lock();
            let artifact = open_upload(&mut state, id)?;
            if let Some((_, old_len)) = artifact.blocks.insert(block_id, (number, len)) {
                artifact.staged = artifact.staged.saturating_sub(old_len);
            }
        }
        None => {
            let len = reserve(shared, store, id, request.headers())?;
            let path = dir.join("content");
            if let Err(response) =
                write_body(&path, len, request.into_body(), shared.body_stall_timeout).await
            {
                release(store, id, len);
                return Err(response);
            }
            let mut state = store.lock();
            open_upload(&mut state, id)?.content = Some(len);
        }
        Some(_) => {
            return Err(plain_error(
                StatusCode::BAD_REQUEST,
                "unsupported comp parameter",
            ));
        }
    }
    let mut response = crate::http_util::empty(StatusCode::CREATED);
    if let Ok(value) = header::HeaderValue::from_str(&format!("runnel-artifact-{id}")) {
        response.headers_mut().insert("x-ms-request-id", value);
    }
    response.headers_mut().insert(
        "x-ms-version",
        header::HeaderValue::from_static("2024-08-04"),
    );
    Ok(response)
}

fn open_upload(state: &mut State, id: u64) -> Result<&mut Artifact, Response> {
    match state.artifacts.get_mut(&id) {
        Some(artifact) if artifact.finalized.is_none() => Ok(artifact),
        Some(_) => Err(plain_error(
            StatusCode::CONFLICT,
            "the artifact is already finalized",
        )),
        None => Err(plain_error(
            StatusCode::NOT_FOUND,
            "no such artifact upload",
        )),
    }
}

/// Checks the body's length against the per-request and per-artifact limits and counts it.
fn reserve(
    shared: &Shared,
    store: &ArtifactStore,
    id: u64,
    headers: &http::HeaderMap,
) -> Result<u64, Response> {
    let len = content_length(headers)
        .ok_or_else(|| plain_error(StatusCode::LENGTH_REQUIRED, "Content-Length is required"))?;
    if len > shared.max_upload_body {
        return Err(plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body is larger than the server allows",
        ));
    }
    let mut state = store.lock();
    let artifact = open_upload(&mut state, id)?;
    if artifact.staged.saturating_add(len) > store.max_size {
        return Err(plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the artifact is larger than the server allows",
        ));
    }
    artifact.staged += len;
    Ok(len)
}

fn release(store: &ArtifactStore, id: u64, len: u64) {
    if let Some(artifact) = store.lock().artifacts.get_mut(&id) {
        artifact.staged = artifact.staged.saturating_sub(len);
    }
}

/// Writes exactly `len` bytes of `body` to `path`; a short or long body is refused.
async fn write_body(
    path: &Path,
    len: u64,
    body: Incoming,
    stall: std::time::Duration,
) -> Result<(), Response> {
    let io_error = |e: std::io::Error| {
        tracing::error!(path = %path.display(), error = %e, "writing an artifact block failed");
        plain_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "writing the upload failed",
        )
    };
    let mut file = tokio::fs::File::create(path).await.map_err(io_error)?;
    let mut stream = body_stream(body, stall);
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| plain_error(StatusCode::BAD_REQUEST, "the request body was cut short"))?;
        written += chunk.len() as u64;
        if written > len {
            return Err(plain_error(
                StatusCode::BAD_REQUEST,
                "body is longer than its Content-Length",
            ));
        }
        file.write_all(&chunk).await.map_err(io_error)?;
    }
    if written != len {
        return Err(plain_error(
            StatusCode::BAD_REQUEST,
            "body is shorter than its Content-Length",
        ));
    }
    file.flush().await.map_err(io_error)?;
    Ok(())
}

/// Joins the staged blocks in the block list's order into `content`.
async fn assemble(
    store: &ArtifactStore,
    id: u64,
    dir: &Path,
    ids: &[String],
) -> Result<(), Response> {
    let numbers: Vec<u64> = {
        let mut state = store.lock();
        let artifact = open_upload(&mut state, id)?;
        let mut size = 0u64;
        let mut numbers = Vec::with_capacity(ids.len());
        for block in ids {
            let (number, len) = artifact.blocks.get(block).ok_or_else(|| {
                plain_error(
                    StatusCode::BAD_REQUEST,
                    "the block list names a block that was not uploaded",
                )
            })?;
            // A list may name one block many times: the artifact is what the list adds up
            // to, not what was staged, so that is what the limit applies to.
            size = size.saturating_add(*len);
            numbers.push(*number);
        }
        if size > store.max_size {
            return Err(plain_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the block list assembles {size} bytes; the server allows {} per artifact",
                    store.max_size
                ),
            ));
        }
        numbers
    };
    let target = dir.join("content");
    let io_error = |e: std::io::Error| {
        tracing::error!(path = %target.display(), error = %e, "assembling an artifact failed");
        plain_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "assembling the upload failed",
        )
    };
    let mut out = tokio::fs::File::create(&target).await.map_err(io_error)?;
    let mut total = 0u64;
    for number in &numbers {
        let mut block = tokio::fs::File::open(dir.join(format!("block-{number}")))
            .await
            .map_err(io_error)?;
        total += tokio::io::copy(&mut block, &mut out)
            .await
            .map_err(io_error)?;
    }
    out.flush().await.map_err(io_error)?;
    let mut state = store.lock();
    let artifact = open_upload(&mut state, id)?;
    artifact.content = Some(total);
    Ok(())
}

/// `GET /_apis/artifacts/download/{id}?exp&sig`: the zip, with the headers the client uses to
/// decide to unzip it.
pub(crate) async fn download(
    shared: &Shared,
    id: Option<u64>,
    request: Request<Incoming>,
) -> Handled {
    let (store, id) = blob_target(shared, id)?;
    shared.check_signature(UrlPurpose::ArtifactDownload, id, &query(request.uri()))?;
    let (name, size) = {
        let state = store.lock();
        let artifact = state
            .artifacts
            .get(&id)
            .ok_or_else(|| plain_error(StatusCode::NOT_FOUND, "no such artifact"))?;
        let finalized = artifact
            .finalized
            .as_ref()
            .ok_or_else(|| plain_error(StatusCode::NOT_FOUND, "the artifact is not finalized"))?;
        (artifact.name.clone(), finalized.size)
    };
    let path = store.dir(id).join("content");
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| internal("opening the artifact failed", &path, &e))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)
        .map(|chunk| chunk.map(hyper::body::Frame::data));
    let body: Body = http_body_util::BodyExt::boxed_unsync(http_body_util::StreamBody::new(stream));
    let mut response = http::Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/zip"),
    );
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(size));
    let file_name: String =
        form_urlencoded::byte_serialize(format!("{name}.zip").as_bytes()).collect();
    if let Ok(value) =
        header::HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{file_name}"))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(crate::clock::rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            crate::clock::rfc3339_millis(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            crate::clock::rfc3339_millis(1_735_689_599_999),
            "2024-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn artifact_names() {
        for (name, ok) in [
            ("report", true),
            ("my report 1.0", true),
            ("", false),
            ("..", false),
            ("a/b", false),
            ("a\\b", false),
            ("a:b", false),
            ("line\nbreak", false),
        ] {
            assert_eq!(check_name(name).is_ok(), ok, "{name:?}");
        }
    }
}
