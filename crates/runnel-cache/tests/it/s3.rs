//! The S3 store against a real S3 server (versitygw, built by `tests/s3/build.sh` and started by
//! `tests/s3/start.sh`; slow: `RUN_SLOW_TESTS=1`). The protocol cases of the disk store run
//! unchanged over it, and two stores on one bucket share entries as two hosts would.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use runnel_cache::{ByteStream, PruneRules, S3Store, S3StoreConfig, Store, StoreError};

use crate::harness::{Harness, OTHER_REPO_TOKEN, TOKEN, identity, main_refs, restore_v1, save_v1};

fn slow_tests_enabled() -> bool {
    std::env::var("RUN_SLOW_TESTS").is_ok_and(|v| v == "1")
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/s3")
}

/// A versitygw instance, stopped on drop.
pub(crate) struct S3Server {
    name: String,
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
}

impl S3Server {
    /// Starts a fresh instance; panics with the script's output when it cannot (a missing Go
    /// toolchain or module proxy included: slow tests must fail, not skip).
    pub(crate) fn start() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "cache-it-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let output = std::process::Command::new("bash")
            .arg(scripts().join("start.sh"))
            .arg(&name)
            .output()
            .expect("run tests/s3/start.sh");
        assert!(
            output.status.success(),
            "tests/s3/start.sh could not start versitygw (it needs Go and the module proxy):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let env_file = stdout.lines().last().unwrap_or_default().trim().to_owned();
        let text = std::fs::read_to_string(&env_file).expect("read the S3 env file");
        let get = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} missing in {env_file}"))
                .to_owned()
        };
        Self {
            endpoint: get("S3_ENDPOINT"),
            bucket: get("S3_BUCKET"),
            access_key: get("AWS_ACCESS_KEY_ID"),
            secret_key: get("AWS_SECRET_ACCESS_KEY"),
            name,
        }
    }

    pub(crate) fn config(
        &self,
        prefix: &str,
        staging: &Path,
        max_entry_size: u64,
    ) -> S3StoreConfig {
        S3StoreConfig {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: "us-east-1".to_owned(),
            prefix: prefix.to_owned(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            staging_dir: staging.to_path_buf(),
            max_entry_size,
        }
    }

    pub(crate) async fn store(&self, prefix: &str, staging: &Path, max: u64) -> S3Store {
        S3Store::open(self.config(prefix, staging, max))
            .await
            .expect("open the S3 store")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(scripts().join("stop.sh"))
            .arg(&self.name)
            .output();
    }
}

async fn s3_harness(
    server: &S3Server,
    prefix: &str,
    size_limit: u64,
) -> (Harness, tempfile::TempDir) {
    let staging = tempfile::tempdir().expect("temp dir");
    let store = server.store(prefix, staging.path(), size_limit).await;
    (
        Harness::with_store(Arc::new(store), size_limit).await,
        staging,
    )
}

#[tokio::test]
async fn protocol_cases_of_the_disk_store_pass_on_s3() {
    if !slow_tests_enabled() {
        return;
    }
    let server = S3Server::start();
    // (name, size limit, case): the same functions the disk store's tests run.
    type Case = for<'a> fn(&'a Harness) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>;
    let cases: [(&str, u64, Case); 6] = [
        ("v1 matching", 64 << 20, |h| {
            Box::pin(crate::v1::save_then_restore_with_github_matching_on(h))
        }),
        ("v1 truncated", 1 << 20, |h| {
            Box::pin(crate::v1::truncated_upload_is_not_recorded_on(h))
        }),
        ("v1 bad requests", 1000, |h| {
            Box::pin(crate::v1::bad_requests_get_clear_errors_and_corrupt_nothing_on(h))
        }),
        ("v2 uploads", 1 << 20, |h| {
            Box::pin(crate::v2::single_shot_and_block_uploads_round_trip_on(h))
        }),
        ("v2 refusals", 1 << 20, |h| {
            Box::pin(crate::v2::v2_refusals_on(h))
        }),
        ("isolation by ref", 1 << 20, |h| {
            Box::pin(crate::scopes::isolation_by_ref_on(h))
        }),
    ];
    for (index, (name, limit, case)) in cases.into_iter().enumerate() {
        eprintln!("case: {name}");
        let (h, _staging) = s3_harness(&server, &format!("case-{index}/"), limit).await;
        case(&h).await;
    }
}

#[tokio::test]
async fn keys_with_dot_dot_and_long_keys_round_trip_on_s3() {
    if !slow_tests_enabled() {
        return;
    }
    let server = S3Server::start();
    let (h, _staging) = s3_harness(&server, "keys/", 1 << 20).await;
    let long = format!("{}-tail", "ü/x".repeat(150));
    for key in ["../../etc/passwd", ".", "a b;c%d~e", long.as_str()] {
        save_v1(&h, TOKEN, key, "v1", key.as_bytes()).await;
        let hit = restore_v1(&h, TOKEN, &[key], "v1").await;
        assert_eq!(
            hit,
            Some((key.to_owned(), key.as_bytes().to_vec())),
            "{key}"
        );
    }
    // A prefix that ends inside an escape or a segment still finds the long key.
    let hit = restore_v1(&h, TOKEN, &["nothing", &long[..302]], "v1").await;
    assert_eq!(hit.map(|(key, _)| key), Some(long.clone()));
}

/// `cache.repo_size_limit` on S3: a bucket keeps no last use, so each repository's oldest
/// entries go first; other repositories keep theirs.
#[tokio::test]
async fn the_eviction_sweep_caps_each_repository_on_s3() {
    if !slow_tests_enabled() {
        return;
    }
    let server = S3Server::start();
    let staging = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(server.store("evict/", staging.path(), 1 << 20).await);
    let h = Harness::with_store(store.clone(), 1 << 20).await;
    save_v1(&h, TOKEN, "first", "v1", &[1; 100]).await;
    save_v1(&h, TOKEN, "second", "v1", &[2; 100]).await;
    save_v1(&h, OTHER_REPO_TOKEN, "theirs", "v1", &[3; 100]).await;
    let rules = PruneRules {
        max_repo_size: Some(150),
        ..PruneRules::default()
    };
    let removed = Store::prune(store.as_ref(), rules).await.expect("prune");
    let removed: Vec<&str> = removed.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(removed, ["first"]);
    assert_eq!(restore_v1(&h, TOKEN, &["first"], "v1").await, None);
    assert!(restore_v1(&h, TOKEN, &["second"], "v1").await.is_some());
    assert!(
        restore_v1(&h, OTHER_REPO_TOKEN, &["theirs"], "v1")
            .await
            .is_some()
    );
}

fn body(data: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::iter(
        data.chunks(3 << 20)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    ))
}

async fn save(store: &S3Store, job: &str, key: &str, data: Vec<u8>) -> Result<u64, StoreError> {
    let owner = identity("owner/repo", job);
    let id = store.reserve(&owner, key, "v1", None).await?;
    let len = data.len() as u64;
    store.write_range(&owner, id, 0, len, body(data)).await?;
    Ok(store.commit(&owner, id, len).await?.id)
}

async fn restore(store: &S3Store, keys: &[&str]) -> Option<(String, Vec<u8>)> {
    let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    let entry = store
        .lookup("owner/repo", Some(&main_refs()), &keys, "v1")
        .await
        .expect("lookup")?;
    let (size, mut stream) = store.read(entry.id).await.expect("read");
    let mut data = Vec::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        data.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(size, data.len() as u64);
    Some((entry.key, data))
}

#[tokio::test]
async fn two_stores_on_one_bucket_share_entries_and_the_first_commit_wins() {
    if !slow_tests_enabled() {
        return;
    }
    let server = S3Server::start();
    let (staging_a, staging_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = server.store("shared/", staging_a.path(), 1 << 30).await;
    let b = server.store("shared/", staging_b.path(), 1 << 30).await;

    // Saved through one host, restored through the other; a large one goes up in parts.
    let large: Vec<u8> = (0..(70u32 << 20)).map(|i| (i % 253) as u8).collect();
    save(&a, "1", "deps-large", large.clone())
        .await
        .expect("save large");
    assert_eq!(
        restore(&b, &["deps-large"]).await,
        Some(("deps-large".to_owned(), large))
    );
    save(&b, "2", "deps-small", b"small".to_vec())
        .await
        .expect("save small");
    assert_eq!(
        restore(&a, &["deps-none", "deps-"]).await.map(|(k, _)| k),
        Some("deps-small".to_owned()),
        "restore keys pick the newest prefix match across hosts"
    );

    // Both hosts upload the same key at once: one commit wins, the other is a conflict, and
    // the entry stays the winner's.
    let owner = identity("owner/repo", "3");
    let id_a = a
        .reserve(&owner, "race", "v1", None)
        .await
        .expect("reserve a");
    let id_b = b
        .reserve(&owner, "race", "v1", None)
        .await
        .expect("reserve b");
    a.write_range(&owner, id_a, 0, 1, body(b"A".to_vec()))
        .await
        .expect("write a");
    b.write_range(&owner, id_b, 0, 1, body(b"B".to_vec()))
        .await
        .expect("write b");
    let (first, second) = tokio::join!(a.commit(&owner, id_a, 1), b.commit(&owner, id_b, 1));
    let winner = match (first, second) {
        (Ok(_), Err(StoreError::Conflict { .. })) => b"A".to_vec(),
        (Err(StoreError::Conflict { .. }), Ok(_)) => b"B".to_vec(),
        other => panic!("expected one commit and one conflict, got {other:?}"),
    };
    assert_eq!(
        restore(&a, &["race"]).await.map(|(_, d)| d),
        Some(winner.clone())
    );
    assert_eq!(restore(&b, &["race"]).await.map(|(_, d)| d), Some(winner));
    // A committed key cannot be reserved again anywhere.
    assert!(matches!(
        b.reserve(&owner, "race", "v1", None).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(a.list("owner/repo", None).await.expect("list").len(), 3);
    assert!(a.list("owner/other", None).await.expect("list").is_empty());
}
