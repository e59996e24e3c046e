//! [`DiskStore`]: cache archives in a local directory.
//!
//! Layout: `index.json` (committed entries, written to a temp file and renamed), `entries/<id>`
//! (archives), `uploads/<id>` and `uploads/<id>.blocks/<sha256 of block id>` (in progress).
//! Only ids and hashes name files; keys live in the index only. An upload becomes an entry by a
//! rename after the index knows it, so a crash leaves at worst orphan files, which opening the
//! store removes. Least-recently-used entries are evicted past the size limit.
//!
//! Owns: the directory. Must not: know HTTP or tokens.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::auth::{JobIdentity, hex};
use crate::store::{ByteStream, Entry, EntryId, Store, StoreError, select_entry};

/// Settings of a [`DiskStore`].
#[derive(Clone, Debug)]
pub struct DiskStoreConfig {
    /// The directory; created if missing.
    pub dir: PathBuf,
    /// Total bytes of committed entries kept; older-used entries are evicted beyond it.
    pub size_limit: u64,
    /// A reservation idle this long no longer blocks a new reserve of the same key (a job that
    /// died mid-upload must not block the key forever).
    pub reservation_ttl: Duration,
}

impl DiskStoreConfig {
    /// `dir` with `size_limit` bytes and a 5-minute reservation timeout (as act's GC).
    pub fn new(dir: PathBuf, size_limit: u64) -> Self {
        Self {
            dir,
            size_limit,
            reservation_ttl: Duration::from_secs(300),
        }
    }
}

const INDEX_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct IndexFile {
    format: u32,
    next_id: u64,
    clock: u64,
    entries: Vec<IndexRecord>,
}

#[derive(Serialize, Deserialize, Clone)]
struct IndexRecord {
    id: u64,
    repository: String,
    key: String,
    version: String,
    size: u64,
    created_seq: u64,
    created_at_ms: u64,
    last_used: u64,
}

impl IndexRecord {
    fn entry(&self) -> Entry {
        Entry {
            id: self.id,
            repository: self.repository.clone(),
            key: self.key.clone(),
            version: self.version.clone(),
            size: self.size,
            created_seq: self.created_seq,
            created_at_ms: self.created_at_ms,
        }
    }
}

struct Upload {
    owner: JobIdentity,
    key: String,
    version: String,
    /// Received byte ranges, half-open, sorted and merged.
    ranges: Vec<(u64, u64)>,
    /// v2 blocks received: client block id → length.
    blocks: HashMap<String, u64>,
    /// Writes in progress; commit waits for none so no write lands in a committed entry.
    writers: usize,
    last_activity: Instant,
}

struct State {
    next_id: u64,
    /// Logical clock for creation order and least-recent use.
    clock: u64,
    entries: BTreeMap<EntryId, IndexRecord>,
    uploads: HashMap<EntryId, Upload>,
}

impl State {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn upload_mut(&mut self, owner: &JobIdentity, id: EntryId) -> Result<&mut Upload, StoreError> {
        match self.uploads.get_mut(&id) {
            Some(upload) if upload.owner == *owner => Ok(upload),
            _ => Err(StoreError::UnknownUpload { id }),
        }
    }
}

/// Cache archives in a local directory; see the module docs for the layout and guarantees.
pub struct DiskStore {
    dir: PathBuf,
    size_limit: u64,
    reservation_ttl: Duration,
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
    /// Opens (or creates) the store in `config.dir`: loads the index, drops uploads that were in
    /// progress when the process stopped and files the index does not know.
    pub async fn open(config: DiskStoreConfig) -> Result<Self, StoreError> {
        let dir = config.dir;
        let entries_dir = dir.join("entries");
        let uploads_dir = dir.join("uploads");
        tokio::fs::create_dir_all(&entries_dir)
            .await
            .map_err(io_err("creating", &entries_dir))?;
        if tokio::fs::metadata(&uploads_dir).await.is_ok() {
            tokio::fs::remove_dir_all(&uploads_dir)
                .await
                .map_err(io_err("removing stale uploads", &uploads_dir))?;
        }
        tokio::fs::create_dir_all(&uploads_dir)
            .await
            .map_err(io_err("creating", &uploads_dir))?;

        let index_path = dir.join("index.json");
        let index = match tokio::fs::read(&index_path).await {
            Ok(bytes) => {
                serde_json::from_slice::<IndexFile>(&bytes).map_err(|source| StoreError::Index {
                    path: index_path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => IndexFile {
                format: INDEX_FORMAT,
                next_id: 1,
                clock: 0,
                entries: Vec::new(),
            },
            Err(e) => return Err(io_err("reading", &index_path)(e)),
        };

        let mut entries = BTreeMap::new();
        for record in index.entries {
            let path = entries_dir.join(record.id.to_string());
            match tokio::fs::metadata(&path).await {
                Ok(meta) if meta.len() == record.size => {
                    entries.insert(record.id, record);
                }
                _ => {
                    tracing::warn!(id = record.id, path = %path.display(), "dropping cache entry whose archive is missing")
                }
            }
        }
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
                .is_some_and(|id| entries.contains_key(&id));
            if !known {
                remove_file_if_present(&file.path()).await?;
            }
        }

        let store = Self {
            dir,
            size_limit: config.size_limit,
            reservation_ttl: config.reservation_ttl,
            state: Mutex::new(State {
                next_id: index.next_id.max(1),
                clock: index.clock,
                entries,
                uploads: HashMap::new(),
            }),
        };
        let state = store.state.lock().await;
        store.persist(&state).await?;
        drop(state);
        Ok(store)
    }

    fn entry_path(&self, id: EntryId) -> PathBuf {
        self.dir.join("entries").join(id.to_string())
    }

    fn upload_path(&self, id: EntryId) -> PathBuf {
        self.dir.join("uploads").join(id.to_string())
    }

    fn blocks_dir(&self, id: EntryId) -> PathBuf {
        self.dir.join("uploads").join(format!("{id}.blocks"))
    }

    fn block_path(&self, id: EntryId, block_id: &str) -> PathBuf {
        self.blocks_dir(id)
            .join(hex(&Sha256::digest(block_id.as_bytes())))
    }

    /// Writes the index atomically. Called with the state locked so writes are ordered.
    async fn persist(&self, state: &State) -> Result<(), StoreError> {
        let index = IndexFile {
            format: INDEX_FORMAT,
            next_id: state.next_id,
            clock: state.clock,
            entries: state.entries.values().cloned().collect(),
        };
        let path = self.dir.join("index.json");
        let bytes = serde_json::to_vec(&index).map_err(|source| StoreError::Index {
            path: path.clone(),
            source,
        })?;
        let temp = self.dir.join("index.json.tmp");
        write_synced(&temp, &bytes).await?;
        tokio::fs::rename(&temp, &path)
            .await
            .map_err(io_err("renaming", &temp))
    }

    /// Marks a write as started, so a commit refuses until it ended.
    async fn begin_write(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        end: u64,
    ) -> Result<(), StoreError> {
        if end > self.size_limit {
            return Err(StoreError::TooLarge {
                size: end,
                limit: self.size_limit,
            });
        }
        let mut state = self.state.lock().await;
        let upload = state.upload_mut(owner, id)?;
        upload.writers += 1;
        upload.last_activity = Instant::now();
        Ok(())
    }

    async fn end_write(&self, id: EntryId, range: Option<(u64, u64)>, block: Option<(&str, u64)>) {
        let mut state = self.state.lock().await;
        if let Some(upload) = state.uploads.get_mut(&id) {
            upload.writers = upload.writers.saturating_sub(1);
            upload.last_activity = Instant::now();
            if let Some(range) = range {
                add_range(&mut upload.ranges, range);
            }
            if let Some((block_id, len)) = block {
                upload.blocks.insert(block_id.to_owned(), len);
            }
        }
    }

    /// Deletes least-recently-used entries until the total fits. Returns the ids removed.
    fn evict(&self, state: &mut State) -> Vec<EntryId> {
        let mut total: u64 = state.entries.values().map(|r| r.size).sum();
        let mut evicted = Vec::new();
        while total > self.size_limit {
            let Some(oldest) = state
                .entries
                .values()
                .min_by_key(|record| record.last_used)
                .map(|r| r.id)
            else {
                break;
            };
            if let Some(record) = state.entries.remove(&oldest) {
                total = total.saturating_sub(record.size);
                tracing::info!(id = oldest, key = %record.key, size = record.size, "evicting cache entry");
                evicted.push(oldest);
            }
        }
        evicted
    }
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

/// Inserts a half-open range into a sorted, merged list.
fn add_range(ranges: &mut Vec<(u64, u64)>, (start, end): (u64, u64)) {
    if start >= end {
        return;
    }
    ranges.push((start, end));
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for &(s, e) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *ranges = merged;
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
        file.write_all(&chunk)
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
    file.flush().await.map_err(io_err("writing", path))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[async_trait]
impl Store for DiskStore {
    async fn lookup(
        &self,
        repository: &str,
        keys: &[String],
        version: &str,
    ) -> Result<Option<Entry>, StoreError> {
        let entries = self.list(repository, None).await?;
        Ok(select_entry(&entries, keys, version).cloned())
    }

    async fn list(&self, repository: &str, key: Option<&str>) -> Result<Vec<Entry>, StoreError> {
        let state = self.state.lock().await;
        Ok(state
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
        let mut state = self.state.lock().await;
        let same = |repository: &str, k: &str, v: &str| {
            repository == owner.repository && k == key && v == version
        };
        if state
            .entries
            .values()
            .any(|r| same(&r.repository, &r.key, &r.version))
        {
            return Err(conflict());
        }
        let ttl = self.reservation_ttl;
        let stale: Vec<EntryId> = state
            .uploads
            .iter()
            .filter(|(_, u)| same(&u.owner.repository, &u.key, &u.version))
            .map(|(id, u)| (*id, u.writers == 0 && u.last_activity.elapsed() >= ttl))
            .map(|(id, is_stale)| if is_stale { Ok(id) } else { Err(id) })
            .collect::<Result<_, _>>()
            .map_err(|_| conflict())?;
        for id in stale {
            state.uploads.remove(&id);
            remove_file_if_present(&self.upload_path(id)).await?;
        }
        let id = state.next_id;
        state.next_id += 1;
        let path = self.upload_path(id);
        tokio::fs::File::create(&path)
            .await
            .map_err(io_err("creating", &path))?;
        state.uploads.insert(
            id,
            Upload {
                owner: owner.clone(),
                key: key.to_owned(),
                version: version.to_owned(),
                ranges: Vec::new(),
                blocks: HashMap::new(),
                writers: 0,
                last_activity: Instant::now(),
            },
        );
        // Persist next_id so ids are never reused after a restart.
        self.persist(&state).await?;
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
        Ok(state.uploads.get(&id).map(|u| u.owner.clone()))
    }

    async fn write_range(
        &self,
        owner: &JobIdentity,
        id: EntryId,
        offset: u64,
        len: u64,
        body: ByteStream,
    ) -> Result<(), StoreError> {
        let end = offset.checked_add(len).ok_or(StoreError::BadRange {
            id,
            offset,
            reason: "range overflows",
        })?;
        self.begin_write(owner, id, end).await?;
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
        self.begin_write(owner, id, len).await?;
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
            let upload = state.upload_mut(owner, id)?;
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
        self.begin_write(owner, id, total).await?;
        let path = self.upload_path(id);
        let result = async {
            let mut out = tokio::fs::File::create(&path)
                .await
                .map_err(io_err("creating", &path))?;
            for block_id in block_ids {
                let block_path = self.block_path(id, block_id);
                let mut block = tokio::fs::File::open(&block_path)
                    .await
                    .map_err(io_err("opening", &block_path))?;
                tokio::io::copy(&mut block, &mut out)
                    .await
                    .map_err(io_err("assembling", &path))?;
            }
            out.flush().await.map_err(io_err("writing", &path))
        }
        .await;
        {
            let mut state = self.state.lock().await;
            if let Some(upload) = state.uploads.get_mut(&id) {
                upload.writers = upload.writers.saturating_sub(1);
                if result.is_ok() {
                    upload.ranges = if total > 0 {
                        vec![(0, total)]
                    } else {
                        Vec::new()
                    };
                }
            }
        }
        let blocks = self.blocks_dir(id);
        if result.is_ok() && tokio::fs::metadata(&blocks).await.is_ok() {
            tokio::fs::remove_dir_all(&blocks)
                .await
                .map_err(io_err("removing", &blocks))?;
        }
        result
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
        let upload = state.upload_mut(owner, id)?;
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
        let Some(upload) = state.uploads.remove(&id) else {
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
        tokio::fs::rename(&from, &to)
            .await
            .map_err(io_err("renaming", &from))?;
        let seq = state.tick();
        let record = IndexRecord {
            id,
            repository: upload.owner.repository,
            key: upload.key,
            version: upload.version,
            size,
            created_seq: seq,
            created_at_ms: now_ms(),
            last_used: seq,
        };
        let entry = record.entry();
        state.entries.insert(id, record);
        let evicted = self.evict(&mut state);
        self.persist(&state).await?;
        drop(state);
        for old in evicted {
            remove_file_if_present(&self.entry_path(old)).await?;
        }
        tracing::debug!(id, key = %entry.key, size, "committed cache entry");
        Ok(entry)
    }

    async fn read(&self, id: EntryId) -> Result<(u64, ByteStream), StoreError> {
        let path = self.entry_path(id);
        let size = {
            let mut state = self.state.lock().await;
            let tick = state.tick();
            let record = state
                .entries
                .get_mut(&id)
                .ok_or(StoreError::UnknownEntry { id })?;
            record.last_used = tick;
            let size = record.size;
            self.persist(&state).await?;
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
        Ok((size, Box::pin(tokio_util::io::ReaderStream::new(file))))
    }
}
