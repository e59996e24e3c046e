//! Looking at and managing a [`DiskStore`]'s entries from outside the protocols: what
//! `runnel cache ls|rm|prune` call. Every change takes the index lock, so it is safe while a
//! daemon or a `runnel run` uses the same directory.
//!
//! Must not: print, or know the command line.

use crate::store::{Entry, EntryId, PruneRules, StoreError};

use super::{DiskStore, evict, remove_file_if_present};
use crate::clock::now_ms;

/// A committed entry with its last use, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryInfo {
    /// The entry.
    pub entry: Entry,
    /// When it was last restored (or created), ms since the Unix epoch.
    pub last_used_ms: u64,
}

impl DiskStore {
    /// Every committed entry of every repository, oldest first.
    pub async fn entries(&self) -> Result<Vec<EntryInfo>, StoreError> {
        let mut state = self.state.lock().await;
        self.refresh(&mut state).await?;
        let mut all: Vec<EntryInfo> = state
            .index
            .entries
            .values()
            .map(|record| EntryInfo {
                entry: record.entry(),
                last_used_ms: record.used_at_ms(),
            })
            .collect();
        all.sort_by_key(|info| info.entry.created_seq);
        Ok(all)
    }

    /// Removes the entries with these ids; returns those that existed.
    pub async fn remove(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StoreError> {
        self.remove_where(|index| {
            ids.iter()
                .filter_map(|id| index.entries.remove(id))
                .collect()
        })
        .await
    }

    /// Removes what `rules` select; returns the entries removed.
    pub async fn prune(&self, rules: PruneRules) -> Result<Vec<Entry>, StoreError> {
        let cutoff = rules
            .older_than
            .map(|age| now_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)));
        self.remove_where(|index| {
            let old: Vec<EntryId> = index
                .entries
                .values()
                .filter(|record| cutoff.is_some_and(|cutoff| record.used_at_ms() < cutoff))
                .map(|record| record.id)
                .collect();
            let mut removed: Vec<_> = old
                .iter()
                .filter_map(|id| index.entries.remove(id))
                .collect();
            if let Some(limit) = rules.max_repo_size {
                removed.extend(evict_per_repository(index, limit));
            }
            if let Some(limit) = rules.max_size {
                removed.extend(evict(index, limit, usize::MAX));
            }
            removed
        })
        .await
    }

    /// Applies `select` to the index under the lock, stores the index, then deletes the
    /// archives of the records `select` took out.
    async fn remove_where(
        &self,
        select: impl FnOnce(&mut super::Index) -> Vec<super::IndexRecord>,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut state = self.state.lock().await;
        let lock = self.lock_index(&mut state).await?;
        let removed = select(&mut state.index);
        if !removed.is_empty() {
            self.files.store(&state.index, &lock).await?;
        }
        drop(lock);
        drop(state);
        for record in &removed {
            remove_file_if_present(&self.entry_path(record.id)).await?;
        }
        Ok(removed.iter().map(super::IndexRecord::entry).collect())
    }
}

/// Each repository's least recently used entries out until its entries hold at most `limit`
/// bytes (an entry larger than the limit on its own goes too).
fn evict_per_repository(index: &mut super::Index, limit: u64) -> Vec<super::IndexRecord> {
    let mut by_repository: std::collections::BTreeMap<&str, Vec<(u64, EntryId, u64)>> =
        std::collections::BTreeMap::new();
    for record in index.entries.values() {
        by_repository
            .entry(record.repository.as_str())
            .or_default()
            .push((record.last_used, record.id, record.size));
    }
    let mut chosen = Vec::new();
    for (repository, mut records) in by_repository {
        let mut total: u64 = records.iter().map(|(_, _, size)| size).sum();
        records.sort_unstable();
        for (_, id, size) in records {
            if total <= limit {
                break;
            }
            total = total.saturating_sub(size);
            tracing::info!(
                id,
                repository,
                size,
                limit,
                "evicting cache entry over the repository's size limit"
            );
            chosen.push(id);
        }
    }
    chosen
        .iter()
        .filter_map(|id| index.entries.remove(id))
        .collect()
}
