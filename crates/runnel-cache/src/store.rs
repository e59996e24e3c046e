//! The storage contract behind both protocols ([`Store`]) and GitHub's key matching
//! ([`select_entry`]), shared by every store implementation.
//!
//! Owns: the entry model, the reserve → write → commit life cycle, and its errors. Must not:
//! know HTTP, tokens or URLs; the server maps [`StoreError`] to status codes.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::auth::{JobIdentity, RefScope};

/// An entry id: assigned at reserve, never reused, and the only thing that names a file.
pub type EntryId = u64;

/// A request or archive body as a stream of chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// A committed, immutable cache entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's id.
    pub id: EntryId,
    /// The repository it belongs to; only jobs of that repository see it.
    pub repository: String,
    /// The git ref of the job that saved it (its scope, see [`RefScope`]); `None` for entries
    /// saved before scopes existed or by an unscoped client, which every job of the
    /// repository reads.
    pub git_ref: Option<String>,
    /// The key it was saved under, exactly as sent.
    pub key: String,
    /// The client's opaque version string (a hash of paths and compression).
    pub version: String,
    /// Archive size in bytes.
    pub size: u64,
    /// Commit order: larger is newer. Restore-key ties are broken by it.
    pub created_seq: u64,
    /// Commit time, milliseconds since the Unix epoch (for listings).
    pub created_at_ms: u64,
}

/// Why a store operation failed. The server turns each variant into a distinct HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The (key, version) is already committed, or another job is uploading it.
    #[error(
        "cache entry {key:?} (version {version}) already exists or is being saved by another job"
    )]
    Conflict {
        /// The requested key.
        key: String,
        /// The requested version.
        version: String,
    },
    /// No upload in progress with that id for this job.
    #[error("no upload {id} in progress for this job")]
    UnknownUpload {
        /// The id from the request.
        id: EntryId,
    },
    /// No committed entry with that id.
    #[error("no cache entry {id}")]
    UnknownEntry {
        /// The id from the request.
        id: EntryId,
    },
    /// The archive would not fit in the store at all.
    #[error("cache of {size} bytes exceeds the store's size limit of {limit} bytes")]
    TooLarge {
        /// Requested or reached size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The uploads in progress would hold more bytes than the store accepts at once (uploads
    /// nobody commits must not fill the disk); space frees as they commit or expire.
    #[error(
        "uploads in progress hold {in_progress} of the {limit} bytes the cache accepts at once; \
         this upload needs {requested}: try again later"
    )]
    UploadSpace {
        /// What this upload would hold.
        requested: u64,
        /// What the other uploads hold.
        in_progress: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many uploads are open, in this job or in the whole store.
    #[error("{scope} already has {open} cache uploads in progress (at most {limit})")]
    TooManyUploads {
        /// Uploads open.
        open: usize,
        /// The cap.
        limit: usize,
        /// "this job" or "the cache".
        scope: &'static str,
    },
    /// A write outside what the upload allows, or a body whose length differs from its range.
    #[error("upload {id}: bad range at offset {offset}: {reason}")]
    BadRange {
        /// The upload.
        id: EntryId,
        /// Where the write started.
        offset: u64,
        /// What was wrong.
        reason: &'static str,
    },
    /// Commit of an upload that does not cover exactly `0..size`.
    #[error("upload {id} is incomplete: {reason} (commit size {size})")]
    Incomplete {
        /// The upload.
        id: EntryId,
        /// The size the client committed.
        size: u64,
        /// What is missing or extra.
        reason: String,
    },
    /// Commit while a chunk of the same upload is still being written.
    #[error("upload {id} still has chunks in flight")]
    Busy {
        /// The upload.
        id: EntryId,
    },
    /// The v2 block list names a block that was never uploaded.
    #[error("upload {id}: block {block_id:?} was not uploaded")]
    UnknownBlock {
        /// The upload.
        id: EntryId,
        /// The missing block id.
        block_id: String,
    },
    /// The request body failed while it was being read.
    #[error("reading the request body of upload {id}")]
    Body {
        /// The upload.
        id: EntryId,
        /// The transport error.
        #[source]
        source: io::Error,
    },
    /// A file-system call failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A request to the S3 server of an [`crate::S3Store`] failed.
    #[error("{op} S3 object {object}")]
    Remote {
        /// What was being done.
        op: &'static str,
        /// The object (or listing prefix).
        object: String,
        /// The cause.
        #[source]
        source: crate::s3::S3Error,
    },
    /// The on-disk index could not be read or written as JSON.
    #[error("cache index {path}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// The end of a write of `len` bytes at `offset`, or `BadRange` when it overflows.
    pub(crate) fn range_end(id: EntryId, offset: u64, len: u64) -> Result<u64, StoreError> {
        offset.checked_add(len).ok_or(StoreError::BadRange {
            id,
            offset,
            reason: "range overflows",
        })
    }
}

/// What [`Store::prune`] removes (`runnel cache prune`, and the server's sweep of
/// `cache.retention` and `cache.repo_size_limit`); the rules add up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneRules {
    /// Entries not used for longer than this.
    pub older_than: Option<Duration>,
    /// Then each repository's least-recently-used entries until its total is at most this
    /// many bytes (`cache.repo_size_limit`).
    pub max_repo_size: Option<u64>,
    /// Then least-recently-used entries until the total is at most this many bytes.
    pub max_size: Option<u64>,
}

impl PruneRules {
    /// True when the rules select nothing whatever the entries.
    pub fn is_empty(&self) -> bool {
        self.older_than.is_none() && self.max_repo_size.is_none() && self.max_size.is_none()
    }
}

/// Where cache archives live. Uploads become visible to [`Store::lookup`] and [`Store::read`]
/// only after [`Store::commit`] succeeded, and committed entries never change.
#[async_trait]
pub trait Store: Send + Sync {
    /// GitHub's matching over the committed entries of `repository` that `refs` may read,
    /// scope by scope (see [`select_entry`]).
    async fn lookup(
        &self,
        repository: &str,
        refs: Option<&RefScope>,
        keys: &[String],
        version: &str,
    ) -> Result<Option<Entry>, StoreError>;

    /// Committed entries of `repository`, optionally only those with exactly `key`.
    async fn list(&self, repository: &str, key: Option<&str>) -> Result<Vec<Entry>, StoreError>;

    /// Starts an upload owned by `owner`, to be committed in its ref's scope. Fails with
    /// [`StoreError::Conflict`] when the (repository, ref, key, version) is committed or being
    /// uploaded by a live reservation.
    async fn reserve(
        &self,
        owner: &JobIdentity,
        key: &str,
        version: &str,
        size_hint: Option<u64>,
    ) -> Result<EntryId, StoreError>;

    /// The upload `owner` reserved for (key, version), if still in progress (v2 finalizes by key).
    async fn find_upload(
        &self,
        owner: &JobIdentity,
        key: &str,
        version: &str,
    ) -> Result<Option<EntryId>, StoreError>;

    /// The job that reserved upload `id` (v2 blob uploads carry a signed URL, not a token).
    async fn upload_owner(&self, id: EntryId) -> Result<Option<JobIdentity>, StoreError>;

    /// Writes exactly `len` bytes of `body` at `offset` of upload `id`. Chunks may arrive
    /// concurrently and out of order.
    async fn write_range(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        offset: u64,
        len: u64,
        body: ByteStream,
    ) -> Result<(), StoreError>;

    /// Stores one v2 block (exactly `len` bytes) under the client's `block_id`.
    async fn write_block(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        block_id: &str,
        len: u64,
        body: ByteStream,
    ) -> Result<(), StoreError>;

    /// Assembles the v2 blocks in `block_ids` order into the upload's content.
    async fn put_block_list(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        block_ids: &[String],
    ) -> Result<(), StoreError>;

    /// Makes the upload an entry. It must cover exactly `0..size`.
    async fn commit(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        size: u64,
    ) -> Result<Entry, StoreError>;

    /// The archive of a committed entry and its length; counts as a use for eviction.
    async fn read(&self, id: EntryId) -> Result<(u64, ByteStream), StoreError>;

    /// Drops the uploads idle for longer than the store's reservation TTL, with their files;
    /// returns how many. The server calls it on a timer.
    async fn expire_uploads(&self) -> Result<usize, StoreError>;

    /// Removes the committed entries `rules` select; returns them. The server calls it on a
    /// timer with `cache.retention` and `cache.repo_size_limit`.
    async fn prune(&self, rules: PruneRules) -> Result<Vec<Entry>, StoreError>;
}

/// GitHub's restore matching, scope by scope: the job's own ref, then each fallback ref
/// ([`RefScope::search_order`]), then the entries that have no ref (saved before scopes
/// existed: last, so they age out instead of outranking fresh entries); in each scope all keys
/// in order (the primary key first): an exact match of (key, version) wins, otherwise the
/// newest entry whose key starts with it. The first scope and key with any match decide. An
/// unscoped reader (`refs` is `None`) searches the entries without a ref only. `entries` must
/// already be the caller's repository's committed ones.
pub fn select_entry<'a>(
    entries: &'a [Entry],
    refs: Option<&RefScope>,
    keys: &[String],
    version: &str,
) -> Option<&'a Entry> {
    let scopes = RefScope::scopes_of(refs);
    scopes.into_iter().find_map(|scope| {
        let in_scope = entries
            .iter()
            .filter(move |entry| entry.git_ref.as_deref() == scope);
        match_keys(in_scope, keys, version)
    })
}

/// GitHub's key matching within one scope.
fn match_keys<'a>(
    entries: impl Iterator<Item = &'a Entry> + Clone,
    keys: &[String],
    version: &str,
) -> Option<&'a Entry> {
    let same_version = entries.filter(move |entry| entry.version == version);
    keys.iter().find_map(|key| {
        same_version
            .clone()
            .filter(|entry| entry.key == *key)
            .max_by_key(|entry| entry.created_seq)
            .or_else(|| {
                same_version
                    .clone()
                    .filter(|entry| entry.key.starts_with(key.as_str()))
                    .max_by_key(|entry| entry.created_seq)
            })
    })
}

#[cfg(test)]
mod tests;
