//! [`S3Store`]: committed cache entries in an S3-compatible bucket, so every runner host of a
//! fleet (and every process on one host) shares one cache.
//!
//! Uploads in progress are staged in a local [`DiskStore`] (chunks arrive out of order and
//! concurrently; S3 objects cannot be written at offsets). Commit turns the staged upload into
//! objects in two steps, data first:
//! 1. `<prefix>data/<entry id>`: the archive (one PUT, or a multipart upload past [`PART_SIZE`]);
//! 2. `<prefix>entries/<repo hash>/ref-<ref hash>/<version hash>/<escaped key>~`: the commit
//!    marker, a small JSON record, written with `If-None-Match: *` so that of several hosts
//!    committing the same (repository, ref, key, version) exactly one wins and a committed entry
//!    never changes. Entries without a ref (committed before scopes existed, or by an unscoped
//!    client) have no `ref-<ref hash>/` level: the layout before scopes, read as it was.
//!
//! Lookups (`lookup`: scope by scope, as `select_entry`) only ever start from markers, so an
//! archive whose marker was never written (a crash mid-commit, a lost race) is never served. The escaped key keeps GitHub's prefix matching a
//! plain `ListObjectsV2` by prefix: escaping is byte-wise (a prefix of a key escapes to a prefix
//! of its escaping) and the result is cut into 200-byte path segments for file-system-backed
//! servers. Entry ids are random (below 2^53, as JavaScript clients parse them as numbers).
//!
//! No eviction on the way: use the bucket's lifecycle rules, or `runnel cache prune` (`manage`:
//! listing, removal and pruning by age and total size, oldest first).
//!
//! Owns: the bucket layout and the S3 requests (signed by `rusty-s3`, sent with hyper; multipart
//! uploads in `multipart`). Must not: know HTTP of the cache protocols or tokens.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::{JobIdentity, RefScope, hex};
use crate::disk::{DiskStore, DiskStoreConfig};
use crate::store::{ByteStream, Entry, EntryId, Store, StoreError};

mod lookup;
mod manage;
mod multipart;

/// Archives up to this size go up in one PUT; larger ones as multipart parts of this size.
pub const PART_SIZE: usize = 32 << 20;

/// How long a signed request stays valid (it is sent at once).
const SIGNATURE_TTL: Duration = Duration::from_secs(15 * 60);

/// Bytes of an escaped key per object-name segment (file systems cap a name at 255 bytes).
const SEGMENT: usize = 200;

/// Settings of an [`S3Store`].
#[derive(Clone, Debug)]
pub struct S3StoreConfig {
    /// The server, e.g. `https://s3.example.com` or `http://127.0.0.1:7070`; path-style URLs
    /// (`<endpoint>/<bucket>/<object>`) are used, which every S3-compatible server accepts.
    pub endpoint: String,
    /// The bucket; it must exist.
    pub bucket: String,
    /// The signing region (`us-east-1` for most self-hosted servers).
    pub region: String,
    /// Prepended to every object name, e.g. `runnel-cache/`; empty for the bucket's root.
    pub prefix: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Local directory for uploads in progress.
    pub staging_dir: PathBuf,
    /// Largest archive accepted.
    pub max_entry_size: u64,
}

/// The commit marker's content.
#[derive(Serialize, Deserialize)]
struct Marker {
    id: EntryId,
    repository: String,
    /// Absent in markers written before scopes existed.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    git_ref: Option<String>,
    key: String,
    version: String,
    size: u64,
    created_seq: u64,
    created_at_ms: u64,
}

impl Marker {
    fn entry(self) -> Entry {
        Entry {
            id: self.id,
            repository: self.repository,
            git_ref: self.git_ref,
            key: self.key,
            version: self.version,
            size: self.size,
            created_seq: self.created_seq,
            created_at_ms: self.created_at_ms,
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, io::Error>;
type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// Why a request to the S3 server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3Error {
    /// The endpoint is not an http(s) URL with a host.
    #[error("invalid S3 endpoint {endpoint:?}")]
    Endpoint {
        /// As configured.
        endpoint: String,
    },
    /// The system's root certificates could not be loaded.
    #[error("loading the system's root certificates")]
    Roots(#[source] io::Error),
    /// The connection or the exchange failed.
    #[error("sending the request")]
    Transport(#[source] hyper_util::client::legacy::Error),
    /// The response body could not be read.
    #[error("reading the response")]
    Read(#[source] hyper::Error),
    /// The server answered with an error status.
    #[error("the server answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The start of the error document S3 servers send.
        body: String,
    },
    /// A response body was not what S3 sends.
    #[error("unexpected response: {detail}")]
    Response {
        /// What could not be parsed.
        detail: String,
    },
}

fn remote(op: &'static str, object: &str) -> impl FnOnce(S3Error) -> StoreError {
    let object = object.to_owned();
    move |source| StoreError::Remote { op, object, source }
}

/// Committed entries in an S3 bucket; see the module docs for the layout and guarantees.
pub struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    prefix: String,
    client: HttpClient,
    staging: DiskStore,
    max_entry_size: u64,
}

impl S3Store {
    /// Opens the staging directory and prepares the client; checks that the bucket answers.
    pub async fn open(config: S3StoreConfig) -> Result<Self, StoreError> {
        let endpoint_error = || {
            remote("opening", &config.bucket)(S3Error::Endpoint {
                endpoint: config.endpoint.clone(),
            })
        };
        let url: url::Url = config.endpoint.parse().map_err(|_| endpoint_error())?;
        let bucket = Bucket::new(
            url,
            UrlStyle::Path,
            config.bucket.clone(),
            config.region.clone(),
        )
        .map_err(|_| endpoint_error())?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = {
            use hyper_rustls::ConfigBuilderExt as _;
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| {
                    remote("opening", &config.bucket)(S3Error::Roots(io::Error::other(e)))
                })?
                .with_native_roots()
                .map_err(|e| remote("opening", &config.bucket)(S3Error::Roots(e)))?
                .with_no_client_auth()
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        // Staged uploads are removed right after they reach the bucket, so the staging store's
        // own eviction must never pick one that is still being sent: no limit there. Uploads
        // in progress may hold as much as the largest entry.
        let staging = DiskStore::open(DiskStoreConfig {
            upload_limit: config.max_entry_size,
            ..DiskStoreConfig::new(config.staging_dir, u64::MAX)
        })
        .await?;
        let store = Self {
            bucket,
            credentials: Credentials::new(config.access_key, config.secret_key),
            prefix: config.prefix,
            client,
            staging,
            max_entry_size: config.max_entry_size,
        };
        // Fails early on a wrong endpoint, bucket or key instead of at the first job's save.
        let probe = store.name("entries/");
        store.list_objects(&probe).await?;
        Ok(store)
    }

    fn name(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    fn data_name(&self, id: EntryId) -> String {
        self.name(&format!("data/{id}"))
    }

    fn repository_dir(&self, repository: &str) -> String {
        self.name(&format!("entries/{}/", short_hash(repository)))
    }

    /// The marker's name without its final `~`: also the listing prefix of keys starting with
    /// `key` in the scope `git_ref`.
    fn marker_stem(
        &self,
        repository: &str,
        git_ref: Option<&str>,
        version: &str,
        key: &str,
    ) -> String {
        // `ref-` is not hex, so the unscoped layout's version level never lists scoped markers.
        let scope = git_ref.map_or_else(String::new, |r| format!("ref-{}/", short_hash(r)));
        format!(
            "{}{scope}{}/{}",
            self.repository_dir(repository),
            short_hash(version),
            escape_key(key)
        )
    }

    fn marker_name(
        &self,
        repository: &str,
        git_ref: Option<&str>,
        version: &str,
        key: &str,
    ) -> String {
        format!("{}~", self.marker_stem(repository, git_ref, version, key))
    }

    async fn send(
        &self,
        method: Method,
        url: url::Url,
        headers: &[(&str, &str)],
        body: Body,
        content_length: Option<u64>,
    ) -> Result<http::Response<hyper::body::Incoming>, S3Error> {
        let mut request = Request::builder().method(method).uri(url.as_str());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(len) = content_length {
            request = request.header(http::header::CONTENT_LENGTH, len);
        }
        let request = request.body(body).map_err(|e| S3Error::Response {
            detail: format!("building the request: {e}"),
        })?;
        self.client
            .request(request)
            .await
            .map_err(S3Error::Transport)
    }

    /// Sends and reads the whole answer; any status but 2xx is an error.
    async fn exchange(
        &self,
        method: Method,
        url: url::Url,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(http::HeaderMap, Bytes), S3Error> {
        let len = body.len() as u64;
        let response = self
            .send(method, url, headers, full(body), Some(len))
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(S3Error::Read)?
            .to_bytes();
        if !status.is_success() {
            return Err(status_error(status, &bytes));
        }
        Ok((headers, bytes))
    }

    async fn get_small(&self, object: &str) -> Result<Option<Bytes>, S3Error> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), object)
            .sign(SIGNATURE_TTL);
        match self.exchange(Method::GET, url, &[], Bytes::new()).await {
            Ok((_, body)) => Ok(Some(body)),
            Err(S3Error::Status { status, .. }) if status == StatusCode::NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, object: &str) -> Result<(), S3Error> {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), object)
            .sign(SIGNATURE_TTL);
        match self.exchange(Method::DELETE, url, &[], Bytes::new()).await {
            Err(S3Error::Status { status, .. }) if status == StatusCode::NOT_FOUND => Ok(()),
            other => other.map(drop),
        }
    }

    /// Every object under `prefix`, as (name, last-modified) pairs.
    async fn list_objects(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
            action.with_prefix(prefix);
            if let Some(token) = &token {
                action.with_continuation_token(token.as_str());
            }
            let url = action.sign(SIGNATURE_TTL);
            let (_, body) = self
                .exchange(Method::GET, url, &[], Bytes::new())
                .await
                .map_err(remote("listing", prefix))?;
            let text = String::from_utf8_lossy(&body);
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&text).map_err(|e| {
                remote("listing", prefix)(S3Error::Response {
                    detail: e.to_string(),
                })
            })?;
            objects.extend(
                page.contents
                    .into_iter()
                    .map(|c| (c.key, c.last_modified.unwrap_or_default())),
            );
            match page.next_continuation_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(objects),
            }
        }
    }

    async fn read_marker(&self, object: &str) -> Result<Option<Marker>, StoreError> {
        let Some(body) = self
            .get_small(object)
            .await
            .map_err(remote("reading", object))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&body).map(Some).map_err(|e| {
            remote("reading", object)(S3Error::Response {
                detail: format!("commit marker: {e}"),
            })
        })
    }

    /// Writes the marker unless one exists; `false` when another writer won.
    async fn put_marker(&self, object: &str, marker: &Marker) -> Result<bool, StoreError> {
        let body = serde_json::to_vec(marker).map_err(|e| {
            remote("committing", object)(S3Error::Response {
                detail: e.to_string(),
            })
        })?;
        let mut action = self.bucket.put_object(Some(&self.credentials), object);
        action.headers_mut().insert("if-none-match", "*");
        let url = action.sign(SIGNATURE_TTL);
        match self
            .exchange(
                Method::PUT,
                url,
                &[("if-none-match", "*"), ("content-type", "application/json")],
                Bytes::from(body),
            )
            .await
        {
            Ok(_) => Ok(true),
            // 412: the marker exists; 409: a concurrent conditional write is in flight (AWS).
            Err(S3Error::Status { status, .. })
                if status == StatusCode::PRECONDITION_FAILED || status == StatusCode::CONFLICT =>
            {
                Ok(false)
            }
            Err(e) => Err(remote("committing", object)(e)),
        }
    }

    fn check_size(&self, size: u64) -> Result<(), StoreError> {
        if size > self.max_entry_size {
            return Err(StoreError::TooLarge {
                size,
                limit: self.max_entry_size,
            });
        }
        Ok(())
    }
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

fn status_error(status: StatusCode, body: &[u8]) -> S3Error {
    let text = String::from_utf8_lossy(body);
    S3Error::Status {
        status,
        body: text.chars().take(300).collect(),
    }
}

/// The first 32 hex digits of SHA-256: fixed-length, file-name-safe, case-distinct.
fn short_hash(text: &str) -> String {
    let mut digest = hex(&Sha256::digest(text.as_bytes()));
    digest.truncate(32);
    digest
}

/// Byte-wise escaping (ASCII letters, digits, `-`, `_`, `.` kept; all else `%XX`) cut into
/// [`SEGMENT`]-byte segments joined by `/`. A prefix of a key maps to a prefix of its escaping.
fn escape_key(key: &str) -> String {
    let mut escaped = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    let mut out = String::with_capacity(escaped.len() + escaped.len() / SEGMENT);
    for (i, c) in escaped.chars().enumerate() {
        if i > 0 && i % SEGMENT == 0 {
            out.push('/');
        }
        out.push(c);
    }
    out
}

/// `2024-05-01T10:20:30.123Z` → `2024-05-01T10:20:30`: servers differ in sub-second precision.
fn second(modified: &str) -> &str {
    modified.get(..19).unwrap_or(modified)
}

fn random_u64() -> Result<u64, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io {
        op: "drawing a random entry id",
        path: PathBuf::new(),
        source: io::Error::other(e),
    })?;
    Ok(u64::from_le_bytes(bytes))
}

#[async_trait]
impl Store for S3Store {
    async fn lookup(
        &self,
        repository: &str,
        refs: Option<&RefScope>,
        keys: &[String],
        version: &str,
    ) -> Result<Option<Entry>, StoreError> {
        self.lookup_by_scope(repository, refs, keys, version).await
    }

    async fn list(&self, repository: &str, key: Option<&str>) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        for (name, _) in self.list_objects(&self.repository_dir(repository)).await? {
            if !name.ends_with('~') {
                continue;
            }
            if let Some(marker) = self.read_marker(&name).await? {
                let entry = marker.entry();
                if entry.repository == repository && key.is_none_or(|k| entry.key == k) {
                    entries.push(entry);
                }
            }
        }
        entries.sort_by_key(|entry| entry.created_seq);
        Ok(entries)
    }

    async fn reserve(
        &self,
        owner: &JobIdentity,
        key: &str,
        version: &str,
        size_hint: Option<u64>,
    ) -> Result<EntryId, StoreError> {
        if let Some(size) = size_hint {
            self.check_size(size)?;
        }
        // Early refusal only; the conditional marker write at commit is what decides.
        let marker = self.marker_name(&owner.repository, owner.write_ref(), version, key);
        if self.read_marker(&marker).await?.is_some() {
            return Err(StoreError::Conflict {
                key: key.to_owned(),
                version: version.to_owned(),
            });
        }
        self.staging.reserve(owner, key, version, None).await
    }

    async fn find_upload(
        &self,
        owner: &JobIdentity,
        key: &str,
        version: &str,
    ) -> Result<Option<EntryId>, StoreError> {
        self.staging.find_upload(owner, key, version).await
    }

    async fn upload_owner(&self, id: EntryId) -> Result<Option<JobIdentity>, StoreError> {
        self.staging.upload_owner(id).await
    }

    async fn write_range(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        offset: u64,
        len: u64,
        body: ByteStream,
    ) -> Result<(), StoreError> {
        let end = StoreError::range_end(id, offset, len)?;
        self.check_size(end)?;
        self.staging.write_range(owner, id, offset, len, body).await
    }

    async fn write_block(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        block_id: &str,
        len: u64,
        body: ByteStream,
    ) -> Result<(), StoreError> {
        self.check_size(len)?;
        self.staging
            .write_block(owner, id, block_id, len, body)
            .await
    }

    async fn put_block_list(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        block_ids: &[String],
    ) -> Result<(), StoreError> {
        self.staging.put_block_list(owner, id, block_ids).await
    }

    async fn commit(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        size: u64,
    ) -> Result<Entry, StoreError> {
        self.check_size(size)?;
        let staged = self.staging.commit(owner, id, size).await?;
        let result = async {
            let (_, archive) = self.staging.read(staged.id).await?;
            // Below 2^53 and never 0: JavaScript clients hold ids as doubles.
            let entry_id = (random_u64()? >> 11).max(1);
            let data = self.data_name(entry_id);
            self.upload(&data, archive).await?;
            let created_at_ms = crate::clock::now_ms();
            let marker = Marker {
                id: entry_id,
                repository: owner.repository.clone(),
                git_ref: owner.write_ref().map(str::to_owned),
                key: staged.key.clone(),
                version: staged.version.clone(),
                size,
                // Milliseconds first so that later commits sort later across hosts; random low
                // bits break ties between hosts committing in the same millisecond.
                created_seq: (created_at_ms << 12) | (random_u64()? & 0xfff),
                created_at_ms,
            };
            let object = self.marker_name(
                &owner.repository,
                owner.write_ref(),
                &staged.version,
                &staged.key,
            );
            if self.put_marker(&object, &marker).await? {
                tracing::debug!(id = entry_id, key = %marker.key, size, "committed cache entry to S3");
                Ok(marker.entry())
            } else {
                self.delete(&data).await.map_err(remote("removing", &data))?;
                Err(StoreError::Conflict {
                    key: staged.key.clone(),
                    version: staged.version.clone(),
                })
            }
        }
        .await;
        if let Err(e) = self.staging.remove(&[staged.id]).await {
            tracing::warn!(id = staged.id, error = %e, "removing a staged cache upload");
        }
        result
    }

    async fn prune(&self, rules: crate::store::PruneRules) -> Result<Vec<Entry>, StoreError> {
        S3Store::prune(self, rules).await
    }

    async fn expire_uploads(&self) -> Result<usize, StoreError> {
        self.staging.expire_uploads().await
    }

    async fn read(&self, id: EntryId) -> Result<(u64, ByteStream), StoreError> {
        let object = self.data_name(id);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &object)
            .sign(SIGNATURE_TTL);
        let response = self
            .send(Method::GET, url, &[], full(Bytes::new()), None)
            .await
            .map_err(remote("downloading", &object))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Err(StoreError::UnknownEntry { id });
        }
        if !status.is_success() {
            let body = response.into_body().collect().await.map(|b| b.to_bytes());
            return Err(remote("downloading", &object)(status_error(
                status,
                &body.unwrap_or_default(),
            )));
        }
        let size = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                remote("downloading", &object)(S3Error::Response {
                    detail: "no Content-Length".to_owned(),
                })
            })?;
        let stream = response
            .into_body()
            .into_data_stream()
            .map_err(io::Error::other);
        Ok((size, Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::escape_key;

    #[test]
    fn escaping_keeps_prefixes_and_bounds_segments() {
        let keys = ["Linux-cargo-", "Linux-cargo-abc/../x", "ünï cödé,~%", "."];
        for key in keys {
            for cut in (0..=key.len()).filter(|i| key.is_char_boundary(*i)) {
                let (prefix, whole) = (escape_key(&key[..cut]), escape_key(key));
                assert!(whole.starts_with(&prefix), "{key:?} at {cut}");
            }
        }
        let long = "k".repeat(450);
        let escaped = escape_key(&long);
        assert!(escaped.split('/').all(|segment| segment.len() <= 200));
        assert!(escaped.starts_with(&escape_key(&long[..200])));
        assert_eq!(escape_key("a/b~"), "a%2Fb%7E");
    }
}
