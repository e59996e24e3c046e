//! The shared half of a [`DiskStore`](super::DiskStore)'s directory: `index.json`, the lock
//! that orders every change to it, and the per-process upload sessions.
//!
//! Several processes may open one directory at once (a daemon, parallel `runnel run`s,
//! `runnel cache rm`). So every read-modify-write of the index runs under an exclusive `flock`
//! on `index.lock` ([`IndexFiles::lock`]), starts by re-reading the index (entries another
//! process committed become visible) and ends by writing a temp file named after this
//! process's session and renaming it over `index.json`, so a reader taking no lock still sees a
//! whole index. Ids come from the shared `next_id`, so two processes never pick the same one.
//!
//! Uploads in progress belong to one process: they live in `uploads/<session>/`, next to
//! `uploads/<session>.lock`, which the process holds locked while the store is open. Opening a
//! store removes the sessions whose lock nobody holds (their process died).
//!
//! Must not: know HTTP, tokens or the upload life cycle.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::store::{Entry, EntryId, StoreError};

use super::io_err;

const INDEX_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct IndexFile {
    format: u32,
    next_id: u64,
    clock: u64,
    entries: Vec<IndexRecord>,
}

/// One committed entry as the index keeps it.
#[derive(Serialize, Deserialize, Clone)]
pub(super) struct IndexRecord {
    pub(super) id: u64,
    pub(super) repository: String,
    /// The scope ([`Entry::git_ref`]); absent in indexes written before scopes existed, whose
    /// entries stay readable by every ref of their repository. Older runnel versions ignore it.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub(super) git_ref: Option<String>,
    pub(super) key: String,
    pub(super) version: String,
    pub(super) size: u64,
    pub(super) created_seq: u64,
    pub(super) created_at_ms: u64,
    /// Logical time of the last use (eviction order).
    pub(super) last_used: u64,
    /// Wall time of the last use, ms since the epoch (`prune --older-than`); 0 in indexes
    /// written before it existed, which then count the creation time.
    #[serde(default)]
    pub(super) last_used_ms: u64,
}

impl IndexRecord {
    pub(super) fn entry(&self) -> Entry {
        Entry {
            id: self.id,
            repository: self.repository.clone(),
            git_ref: self.git_ref.clone(),
            key: self.key.clone(),
            version: self.version.clone(),
            size: self.size,
            created_seq: self.created_seq,
            created_at_ms: self.created_at_ms,
        }
    }

    pub(super) fn used_at_ms(&self) -> u64 {
        self.last_used_ms.max(self.created_at_ms)
    }
}

/// The committed entries and the shared counters, as last read from (or written to) disk.
pub(super) struct Index {
    pub(super) next_id: u64,
    /// Logical clock for creation order and least-recent use.
    pub(super) clock: u64,
    pub(super) entries: BTreeMap<EntryId, IndexRecord>,
}

impl Index {
    pub(super) fn empty() -> Self {
        Self {
            next_id: 1,
            clock: 0,
            entries: BTreeMap::new(),
        }
    }

    pub(super) fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub(super) fn allocate_id(&mut self) -> EntryId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
}

/// Proof that this process holds the index lock; released on drop.
pub(super) struct IndexLock {
    _lock: Flock<File>,
}

/// Paths of the index, its lock, and this process's temp file.
pub(super) struct IndexFiles {
    path: PathBuf,
    lock_path: PathBuf,
    temp_path: PathBuf,
}

impl IndexFiles {
    pub(super) fn new(dir: &Path, session: &str) -> Self {
        Self {
            path: dir.join("index.json"),
            lock_path: dir.join("index.lock"),
            temp_path: dir.join(format!("index.json.{session}.tmp")),
        }
    }

    /// Waits for the exclusive lock on the index (other processes hold it only for the
    /// length of one index update).
    pub(super) async fn lock(&self) -> Result<IndexLock, StoreError> {
        let path = self.lock_path.clone();
        let locked = tokio::task::spawn_blocking(move || lock_file(&path, FlockArg::LockExclusive))
            .await
            .map_err(|join| io_err("locking", &self.lock_path)(io::Error::other(join)))?;
        match locked {
            Ok(Some(lock)) => Ok(IndexLock { _lock: lock }),
            Ok(None) => Err(io_err("locking", &self.lock_path)(io::Error::from(
                io::ErrorKind::WouldBlock,
            ))),
            Err(source) => Err(io_err("locking", &self.lock_path)(source)),
        }
    }

    /// Re-reads the index into `index`. The counters never go back (a removed index file must
    /// not make this process reuse ids).
    pub(super) async fn load(&self, index: &mut Index) -> Result<(), StoreError> {
        let file = match tokio::fs::read(&self.path).await {
            Ok(bytes) => {
                serde_json::from_slice::<IndexFile>(&bytes).map_err(|source| StoreError::Index {
                    path: self.path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => IndexFile {
                format: INDEX_FORMAT,
                next_id: 1,
                clock: 0,
                entries: Vec::new(),
            },
            Err(e) => return Err(io_err("reading", &self.path)(e)),
        };
        index.next_id = index.next_id.max(file.next_id).max(1);
        index.clock = index.clock.max(file.clock);
        index.entries = file.entries.into_iter().map(|r| (r.id, r)).collect();
        Ok(())
    }

    /// Writes `index` atomically; only the lock holder may.
    pub(super) async fn store(&self, index: &Index, _lock: &IndexLock) -> Result<(), StoreError> {
        let file = IndexFile {
            format: INDEX_FORMAT,
            next_id: index.next_id,
            clock: index.clock,
            entries: index.entries.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|source| StoreError::Index {
            path: self.path.clone(),
            source,
        })?;
        super::write_synced(&self.temp_path, &bytes).await?;
        tokio::fs::rename(&self.temp_path, &self.path)
            .await
            .map_err(io_err("renaming", &self.temp_path))
    }
}

/// Opens (creating) `path` and `flock`s it; `Ok(None)` when a non-blocking lock is taken.
fn lock_file(path: &Path, how: FlockArg) -> io::Result<Option<Flock<File>>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match Flock::lock(file, how) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(io::Error::from(errno)),
    }
}

/// This process's upload area, `uploads/<name>/`, kept locked while the store is open and
/// removed when it is dropped.
pub(super) struct Session {
    pub(super) name: String,
    pub(super) dir: PathBuf,
    lock_path: PathBuf,
    _lock: Flock<File>,
}

impl Drop for Session {
    fn drop(&mut self) {
        for result in [
            std::fs::remove_dir_all(&self.dir),
            std::fs::remove_file(&self.lock_path),
        ] {
            if let Err(error) = result
                && error.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(dir = %self.dir.display(), %error, "removing the upload session failed");
            }
        }
    }
}

/// Removes what dead processes left in `uploads_dir` (sessions nobody holds locked, files of
/// older layouts) and stale index temp files, then starts this process's session. Runs under
/// the index lock, so no other process is starting a session or writing the index meanwhile.
pub(super) fn sweep_and_start_session(
    dir: &Path,
    uploads_dir: &Path,
    _lock: &IndexLock,
) -> io::Result<Session> {
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("index.json.") && name.ends_with(".tmp") {
            remove_any(&item.path())?;
        }
    }
    for item in std::fs::read_dir(uploads_dir)? {
        let item = item?;
        let path = item.path();
        let name = item.file_name();
        let name = name.to_string_lossy();
        if let Some(session) = name.strip_suffix(".lock") {
            // Locking it ourselves succeeds only when its process is gone.
            if let Some(dead) = lock_file(&path, FlockArg::LockExclusiveNonblock)? {
                remove_any(&uploads_dir.join(session))?;
                remove_any(&path)?;
                drop(dead);
            }
        } else if !uploads_dir.join(format!("{name}.lock")).exists() {
            remove_any(&path)?;
        }
    }
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(io::Error::other)?;
    let name = crate::auth::hex(&random);
    let session_dir = uploads_dir.join(&name);
    let lock_path = uploads_dir.join(format!("{name}.lock"));
    let lock = lock_file(&lock_path, FlockArg::LockExclusiveNonblock)?
        .ok_or_else(|| io::Error::other("a fresh upload session is locked by someone else"))?;
    std::fs::create_dir_all(&session_dir)?;
    Ok(Session {
        name,
        dir: session_dir,
        lock_path,
        _lock: lock,
    })
}

fn remove_any(path: &Path) -> io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
