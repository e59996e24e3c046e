//! Looking at and managing an [`S3Store`]'s entries from outside the protocols: what
//! `runnel cache ls|rm|prune` call when the cache is a bucket. The same shapes as the disk
//! store's (`EntryInfo`, `PruneRules`), with one difference: a bucket keeps no record of
//! restores, so an entry's "last use" is its creation and pruning goes oldest first.
//!
//! Removal deletes the commit marker first, then the archive: a lookup never finds a marker
//! whose archive is already gone (a restore that read the marker just before gets a 404 on
//! the download, which the client reports as a cache miss with a warning).
//!
//! Must not: print, or know the command line.

use futures_util::{StreamExt, TryStreamExt};

use crate::disk::EntryInfo;
use crate::store::{Entry, EntryId, PruneRules, StoreError};

use super::{S3Store, remote};
use crate::clock::now_ms;

/// Markers read at once while listing.
const CONCURRENT_READS: usize = 16;

impl S3Store {
    /// Every committed entry of every repository, oldest first.
    pub async fn entries(&self) -> Result<Vec<EntryInfo>, StoreError> {
        let names: Vec<String> = self
            .list_objects(&self.name("entries/"))
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.ends_with('~'))
            .collect();
        let markers: Vec<_> = futures_util::stream::iter(names)
            .map(|name| async move { self.read_marker(&name).await })
            .buffer_unordered(CONCURRENT_READS)
            .try_collect()
            .await?;
        let mut entries: Vec<EntryInfo> = markers
            .into_iter()
            .flatten()
            .map(|marker| {
                let entry = marker.entry();
                EntryInfo {
                    last_used_ms: entry.created_at_ms,
                    entry,
                }
            })
            .collect();
        entries.sort_by_key(|info| info.entry.created_seq);
        Ok(entries)
    }

    /// Removes the entries with these ids; returns those that existed.
    pub async fn remove(&self, ids: &[EntryId]) -> Result<Vec<Entry>, StoreError> {
        let chosen: Vec<Entry> = self
            .entries()
            .await?
            .into_iter()
            .map(|info| info.entry)
            .filter(|entry| ids.contains(&entry.id))
            .collect();
        self.delete_entries(chosen).await
    }

    /// Removes entries created longer ago than `rules.older_than` (S3 keeps no last use), then
    /// each repository's oldest until it holds at most `rules.max_repo_size`, then the oldest
    /// until the total is at most `rules.max_size`; returns the entries removed.
    pub async fn prune(&self, rules: PruneRules) -> Result<Vec<Entry>, StoreError> {
        let cutoff = rules
            .older_than
            .map(|age| now_ms().saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)));
        let mut kept: Vec<Entry> = Vec::new();
        let mut chosen: Vec<Entry> = Vec::new();
        for info in self.entries().await? {
            if cutoff.is_some_and(|cutoff| info.entry.created_at_ms < cutoff) {
                chosen.push(info.entry);
            } else {
                kept.push(info.entry);
            }
        }
        if let Some(limit) = rules.max_repo_size {
            // S3 keeps no last use: each repository's oldest entries go first.
            let mut totals: std::collections::BTreeMap<String, u64> =
                std::collections::BTreeMap::new();
            for entry in &kept {
                *totals.entry(entry.repository.clone()).or_default() += entry.size;
            }
            let (over, under): (Vec<Entry>, Vec<Entry>) = kept.into_iter().partition(|entry| {
                let total = totals.get_mut(&entry.repository);
                match total {
                    Some(total) if *total > limit => {
                        *total = total.saturating_sub(entry.size);
                        true
                    }
                    _ => false,
                }
            });
            chosen.extend(over);
            kept = under;
        }
        if let Some(limit) = rules.max_size {
            // `kept` is oldest first.
            let mut total: u64 = kept.iter().map(|e| e.size).sum();
            let mut kept = kept.into_iter();
            while total > limit {
                let Some(oldest) = kept.next() else { break };
                total = total.saturating_sub(oldest.size);
                chosen.push(oldest);
            }
        }
        self.delete_entries(chosen).await
    }

    async fn delete_entries(&self, entries: Vec<Entry>) -> Result<Vec<Entry>, StoreError> {
        for entry in &entries {
            let marker = self.marker_name(
                &entry.repository,
                entry.git_ref.as_deref(),
                &entry.version,
                &entry.key,
            );
            self.delete(&marker)
                .await
                .map_err(remote("removing", &marker))?;
            let data = self.data_name(entry.id);
            self.delete(&data)
                .await
                .map_err(remote("removing", &data))?;
            tracing::info!(id = entry.id, key = %entry.key, size = entry.size, "removed cache entry from S3");
        }
        Ok(entries)
    }
}
