//! `runnel cache ls|rm|prune`: look at and manage the entries of a cache — a directory (the
//! one `runnel run` uses by default, `--dir`, or `cache.dir` of `-c config.yaml`) or an S3
//! bucket (`--s3`, or `cache.s3` of `-c`). `ls` shows each entry's git ref: the scope it was
//! saved in, which decides which jobs restore it. Safe while a daemon or a `runnel run` uses
//! the same cache: the disk store takes its index lock, the S3 store removes commit markers
//! before archives.
//!
//! Wiring and printing only: the stores are `runnel_cache::DiskStore` and `S3Store`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use runnel_cache::{DiskStore, DiskStoreConfig, Entry, EntryId, EntryInfo, PruneRules, S3Store};
use serde_json::json;

use crate::Outcome;
use crate::args::{CacheArgs, CacheCommand, CacheDirArgs, Format};

pub(crate) fn run(args: &CacheArgs) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async {
        match &args.command {
            CacheCommand::Ls(a) => ls(&a.dir, a.repo.as_deref(), a.key.as_deref(), a.format).await,
            CacheCommand::Rm(a) => rm(&a.dir, a.repo.as_deref(), &a.keys, &a.ids).await,
            CacheCommand::Prune(a) => {
                let rules = PruneRules {
                    older_than: a.older_than,
                    max_repo_size: None,
                    max_size: a.max_size,
                };
                if rules.older_than.is_none() && rules.max_size.is_none() {
                    bail!("nothing to prune by: give --older-than and/or --max-size");
                }
                prune(&a.dir, rules).await
            }
        }
    })
}

/// The cache the arguments name.
enum Managed {
    Disk(Box<DiskStore>),
    /// The bucket, and the scratch directory the store wants for uploads (never used here).
    S3 {
        store: Box<S3Store>,
        _scratch: ScratchDir,
    },
}

/// Removed on drop.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Managed {
    async fn entries(&self) -> Result<Vec<EntryInfo>> {
        Ok(match self {
            Managed::Disk(store) => store.entries().await?,
            Managed::S3 { store, .. } => store.entries().await?,
        })
    }

    async fn remove(&self, ids: &[EntryId]) -> Result<Vec<Entry>> {
        Ok(match self {
            Managed::Disk(store) => store.remove(ids).await?,
            Managed::S3 { store, .. } => store.remove(ids).await?,
        })
    }

    async fn prune(&self, rules: PruneRules) -> Result<Vec<Entry>> {
        Ok(match self {
            Managed::Disk(store) => store.prune(rules).await?,
            Managed::S3 { store, .. } => store.prune(rules).await?,
        })
    }
}

/// Where the cache is: `--s3`, else `-c`'s `cache.s3` or `cache.dir`, else `--dir`, else
/// `runnel run`'s directory.
enum Location {
    Dir(PathBuf),
    S3(runnel_config::S3Section),
}

fn location(args: &CacheDirArgs) -> Result<Location> {
    if let Some(url) = &args.s3 {
        return Ok(Location::S3(crate::common::s3_section(url)?));
    }
    if let Some(dir) = &args.dir {
        return Ok(Location::Dir(dir.clone()));
    }
    if let Some(path) = &args.config {
        let config = crate::common::load_config(path)?;
        return Ok(match config.cache.s3 {
            Some(s3) => Location::S3(s3),
            None => Location::Dir(runnel_assembly::grants::config_dir(&config)),
        });
    }
    Ok(Location::Dir(crate::common::default_cache_dir()))
}

/// The cache, or `None` when a directory holds no cache yet (nothing is created just to
/// look). Also names it for messages.
async fn open(args: &CacheDirArgs) -> Result<Option<(String, Managed)>> {
    match location(args)? {
        Location::Dir(dir) => {
            if !dir.join("index.json").exists() {
                return Ok(None);
            }
            // No limit: looking must not evict anything.
            let store = DiskStore::open(DiskStoreConfig::new(dir.clone(), u64::MAX))
                .await
                .with_context(|| format!("opening the cache in {}", dir.display()))?;
            Ok(Some((
                dir.display().to_string(),
                Managed::Disk(Box::new(store)),
            )))
        }
        Location::S3(s3) => {
            let name = format!("S3 {}/{}/{}", s3.endpoint, s3.bucket, s3.prefix);
            let scratch = ScratchDir(
                std::env::temp_dir().join(format!("runnel-cache-cmd-{}", std::process::id())),
            );
            let config = runnel_assembly::grants::s3_store_config(&s3, scratch.0.clone(), u64::MAX);
            let store = S3Store::open(config)
                .await
                .with_context(|| format!("opening the cache in {name}"))?;
            Ok(Some((
                name,
                Managed::S3 {
                    store: Box::new(store),
                    _scratch: scratch,
                },
            )))
        }
    }
}

async fn ls(
    args: &CacheDirArgs,
    repo: Option<&str>,
    key_prefix: Option<&str>,
    format: Format,
) -> Result<Outcome> {
    let entries: Vec<EntryInfo> = match open(args).await? {
        Some((_, store)) => store.entries().await?,
        None => Vec::new(),
    };
    let shown: Vec<&EntryInfo> = entries
        .iter()
        .filter(|info| repo.is_none_or(|r| info.entry.repository == r))
        .filter(|info| key_prefix.is_none_or(|p| info.entry.key.starts_with(p)))
        .collect();
    match format {
        Format::Json => {
            for info in shown {
                let e = &info.entry;
                println!(
                    "{}",
                    json!({
                        "id": e.id,
                        "repository": e.repository,
                        "ref": e.git_ref,
                        "key": e.key,
                        "version": e.version,
                        "size": e.size,
                        "created_at": runnel_cache::rfc3339_seconds(e.created_at_ms),
                        "last_used_at": runnel_cache::rfc3339_seconds(info.last_used_ms),
                    })
                );
            }
        }
        Format::Text => {
            if shown.is_empty() {
                println!("no cache entries");
                return Ok(Outcome::Success);
            }
            println!(
                "{:>6}  {:>9}  {:<20}  {:<20}  {:<24}  {:<20}  KEY",
                "ID", "SIZE", "LAST USED", "CREATED", "REPOSITORY", "REF"
            );
            let mut total = 0u64;
            for info in &shown {
                let e = &info.entry;
                total = total.saturating_add(e.size);
                println!(
                    "{:>6}  {:>9}  {:<20}  {:<20}  {:<24}  {:<20}  {}",
                    e.id,
                    human_size(e.size),
                    runnel_cache::rfc3339_seconds(info.last_used_ms),
                    runnel_cache::rfc3339_seconds(e.created_at_ms),
                    e.repository,
                    // Saved before scopes (or unscoped): every ref of the repository reads it.
                    e.git_ref.as_deref().unwrap_or(ANY_REF),
                    e.key
                );
            }
            println!("{} entries, {}", shown.len(), human_size(total));
        }
    }
    Ok(Outcome::Success)
}

/// The REF column of an entry without a ref.
const ANY_REF: &str = "(any ref)";

async fn rm(
    args: &CacheDirArgs,
    repo: Option<&str>,
    keys: &[String],
    ids: &[u64],
) -> Result<Outcome> {
    if keys.is_empty() && ids.is_empty() {
        bail!("name what to remove: KEY... and/or --id ID");
    }
    let Some((dir, store)) = open(args).await? else {
        bail!("no cache entry matches (no cache in this directory)");
    };
    let mut chosen: Vec<u64> = ids.to_vec();
    chosen.extend(
        store
            .entries()
            .await?
            .iter()
            .map(|info| &info.entry)
            .filter(|e| keys.contains(&e.key) && repo.is_none_or(|r| e.repository == r))
            .map(|e| e.id),
    );
    let removed = store
        .remove(&chosen)
        .await
        .with_context(|| format!("removing cache entries in {dir}"))?;
    print_removed(&removed);
    if removed.is_empty() {
        bail!("no cache entry matches");
    }
    Ok(Outcome::Success)
}

async fn prune(args: &CacheDirArgs, rules: PruneRules) -> Result<Outcome> {
    let Some((dir, store)) = open(args).await? else {
        println!("removed 0 entries, 0 B");
        return Ok(Outcome::Success);
    };
    let removed = store
        .prune(rules)
        .await
        .with_context(|| format!("pruning the cache in {dir}"))?;
    print_removed(&removed);
    Ok(Outcome::Success)
}

fn print_removed(removed: &[Entry]) {
    for e in removed {
        println!(
            "removed {} {} {} ({})",
            e.id,
            e.repository,
            e.key,
            human_size(e.size)
        );
    }
    let total: u64 = removed.iter().map(|e| e.size).sum();
    println!("removed {} entries, {}", removed.len(), human_size(total));
}

/// `1.5 GiB`, `12 KiB`, `17 B`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::human_size;

    // The durations `--older-than` takes are `runnel_config::DurationGrammar::AGE`'s, tested
    // with the grammar.
    #[test]
    fn sizes_and_times() {
        assert_eq!(human_size(17), "17 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(runnel_cache::rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            runnel_cache::rfc3339_seconds(1_795_999_949_000),
            "2026-11-30T00:52:29Z"
        );
    }
}
