//! GitHub's restore matching over an [`S3Store`]'s commit markers, scope by scope as
//! [`crate::select_entry`] does it in memory: for each scope (the job's own ref, each fallback
//! ref, then the unscoped entries), for each key, an exact marker first, then the newest marker
//! under the key's prefix. Exact matches are single GETs and prefix matches one
//! listing each, so no lookup reads every marker of a repository.
//!
//! Must not: write anything.

use super::{S3Store, second};
use crate::auth::RefScope;
use crate::store::{Entry, StoreError};

impl S3Store {
    pub(super) async fn lookup_by_scope(
        &self,
        repository: &str,
        refs: Option<&RefScope>,
        keys: &[String],
        version: &str,
    ) -> Result<Option<Entry>, StoreError> {
        // The scopes in search order, the unscoped layout last (see `select_entry`).
        let scopes = RefScope::scopes_of(refs);
        for scope in scopes {
            for key in keys {
                let exact = self.marker_name(repository, scope, version, key);
                let mut found = self.read_marker(&exact).await?.map(|m| m.entry());
                if found.is_none() {
                    let stem = self.marker_stem(repository, scope, version, key);
                    found = self.newest_with_prefix(repository, scope, &stem).await?;
                }
                // A marker's name is derived from its content, so this only guards against a
                // marker someone copied by hand.
                if let Some(entry) = found.filter(|e| {
                    e.repository == repository
                        && e.git_ref.as_deref() == scope
                        && e.version == version
                        && e.key.starts_with(key.as_str())
                }) {
                    return Ok(Some(entry));
                }
            }
        }
        Ok(None)
    }

    /// The newest committed entry of `git_ref`'s scope among the markers under `stem` (a key
    /// prefix).
    async fn newest_with_prefix(
        &self,
        repository: &str,
        git_ref: Option<&str>,
        stem: &str,
    ) -> Result<Option<Entry>, StoreError> {
        let markers: Vec<(String, String)> = self
            .list_objects(stem)
            .await?
            .into_iter()
            .filter(|(name, _)| name.ends_with('~'))
            .collect();
        // Last-modified narrows the candidates (second precision on some servers); the
        // marker's own sequence number decides among those.
        let Some(newest) = markers.iter().map(|(_, modified)| second(modified)).max() else {
            return Ok(None);
        };
        let mut best: Option<Entry> = None;
        for (name, _) in markers.iter().filter(|(_, m)| second(m) == newest) {
            if let Some(marker) = self.read_marker(name).await? {
                keep_newer(&mut best, marker.entry(), repository, git_ref);
            }
        }
        Ok(best)
    }
}

/// Replaces `best` by `entry` when `entry` belongs to the scope and is newer.
fn keep_newer(best: &mut Option<Entry>, entry: Entry, repository: &str, git_ref: Option<&str>) {
    let in_scope = entry.repository == repository && entry.git_ref.as_deref() == git_ref;
    if in_scope
        && best
            .as_ref()
            .is_none_or(|b| entry.created_seq > b.created_seq)
    {
        *best = Some(entry);
    }
}
