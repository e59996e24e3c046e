//! [`DiskStore`]: cache archives in a local directory, safely shared by several processes.
//!
//! Layout: `index.json` (committed entries; see [`index`] for the lock that orders its updates
//! across processes), `entries/<id>` (archives), and per process `uploads/<session>/<id>` and
//! `uploads/<session>/<id>.blocks/<sha256 of block id>` (in progress). Only ids, hashes and
//! random session names name files; keys live in the index only. An upload becomes an entry
//! by a rename and an index update, both under the index lock, so neither a crash nor another
//! process ever sees an entry without its archive; a crash leaves at worst orphan files, which
//! opening the store removes. Least-recently-used entries are evicted past the size limit.
//!
//! Two processes may upload the same key at once (reservations are per process); the first
//! commit wins and the second is refused as a conflict, so a committed entry never changes.
//! What uploads in progress may hold (bytes, count per job and in total) and when they expire
//! is [`uploads`]'s bookkeeping; entries are evicted by count as well as by size, so tiny or
//! empty entries cannot grow the index without bound.
//!
//! Owns: the directory. Must not: know HTTP or tokens.

mod index;
mod manage;
mod uploads;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::auth::{JobIdentity, RefScope, hex};
use crate::store::{ByteStream, Entry, EntryId, Store, StoreError, select_entry};

use index::{Index, IndexFiles, IndexLock, IndexRecord, Session};
pub use manage::EntryInfo;
use uploads::{Growth, Upload, UploadLimits, Uploads};

/// Settings of a [`DiskStore`].
#[derive(Clone, Debug)]
pub struct DiskStoreConfig {
    /// The directory; created if missing.
    pub dir: PathBuf,
    /// Total bytes of committed entries kept; older-used entries are evicted beyond it.
    pub size_limit: u64,
    /// A reservation idle this long expires: its files are removed and its key is free again
    /// (a job that died mid-upload must not block the key or hold disk space forever).
    pub reservation_ttl: Duration,
    /// Bytes all uploads in progress may hold together (announced sizes, ranges and blocks
    /// received); a reservation or write past it is refused until others commit or expire.
    pub upload_limit: u64,
    /// Uploads one job (one token) may have in progress at once.
    pub max_uploads_per_job: usize,
    /// Uploads in progress at once in this store (in this process).
    pub max_uploads: usize,
    /// Committed entries kept; the least recently used go first beyond it, as beyond
    /// `size_limit`.
    pub max_entries: usize,
}

impl DiskStoreConfig {
    /// `dir` with `size_limit` bytes for entries and as much again for uploads in progress, a
    /// 5-minute reservation timeout (as act's GC), 16 uploads per job and 256 in all, and
    /// 10,000 entries.
    pub fn new(dir: PathBuf, size_limit: u64) -> Self {
        Self {
            dir,
            size_limit,
            reservation_ttl: Duration::from_secs(300),
            upload_limit: size_limit,
            max_uploads_per_job: 16,
            max_uploads: 256,
            max_entries: 10_000,
        }
    }
}

struct State {
    /// The index as last read under the lock; re-read before every use.
    index: Index,
    /// This process's uploads in progress.
    uploads: Uploads,
}

/// Cache archives in a local directory; see the module docs for the layout and guarantees.
pub struct DiskStore {
    dir: PathBuf,
    size_limit: u64,
    max_entries: usize,
    files: IndexFiles,
    session: Session,
    state: Mutex<State>,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

async fn remove_file_if_present(path: &Path) -> Result<(), StoreError> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("removing", path)(e)),
        _ => Ok(()),
    }
}

impl DiskStore {
    /// Opens (or creates) the store in `config.dir`. Under the index lock: removes what dead
    /// processes left (their uploads, archives the index does not know), drops index entries
    /// whose archive is missing, and starts this process's upload session.
    pub async fn open(config: DiskStoreConfig) -> Result<Self, StoreError> {
        let dir = config.dir;
        let entries_dir = dir.join("entries");
        let uploads_dir = dir.join("uploads");
        for sub in [&entries_dir, &uploads_dir] {
            tokio::fs::create_dir_all(sub)
                .await
                .map_err(io_err("creating", sub))?;
        }
        // The index paths need the session name; the lock file does not.
        let lock = IndexFiles::new(&dir, "open").lock().await?;
        let (lock, session) = {
            let (dir, uploads) = (dir.clone(), uploads_dir.clone());
            tokio::task::spawn_blocking(move || {
                let session = index::sweep_and_start_session(&dir, &uploads, &lock);
                (lock, session)
            })
            .await
            .map_err(|join| io_err("cleaning up", &uploads_dir)(io::Error::other(join)))?
        };
        let session = session.map_err(io_err("cleaning up stale uploads in", &uploads_dir))?;
        let files = IndexFiles::new(&dir, &session.name);
        let mut index = Index::empty();
        files.load(&mut index).await?;

        let mut kept = std::collections::BTreeMap::new();
        for (id, record) in std::mem::take(&mut index.entries) {
            let path = entries_dir.join(id.to_string());
            match tokio::fs::metadata(&path).await {
                Ok(meta) if meta.len() == record.size => {
                    kept.insert(id, record);
                }
                _ => {
                    tracing::warn!(id, path = %path.display(), "dropping cache entry whose archive is missing")
                }
            }
        }
        index.entries = kept;
        let mut listing = tokio::fs::read_dir(&entries_dir)
            .await
            .map_err(io_err("listing", &entries_dir))?;
        while let Some(file) = listing
            .next_entry()
            .await
            .map_err(io_err("listing", &entries_dir))?
        {
            let known = file
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u64>().ok())
                .is_some_and(|id| index.entries.contains_key(&id));
            if !known {
                remove_file_if_present(&file.path()).await?;
            }
        }
        files.store(&index, &lock).await?;
        drop(lock);
        let limits = UploadLimits {
            bytes: config.upload_limit,
            per_job: config.max_uploads_per_job,
            total: config.max_uploads,
            ttl: config.reservation_ttl,
        };
        Ok(Self {
            dir,
            size_limit: config.size_limit,
            max_entries: config.max_entries.max(1),
            files,
            session,
            state: Mutex::new(State {
                index,
                uploads: Uploads::new(limits),
            }),
        })
    }

    fn entry_path(&self, id: EntryId) -> PathBuf {
        self.dir.join("entries").join(id.to_string())
    }

    fn upload_path(&self, id: EntryId) -> PathBuf {
        self.session.dir.join(id.to_string())
    }

    fn blocks_dir(&self, id: EntryId) -> PathBuf {
        self.session.dir.join(format!("{id}.blocks"))
    }

    fn block_path(&self, id: EntryId, block_id: &str) -> PathBuf {
        self.blocks_dir(id)
            .join(hex(&Sha256::digest(block_id.as_bytes())))
    }

    /// Takes the index lock and re-reads the index, so what other processes committed is seen.
    async fn lock_index(&self, state: &mut State) -> Result<IndexLock, StoreError> {
        let lock = self.files.lock().await?;
        self.files.load(&mut state.index).await?;
        Ok(lock)
    }

    /// Re-reads the index without the lock (renames make every version whole): for lookups.
    async fn refresh(&self, state: &mut State) -> Result<(), StoreError> {
        self.files.load(&mut state.index).await
    }

    /// Marks a write as started (so a commit refuses until it ended) after charging what it
    /// adds against the limits.
    async fn begin_write(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        growth: Growth,
    ) -> Result<(), StoreError> {
        let end = match growth {
            Growth::Range { end } => end,
            Growth::Block { len } | Growth::Assembly { len } => len,
        };
        if end > self.size_limit {
            return Err(StoreError::TooLarge {
                size: end,
                limit: self.size_limit,
            });
        }
        let mut state = self.state.lock().await;
        state.uploads.begin_write(owner, id, growth)
    }

    async fn end_write(&self, id: EntryId, range: Option<(u64, u64)>, block: Option<(&str, u64)>) {
        let mut state = self.state.lock().await;
        state.uploads.end_write(id, range, block);
    }

    /// Removes the files of uploads that are no longer in progress.
    async fn remove_upload_files(&self, ids: &[EntryId]) -> Result<(), StoreError> {
        for id in ids {
            remove_file_if_present(&self.upload_path(*id)).await?;
            let blocks = self.blocks_dir(*id);
            match tokio::fs::remove_dir_all(&blocks).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err("removing", &blocks)(e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Deletes least-recently-used entries of `index` until their total is at most `limit` bytes
/// and there are at most `max_entries`. Returns the records removed (their archives are the
/// caller's to delete).
fn evict(index: &mut Index, limit: u64, max_entries: usize) -> Vec<IndexRecord> {
    let mut total: u64 = index.entries.values().map(|r| r.size).sum();
    let mut evicted = Vec::new();
    while total > limit || index.entries.len() > max_entries {
        let Some(oldest) = index
            .entries
            .values()
            .min_by_key(|record| record.last_used)
            .map(|r| r.id)
        else {
            break;
        };
        if let Some(record) = index.entries.remove(&oldest) {
            total = total.saturating_sub(record.size);
            tracing::info!(id = oldest, key = %record.key, size = record.size, "evicting cache entry");
            evicted.push(record);
        }
    }
    evicted
}

async fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(io_err("creating", path))?;
    file.write_all(bytes)
        .await
        .map_err(io_err("writing", path))?;
    file.sync_all().await.map_err(io_err("syncing", path))
}

/// Copies exactly `len` bytes of `body` into `file`; more or fewer is an error.
async fn copy_exact(
    id: EntryId,
    offset: u64,
    len: u64,
    mut body: ByteStream,
    file: &mut tokio::fs::File,
    path: &Path,
) -> Result<(), StoreError> {
    // Bodies arrive in small frames; batching them spares a blocking-pool trip per frame.
    let mut out = tokio::io::BufWriter::with_capacity(IO_BUFFER, file);
    let mut written: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| StoreError::Body { id, source })?;
        written = written.saturating_add(chunk.len() as u64);
        if written > len {
            return Err(StoreError::BadRange {
                id,
                offset,
                reason: "body is longer than declared",
            });
        }
        out.write_all(&chunk)
            .await
            .map_err(io_err("writing", path))?;
    }
    if written < len {
        return Err(StoreError::BadRange {
            id,
            offset,
            reason: "body is shorter than declared (truncated upload)",
        });
    }
    out.flush().await.map_err(io_err("writing", path))
}

/// Chunk size of archive reads and buffered writes (tokio's 4 KiB default costs a blocking-pool
/// trip per 4 KiB: a 1 GiB restore took 2.5 times as long).
const IO_BUFFER: usize = 1 << 20;

#[async_trait]
impl Store for DiskStore {
    async fn lookup(
        &self,
        repository: &str,
        refs: Option<&RefScope>,
        keys: &[String],
        version: &str,
    ) -> Result<Option<Entry>, StoreError> {
        let entries = self.list(repository, None).await?;
        Ok(select_entry(&entries, refs, keys, version).cloned())
    }

    async fn list(&self, repository: &str, key: Option<&str>) -> Result<Vec<Entry>, StoreError> {
        let mut state = self.state.lock().await;
        self.refresh(&mut state).await?;
        Ok(state
            .index
            .entries
            .values()
            .filter(|r| r.repository == repository && key.is_none_or(|k| r.key == k))
            .map(IndexRecord::entry)
            .collect())
    }

    async fn reserve(
        &self,
        owner: &JobIdentity,
        key: &str,
        version: &str,
        size_hint: Option<u64>,
    ) -> Result<EntryId, StoreError> {
        if let Some(size) = size_hint.filter(|size| *size > self.size_limit) {
            return Err(StoreError::TooLarge {
                size,
                limit: self.size_limit,
            });
        }
        let conflict = || StoreError::Conflict {
            key: key.to_owned(),
            version: version.to_owned(),
        };
        // The same entry: same repository, scope, key and version.
        let same = |repository: &str, git_ref: Option<&str>, k: &str, v: &str| {
            repository == owner.repository
                && git_ref == owner.write_ref()
                && k == key
                && v == version
        };
        let mut state = self.state.lock().await;
        // Expired uploads free their key, their bytes and their place first.
        let expired = state.uploads.take_expired();
        self.remove_upload_files(&expired).await?;
        let lock = self.lock_index(&mut state).await?;
        let committed = state
            .index
            .entries
            .values()
            .any(|r| same(&r.repository, r.git_ref.as_deref(), &r.key, &r.version));
        let uploading = state
            .uploads
            .iter()
            .any(|(_, u)| same(&u.owner.repository, u.owner.write_ref(), &u.key, &u.version));
        if committed || uploading {
            return Err(conflict());
        }
        let announced = size_hint.unwrap_or(0);
        state.uploads.admit(owner, announced)?;
        // Ids come from the shared index, so no other process picks this one.
        let id = state.index.allocate_id();
        self.files.store(&state.index, &lock).await?;
        drop(lock);
        let path = self.upload_path(id);
        tokio::fs::File::create(&path)
            .await
            .map_err(io_err("creating", &path))?;
        state
            .uploads
            .insert(id, Upload::new(owner, key, version, announced));
        tracing::debug!(id, key, version, repository = %owner.repository, "reserved cache entry");
        Ok(id)
    }

    async fn find_upload(
        &self,
        owner: &JobIdentity,
        key: &str,
        version: &str,
    ) -> Result<Option<EntryId>, StoreError> {
        let state = self.state.lock().await;
        Ok(state
            .uploads
            .iter()
            .find(|(_, u)| u.owner == *owner && u.key == key && u.version == version)
            .map(|(id, _)| *id))
    }

    async fn upload_owner(&self, id: EntryId) -> Result<Option<JobIdentity>, StoreError> {
        let state = self.state.lock().await;
        Ok(state.uploads.get(id).map(|u| u.owner.clone()))
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
        self.begin_write(owner, id, Growth::Range { end }).await?;
        let path = self.upload_path(id);
        let result = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .await
                .map_err(io_err("opening", &path))?;
            file.seek(io::SeekFrom::Start(offset))
                .await
                .map_err(io_err("seeking", &path))?;
            copy_exact(id, offset, len, body, &mut file, &path).await
        }
        .await;
        let range = result.is_ok().then_some((offset, end));
        self.end_write(id, range, None).await;
        result
    }

    async fn write_block(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        block_id: &str,
        len: u64,
        body: ByteStream,
    ) -> Result<(), StoreError> {
        self.begin_write(owner, id, Growth::Block { len }).await?;
        let dir = self.blocks_dir(id);
        let path = self.block_path(id, block_id);
        let result = async {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(io_err("creating", &dir))?;
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(io_err("creating", &path))?;
            copy_exact(id, 0, len, body, &mut file, &path).await
        }
        .await;
        let block = result.is_ok().then_some((block_id, len));
        self.end_write(id, None, block).await;
        result
    }

    async fn put_block_list(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        block_ids: &[String],
    ) -> Result<(), StoreError> {
        let mut total: u64 = 0;
        {
            let mut state = self.state.lock().await;
            let upload = state.uploads.owned_mut(owner, id)?;
            for block_id in block_ids {
                let len = upload
                    .blocks
                    .get(block_id)
                    .ok_or_else(|| StoreError::UnknownBlock {
                        id,
                        block_id: block_id.clone(),
                    })?;
                total = total.saturating_add(*len);
            }
        }
        // A list may name one block many times: the content is what the list adds up to.
        self.begin_write(owner, id, Growth::Assembly { len: total })
            .await?;
        let path = self.upload_path(id);
        // One blocking task with std's copy, which lets the kernel move the bytes
        // (copy_file_range) instead of 8 KiB round trips through the async runtime.
        let blocks: Vec<PathBuf> = block_ids
            .iter()
            .map(|block_id| self.block_path(id, block_id))
            .collect();
        let out_path = path.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            let mut out =
                std::fs::File::create(&out_path).map_err(io_err("creating", &out_path))?;
            for block_path in &blocks {
                let mut block =
                    std::fs::File::open(block_path).map_err(io_err("opening", block_path))?;
                std::io::copy(&mut block, &mut out).map_err(io_err("assembling", &out_path))?;
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|join| Err(io_err("assembling", &path)(io::Error::other(join))));
        let blocks = self.blocks_dir(id);
        let removed = match &result {
            Ok(()) => match tokio::fs::remove_dir_all(&blocks).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(io_err("removing", &blocks)(e))
                }
                _ => Ok(()),
            },
            Err(_) => Ok(()),
        };
        self.state
            .lock()
            .await
            .uploads
            .end_assembly(id, total, result.is_ok() && removed.is_ok());
        result.and(removed)
    }

    async fn commit(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        size: u64,
    ) -> Result<Entry, StoreError> {
        if size > self.size_limit {
            return Err(StoreError::TooLarge {
                size,
                limit: self.size_limit,
            });
        }
        let mut state = self.state.lock().await;
        let upload = state.uploads.owned_mut(owner, id)?;
        if upload.writers > 0 {
            return Err(StoreError::Busy { id });
        }
        let covered = match upload.ranges.as_slice() {
            [] => size == 0,
            [(0, end)] => *end == size,
            _ => false,
        };
        if !covered {
            let reason = format!("received byte ranges {:?}", upload.ranges);
            return Err(StoreError::Incomplete { id, size, reason });
        }
        // Removing the upload first means no later write can reach the file we are about to
        // turn into an immutable entry.
        let Some(upload) = state.uploads.remove(id) else {
            return Err(StoreError::UnknownUpload { id });
        };
        let from = self.upload_path(id);
        let to = self.entry_path(id);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&from)
            .await
            .map_err(io_err("opening", &from))?;
        // The client may have written past `size` only if its ranges said so, which the check
        // above rejects; truncating anyway guards against a stale longer file from v2 blocks.
        file.set_len(size)
            .await
            .map_err(io_err("truncating", &from))?;
        file.sync_all().await.map_err(io_err("syncing", &from))?;
        drop(file);

        let lock = self.lock_index(&mut state).await?;
        // Another process may have committed the same entry meanwhile: first wins.
        let git_ref = upload.owner.write_ref().map(str::to_owned);
        if state.index.entries.values().any(|r| {
            r.repository == upload.owner.repository
                && r.git_ref == git_ref
                && r.key == upload.key
                && r.version == upload.version
        }) {
            drop(lock);
            drop(state);
            self.remove_upload_files(&[id]).await?;
            return Err(StoreError::Conflict {
                key: upload.key,
                version: upload.version,
            });
        }
        tokio::fs::rename(&from, &to)
            .await
            .map_err(io_err("renaming", &from))?;
        let seq = state.index.tick();
        let now = crate::clock::now_ms();
        let record = IndexRecord {
            id,
            repository: upload.owner.repository,
            git_ref,
            key: upload.key,
            version: upload.version,
            size,
            created_seq: seq,
            created_at_ms: now,
            last_used: seq,
            last_used_ms: now,
        };
        let entry = record.entry();
        state.index.entries.insert(id, record);
        let evicted = evict(&mut state.index, self.size_limit, self.max_entries);
        self.files.store(&state.index, &lock).await?;
        drop(lock);
        drop(state);
        for old in evicted {
            remove_file_if_present(&self.entry_path(old.id)).await?;
        }
        // Blocks left from a single-shot upload that replaced them.
        self.remove_upload_files(&[id]).await?;
        tracing::debug!(id, key = %entry.key, size, "committed cache entry");
        Ok(entry)
    }

    async fn read(&self, id: EntryId) -> Result<(u64, ByteStream), StoreError> {
        let path = self.entry_path(id);
        let size = {
            let mut state = self.state.lock().await;
            let lock = self.lock_index(&mut state).await?;
            let tick = state.index.tick();
            let record = state
                .index
                .entries
                .get_mut(&id)
                .ok_or(StoreError::UnknownEntry { id })?;
            record.last_used = tick;
            record.last_used_ms = crate::clock::now_ms();
            let size = record.size;
            self.files.store(&state.index, &lock).await?;
            size
        };
        // Opened after the lock is released: an eviction racing with this open shows up as
        // UnknownEntry, and one after it cannot hurt since an open file outlives its unlink.
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::UnknownEntry { id });
            }
            Err(e) => return Err(io_err("opening", &path)(e)),
        };
        Ok((
            size,
            Box::pin(tokio_util::io::ReaderStream::with_capacity(file, IO_BUFFER)),
        ))
    }

    async fn prune(&self, rules: crate::store::PruneRules) -> Result<Vec<Entry>, StoreError> {
        DiskStore::prune(self, rules).await
    }

    async fn expire_uploads(&self) -> Result<usize, StoreError> {
        let expired = self.state.lock().await.uploads.take_expired();
        self.remove_upload_files(&expired).await?;
        Ok(expired.len())
    }
}
