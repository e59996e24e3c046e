//! The uploads in progress of one [`DiskStore`](super::DiskStore) (one process): who owns each,
//! what has arrived, and what each holds against the store's limits — so that uploads nobody
//! commits cannot fill the disk. An upload is charged the larger of its announced size and the
//! end of the furthest range written, plus its staged v2 blocks; the charges of all uploads
//! together stay within [`UploadLimits::bytes`], and the number of uploads per job (token) and in
//! total is capped. An upload idle for the reservation TTL expires: [`Uploads::take_expired`]
//! hands its id back so the store removes its files.
//!
//! Owns: the bookkeeping. Must not: touch files (the store does, with the ids returned here).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::auth::JobIdentity;
use crate::store::{EntryId, StoreError};

/// What uploads in progress may hold at once.
#[derive(Clone, Copy, Debug)]
pub(super) struct UploadLimits {
    /// Bytes charged to all uploads together.
    pub(super) bytes: u64,
    /// Uploads one token may have open.
    pub(super) per_job: usize,
    /// Uploads open in the store.
    pub(super) total: usize,
    /// Idle time after which an upload expires.
    pub(super) ttl: Duration,
}

pub(super) struct Upload {
    pub(super) owner: JobIdentity,
    pub(super) key: String,
    pub(super) version: String,
    /// Received byte ranges, half-open, sorted and merged.
    pub(super) ranges: Vec<(u64, u64)>,
    /// v2 blocks received: client block id → length.
    pub(super) blocks: HashMap<String, u64>,
    /// Writes in progress; commit waits for none so no write lands in a committed entry, and
    /// an upload being written never expires.
    pub(super) writers: usize,
    last_activity: Instant,
    /// The size announced at reserve (v1 `cacheSize`), 0 when none.
    announced: u64,
    /// The end of the furthest range a write started (whether or not it completed).
    extent: u64,
    /// Bytes of staged blocks, counting blocks whose write started.
    block_bytes: u64,
}

impl Upload {
    pub(super) fn new(owner: &JobIdentity, key: &str, version: &str, announced: u64) -> Upload {
        Upload {
            owner: owner.clone(),
            key: key.to_owned(),
            version: version.to_owned(),
            ranges: Vec::new(),
            blocks: HashMap::new(),
            writers: 0,
            last_activity: Instant::now(),
            announced,
            extent: 0,
            block_bytes: 0,
        }
    }

    /// What the upload holds against [`UploadLimits::bytes`].
    fn charge(&self) -> u64 {
        self.announced
            .max(self.extent)
            .saturating_add(self.block_bytes)
    }

    fn is_expired(&self, ttl: Duration) -> bool {
        self.writers == 0 && self.last_activity.elapsed() >= ttl
    }

    pub(super) fn touch(&mut self) {
        self.last_activity = Instant::now();
    }
}

/// What a write is about to add to an upload.
#[derive(Clone, Copy, Debug)]
pub(super) enum Growth {
    /// A range ending at this offset.
    Range { end: u64 },
    /// A staged block of this length.
    Block { len: u64 },
    /// The blocks joined into the content, this long; the staged blocks are removed after.
    Assembly { len: u64 },
}

/// This process's uploads in progress.
pub(super) struct Uploads {
    map: HashMap<EntryId, Upload>,
    limits: UploadLimits,
}

impl Uploads {
    pub(super) fn new(limits: UploadLimits) -> Uploads {
        Uploads {
            map: HashMap::new(),
            limits,
        }
    }

    /// The upload `id` if `owner` reserved it.
    pub(super) fn owned_mut(
        &mut self,
        owner: &JobIdentity,
        id: EntryId,
    ) -> Result<&mut Upload, StoreError> {
        match self.map.get_mut(&id) {
            Some(upload) if upload.owner == *owner => Ok(upload),
            _ => Err(StoreError::UnknownUpload { id }),
        }
    }

    pub(super) fn get(&self, id: EntryId) -> Option<&Upload> {
        self.map.get(&id)
    }

    pub(super) fn remove(&mut self, id: EntryId) -> Option<Upload> {
        self.map.remove(&id)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&EntryId, &Upload)> {
        self.map.iter()
    }

    /// Removes the uploads idle for the TTL; returns their ids (their files are the caller's
    /// to delete).
    pub(super) fn take_expired(&mut self) -> Vec<EntryId> {
        let ttl = self.limits.ttl;
        let expired: Vec<EntryId> = self
            .map
            .iter()
            .filter(|(_, upload)| upload.is_expired(ttl))
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            if let Some(upload) = self.map.remove(id) {
                tracing::debug!(id, key = %upload.key, "cache upload expired");
            }
        }
        expired
    }

    /// Whether `owner` may open one more upload announcing `announced` bytes.
    pub(super) fn admit(&self, owner: &JobIdentity, announced: u64) -> Result<(), StoreError> {
        let open = self.map.len();
        if open >= self.limits.total {
            return Err(StoreError::TooManyUploads {
                open,
                limit: self.limits.total,
                scope: "the cache",
            });
        }
        // No-auth clients share one empty token id: only the total applies to them.
        if !owner.token_id.is_empty() {
            let mine = self
                .map
                .values()
                .filter(|u| u.owner.token_id == owner.token_id)
                .count();
            if mine >= self.limits.per_job {
                return Err(StoreError::TooManyUploads {
                    open: mine,
                    limit: self.limits.per_job,
                    scope: "this job",
                });
            }
        }
        self.check_bytes(None, announced)
    }

    /// Starts a write of `owner`'s upload `id`, charging what it adds first, so concurrent
    /// chunks cannot pass the limit together.
    pub(super) fn begin_write(
        &mut self,
        owner: &JobIdentity,
        id: EntryId,
        growth: Growth,
    ) -> Result<(), StoreError> {
        let upload = self.owned_mut(owner, id)?;
        let (extent, block_bytes) = match growth {
            Growth::Range { end } => (upload.extent.max(end), upload.block_bytes),
            Growth::Block { len } => (upload.extent, upload.block_bytes.saturating_add(len)),
            // Judged as it will be once the blocks are gone; while they are joined both exist.
            Growth::Assembly { len } => (upload.extent.max(len), 0),
        };
        let charge = upload.announced.max(extent).saturating_add(block_bytes);
        self.check_bytes(Some(id), charge)?;
        let upload = self.owned_mut(owner, id)?;
        upload.extent = extent;
        if let Growth::Block { len } = growth {
            upload.block_bytes = upload.block_bytes.saturating_add(len);
        }
        upload.writers += 1;
        upload.touch();
        Ok(())
    }

    /// Ends a write: records a completed range or block (a failed one stays charged, since
    /// part of it may be on disk).
    pub(super) fn end_write(
        &mut self,
        id: EntryId,
        range: Option<(u64, u64)>,
        block: Option<(&str, u64)>,
    ) {
        let Some(upload) = self.map.get_mut(&id) else {
            return;
        };
        upload.writers = upload.writers.saturating_sub(1);
        upload.touch();
        if let Some(range) = range {
            add_range(&mut upload.ranges, range);
        }
        if let Some((block_id, len)) = block
            && let Some(old) = upload.blocks.insert(block_id.to_owned(), len)
        {
            // The same block id again replaced the file: it is charged once.
            upload.block_bytes = upload.block_bytes.saturating_sub(old);
        }
    }

    /// Ends an assembly of `len` bytes; on success the staged blocks are gone.
    pub(super) fn end_assembly(&mut self, id: EntryId, len: u64, assembled: bool) {
        let Some(upload) = self.map.get_mut(&id) else {
            return;
        };
        upload.writers = upload.writers.saturating_sub(1);
        upload.touch();
        if assembled {
            upload.ranges = if len > 0 { vec![(0, len)] } else { Vec::new() };
            upload.blocks.clear();
            upload.block_bytes = 0;
        }
    }

    pub(super) fn insert(&mut self, id: EntryId, upload: Upload) {
        self.map.insert(id, upload);
    }

    /// Refuses when the uploads other than `id`, plus `charge` for `id`, pass the limit.
    fn check_bytes(&self, id: Option<EntryId>, charge: u64) -> Result<(), StoreError> {
        let others: u64 = self
            .map
            .iter()
            .filter(|(other, _)| Some(**other) != id)
            .map(|(_, upload)| upload.charge())
            .fold(0, u64::saturating_add);
        if others.saturating_add(charge) > self.limits.bytes {
            return Err(StoreError::UploadSpace {
                requested: charge,
                in_progress: others,
                limit: self.limits.bytes,
            });
        }
        Ok(())
    }
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
