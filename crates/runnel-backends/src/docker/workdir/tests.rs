use std::path::Path;

use super::{HostIo, HostWorkDir, cleanup};

fn work_dir(root: &Path) -> HostWorkDir {
    match HostWorkDir::create(root, "t", &["_temp", "workspace"]) {
        Ok(work_dir) => work_dir,
        Err(error) => panic!("create: {error}"),
    }
}

async fn read(work_dir: &HostWorkDir, path: &str) -> Option<Option<Vec<u8>>> {
    match work_dir.read(path).await {
        Ok(HostIo::Done(contents)) => Some(contents),
        Ok(HostIo::UseArchive) => None,
        Err(error) => panic!("read {path}: {error}"),
    }
}

async fn write(work_dir: &HostWorkDir, path: &str, contents: &[u8]) -> bool {
    match work_dir.write(path, contents, 0o644).await {
        Ok(HostIo::Done(())) => true,
        Ok(HostIo::UseArchive) => false,
        Err(error) => panic!("write {path}: {error}"),
    }
}

#[tokio::test]
async fn files_round_trip_and_parents_are_created() {
    let root = tempfile::tempdir().expect("test setup");
    let work_dir = work_dir(root.path());
    assert!(write(&work_dir, "/__w/_temp/a/b/out.txt", b"hello").await);
    assert_eq!(
        read(&work_dir, "/__w/_temp/a/b/out.txt").await,
        Some(Some(b"hello".to_vec()))
    );
    assert!(write(&work_dir, "/github/home/.profile", b"x").await);
    assert_eq!(read(&work_dir, "/__w/_temp/missing").await, Some(None));
    assert_eq!(read(&work_dir, "/__w/_temp/no/such/dir").await, Some(None));
    assert!(
        work_dir.read("/__w/_temp/a").await.is_err(),
        "a directory is not a file"
    );
    let mode = std::fs::metadata(work_dir.job_dir.join("w/_temp"))
        .map(|meta| std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777);
    assert_eq!(mode.ok(), Some(0o1777));
}

#[tokio::test]
async fn other_paths_go_through_the_archive_api() {
    let root = tempfile::tempdir().expect("test setup");
    let mut work_dir = work_dir(root.path());
    work_dir.shadow("/__w/workspace");
    for path in [
        "/tmp/x",
        "/__wx/y",
        "/__w/workspace/file",
        "/__w/_temp/../../etc/passwd",
        "/__w/_temp//x",
        "/__w/./x",
    ] {
        assert_eq!(read(&work_dir, path).await, None, "{path}");
        assert!(!write(&work_dir, path, b"").await, "{path}");
    }
}

#[tokio::test]
async fn symlinks_planted_by_steps_are_never_followed_here() {
    let root = tempfile::tempdir().expect("test setup");
    let outside = tempfile::tempdir().expect("test setup");
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"secret").expect("test setup");
    let work_dir = work_dir(root.path());
    let temp = work_dir.job_dir.join("w/_temp");
    std::os::unix::fs::symlink(&secret, temp.join("output")).expect("test setup");
    std::os::unix::fs::symlink(outside.path(), temp.join("dir")).expect("test setup");
    // Reading through a link is the archive API's job (it resolves inside the container).
    assert_eq!(read(&work_dir, "/__w/_temp/output").await, None);
    assert_eq!(read(&work_dir, "/__w/_temp/dir/secret").await, None);
    assert!(!write(&work_dir, "/__w/_temp/dir/secret", b"pwned").await);
    // Writing replaces the link instead of writing through it.
    assert!(write(&work_dir, "/__w/_temp/output", b"new").await);
    assert_eq!(std::fs::read(&secret).expect("test setup"), b"secret");
    assert_eq!(
        read(&work_dir, "/__w/_temp/output").await,
        Some(Some(b"new".to_vec()))
    );
    // A fifo does not hang the reader.
    nix::unistd::mkfifo(
        &temp.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("test setup");
    assert!(work_dir.read("/__w/_temp/fifo").await.is_err());
    assert!(work_dir.remove().await.is_ok());
    assert!(secret.exists(), "removal does not follow links");
    assert!(!work_dir.job_dir.exists());
}

#[test]
fn directories_of_dead_runners_are_removed() {
    let root = tempfile::tempdir().expect("test setup");
    let (pid, start) = super::leftovers::this_runner();
    let mine = root.path().join(format!("runnel-pod-{pid}-{start}-a"));
    // A pid that cannot exist (above the kernel's pid_max limit of 2^22).
    let dead = root.path().join("runnel-pod-4194305-1-b");
    let reused = root.path().join(format!("runnel-pod-{pid}-1-c"));
    let unrelated = root.path().join("runnel-other");
    for dir in [&mine, &dead, &reused, &unrelated] {
        std::fs::create_dir_all(dir.join("w")).expect("test setup");
    }
    let mut removed = cleanup(root.path());
    removed.sort();
    let mut expected = vec![dead, reused];
    expected.sort();
    assert_eq!(removed, expected);
    assert!(mine.exists() && unrelated.exists());
}
