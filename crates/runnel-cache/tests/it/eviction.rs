//! The sweep of `cache.retention` and `cache.repo_size_limit`: entries nobody used within the
//! retention go, then each repository's least recently used entries until it fits its limit;
//! other repositories are not touched. Through the store ([`Store::prune`]) and through the
//! server's timer.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use runnel_cache::{DiskStore, DiskStoreConfig, PruneRules, Store};

use crate::harness::{Harness, OTHER_REPO_TOKEN, TOKEN, identity, main_refs, restore_v1, save_v1};

async fn save(store: &DiskStore, repository: &str, key: &str, size: usize) {
    let owner = identity(repository, "1");
    let id = store
        .reserve(&owner, key, "v1", None)
        .await
        .expect("reserve");
    let body: runnel_cache::ByteStream = Box::pin(stream::iter([Ok::<_, std::io::Error>(
        Bytes::from(vec![7u8; size]),
    )]));
    let len = size as u64;
    store
        .write_range(&owner, id, 0, len, body)
        .await
        .expect("write");
    store.commit(&owner, id, len).await.expect("commit");
}

/// A use, as a restore is: lookup, then read.
async fn restore(store: &DiskStore, repository: &str, key: &str) -> bool {
    let Some(entry) = store
        .lookup(repository, Some(&main_refs()), &[key.to_owned()], "v1")
        .await
        .expect("lookup")
    else {
        return false;
    };
    let (_, _archive) = store.read(entry.id).await.expect("read");
    true
}

fn keys(entries: &[runnel_cache::Entry]) -> Vec<String> {
    let mut keys: Vec<String> = entries
        .iter()
        .map(|e| format!("{}:{}", e.repository, e.key))
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn each_repository_keeps_its_most_recently_used_entries_within_its_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(DiskStoreConfig::new(dir.path().to_path_buf(), 1 << 20))
        .await
        .expect("open");
    for key in ["one", "two", "three"] {
        save(&store, "owner/repo", key, 100).await;
    }
    save(&store, "owner/other", "big", 250).await;
    save(&store, "owner/small", "only", 100).await;
    // "one" was saved first but restored since: "two" and "three" are used least recently.
    assert!(restore(&store, "owner/repo", "one").await);
    let rules = PruneRules {
        max_repo_size: Some(150),
        ..PruneRules::default()
    };
    let removed = Store::prune(&store, rules).await.expect("prune");
    // A single entry over the limit goes too (it can never fit); a repository within its
    // limit keeps everything.
    assert_eq!(
        keys(&removed),
        ["owner/other:big", "owner/repo:three", "owner/repo:two"]
    );
    assert!(restore(&store, "owner/repo", "one").await);
    assert!(restore(&store, "owner/small", "only").await);
    assert!(Store::prune(&store, rules).await.expect("again").is_empty());
}

#[tokio::test]
async fn entries_not_used_within_the_retention_are_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(DiskStoreConfig::new(dir.path().to_path_buf(), 1 << 20))
        .await
        .expect("open");
    save(&store, "owner/repo", "stale", 10).await;
    save(&store, "owner/repo", "restored", 10).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(restore(&store, "owner/repo", "restored").await);
    save(&store, "owner/repo", "fresh", 10).await;
    let rules = PruneRules {
        older_than: Some(Duration::from_millis(1000)),
        ..PruneRules::default()
    };
    let removed = Store::prune(&store, rules).await.expect("prune");
    assert_eq!(keys(&removed), ["owner/repo:stale"], "only last use counts");
}

#[tokio::test]
async fn the_server_sweeps_on_its_timer() {
    let h = Harness::custom(
        1 << 20,
        |_| {},
        |server| {
            server.eviction = PruneRules {
                older_than: Some(Duration::from_millis(1000)),
                max_repo_size: Some(150),
                max_size: None,
            };
            server.eviction_interval = Duration::from_millis(100);
        },
    )
    .await;
    save_v1(&h, TOKEN, "first", "v1", &[1; 100]).await;
    save_v1(&h, TOKEN, "second", "v1", &[2; 100]).await;
    save_v1(&h, OTHER_REPO_TOKEN, "theirs", "v1", &[3; 100]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Over the repository's limit: its least recently used entry went; the other repository
    // kept its own.
    assert_eq!(restore_v1(&h, TOKEN, &["first"], "v1").await, None);
    assert!(restore_v1(&h, TOKEN, &["second"], "v1").await.is_some());
    assert!(
        restore_v1(&h, OTHER_REPO_TOKEN, &["theirs"], "v1")
            .await
            .is_some()
    );
    // Then nobody uses them for longer than the retention.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(restore_v1(&h, TOKEN, &["second"], "v1").await, None);
    assert_eq!(
        restore_v1(&h, OTHER_REPO_TOKEN, &["theirs"], "v1").await,
        None
    );
}
