//! Several stores open on one directory at once, as a daemon and parallel `runnel run`s are:
//! each store here has its own index lock and upload session, exactly as separate processes
//! would (a `flock` belongs to an open file, not to a process).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use runnel_cache::{DiskStore, DiskStoreConfig, PruneRules, Store, StoreError};

use crate::harness::{identity, main_refs};

async fn open(dir: &std::path::Path, limit: u64) -> DiskStore {
    DiskStore::open(DiskStoreConfig::new(dir.to_path_buf(), limit))
        .await
        .expect("open the disk store")
}

fn body(bytes: Vec<u8>) -> runnel_cache::ByteStream {
    Box::pin(stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes))]))
}

/// Reserve, write and commit `data` under `key` as job `job` of `owner/repo`.
async fn save(store: &DiskStore, job: &str, key: &str, data: &[u8]) -> Result<u64, StoreError> {
    let owner = identity("owner/repo", job);
    let id = store.reserve(&owner, key, "v1", None).await?;
    let len = data.len() as u64;
    store
        .write_range(&owner, id, 0, len, body(data.to_vec()))
        .await?;
    store.commit(&owner, id, len).await?;
    Ok(id)
}

async fn restore(store: &DiskStore, key: &str) -> Option<Vec<u8>> {
    let entry = store
        .lookup("owner/repo", Some(&main_refs()), &[key.to_owned()], "v1")
        .await
        .expect("lookup")?;
    let (_, mut stream) = store.read(entry.id).await.expect("read");
    let mut out = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        out.extend_from_slice(&chunk.expect("chunk"));
    }
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_directory_save_concurrently_and_see_each_others_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = Arc::new(open(dir.path(), 1 << 30).await);
    let b = Arc::new(open(dir.path(), 1 << 30).await);
    let mut tasks = Vec::new();
    for (name, store) in [("a", a.clone()), ("b", b.clone())] {
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..40 {
                let key = format!("{name}-{i}");
                let data = format!("data of {key}").repeat(100);
                ids.push(save(&store, name, &key, data.as_bytes()).await.expect(&key));
                // Reads touch the index too (last use).
                assert!(restore(&store, &key).await.is_some(), "{key}");
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("task"));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 80, "ids are unique across stores");
    // Each store sees the other's entries, and so does a store opened afterwards.
    let c = open(dir.path(), 1 << 30).await;
    for store in [&*a, &*b, &c] {
        for name in ["a", "b"] {
            for i in [0, 17, 39] {
                let key = format!("{name}-{i}");
                let want = format!("data of {key}").repeat(100).into_bytes();
                assert_eq!(restore(store, &key).await, Some(want), "{key}");
            }
        }
    }
    assert_eq!(c.entries().await.expect("entries").len(), 80);
    let files = std::fs::read_dir(dir.path().join("entries"))
        .expect("list")
        .count();
    assert_eq!(files, 80);
}

#[tokio::test]
async fn opening_a_second_store_keeps_the_first_ones_upload_in_progress() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = open(dir.path(), 1 << 20).await;
    let owner = identity("owner/repo", "a");
    let id = a.reserve(&owner, "k", "v1", None).await.expect("reserve");
    a.write_range(&owner, id, 0, 3, body(b"abc".to_vec()))
        .await
        .expect("first half");
    // A second process starts (and sweeps what dead processes left) mid-upload.
    let b = open(dir.path(), 1 << 20).await;
    a.write_range(&owner, id, 3, 3, body(b"def".to_vec()))
        .await
        .expect("second half");
    a.commit(&owner, id, 6).await.expect("commit");
    assert_eq!(restore(&b, "k").await, Some(b"abcdef".to_vec()));
}

#[tokio::test]
async fn the_same_key_from_two_stores_keeps_the_first_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = open(dir.path(), 1 << 20).await;
    let b = open(dir.path(), 1 << 20).await;
    let (ja, jb) = (identity("owner/repo", "a"), identity("owner/repo", "b"));
    // Reservations are per store, so both may upload; the first commit wins.
    let ida = a.reserve(&ja, "k", "v1", None).await.expect("reserve a");
    let idb = b.reserve(&jb, "k", "v1", None).await.expect("reserve b");
    assert_ne!(ida, idb);
    a.write_range(&ja, ida, 0, 5, body(b"first".to_vec()))
        .await
        .expect("write a");
    b.write_range(&jb, idb, 0, 6, body(b"second".to_vec()))
        .await
        .expect("write b");
    a.commit(&ja, ida, 5).await.expect("commit a");
    let refused = b.commit(&jb, idb, 6).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(restore(&b, "k").await, Some(b"first".to_vec()));
    // A later reserve of the committed key is refused in both.
    assert!(matches!(
        b.reserve(&jb, "k", "v1", None).await,
        Err(StoreError::Conflict { .. })
    ));
}

#[tokio::test]
async fn a_dead_stores_uploads_are_removed_when_another_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let uploads = dir.path().join("uploads");
    // What a killed process leaves: a session directory whose lock nobody holds, and a file
    // of the older flat layout.
    std::fs::create_dir_all(uploads.join("deadbeef")).expect("mkdir");
    std::fs::write(uploads.join("deadbeef/7"), b"partial").expect("write");
    std::fs::write(uploads.join("deadbeef.lock"), b"").expect("write");
    std::fs::write(uploads.join("12"), b"old layout").expect("write");
    let live = open(dir.path(), 1 << 20).await;
    let _again = open(dir.path(), 1 << 20).await;
    let mut left: Vec<String> = std::fs::read_dir(&uploads)
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left.len(),
        4,
        "two live sessions, each a dir and a lock: {left:?}"
    );
    assert!(!left.iter().any(|n| n.starts_with("deadbeef") || n == "12"));
    drop(live);
    drop(_again);
    let left = std::fs::read_dir(&uploads).expect("list").count();
    assert_eq!(left, 0, "a closed store removes its session");
}

#[tokio::test]
async fn remove_and_prune_are_seen_by_another_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = open(dir.path(), 1 << 20).await;
    let b = open(dir.path(), 1 << 20).await;
    let one = save(&a, "a", "one", &[1u8; 100]).await.expect("save");
    save(&a, "a", "two", &[2u8; 100]).await.expect("save");
    save(&a, "a", "three", &[3u8; 100]).await.expect("save");
    let removed = b.remove(&[one, 999]).await.expect("remove");
    assert_eq!(removed.len(), 1);
    assert_eq!(restore(&a, "one").await, None);
    // "two" is used, so "three" is the least recently used one.
    assert!(restore(&a, "two").await.is_some());
    let pruned = b
        .prune(PruneRules {
            older_than: None,
            max_repo_size: None,
            max_size: Some(150),
        })
        .await
        .expect("prune");
    let keys: Vec<_> = pruned.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["three"]);
    let pruned = b
        .prune(PruneRules {
            older_than: Some(std::time::Duration::ZERO),
            max_repo_size: None,
            max_size: None,
        })
        .await;
    // Everything was used before now.
    assert_eq!(pruned.expect("prune").len(), 1);
    assert!(a.entries().await.expect("entries").is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("entries"))
            .expect("list")
            .count(),
        0
    );
}
