//! A job's own copy of the user's working tree (`runnel run` without `--bind`, act's default),
//! so that a step cannot change the tree the user works in: no planted `.git/hooks` or
//! `core.fsmonitor` for the user's next `git` command, no root-owned files left behind.
//!
//! What is copied is what act copies: every file that `.gitignore` (and `.git/info/exclude`)
//! does not exclude, `.git` included, so build outputs like `target/` or `node_modules/` stay
//! out. Symbolic links are copied as links, never followed (a link to a host file names a
//! path inside the container there). Regular files go through `std::fs::copy`, which on Linux
//! asks the kernel to copy (`copy_file_range`: a reflink on btrfs and XFS, no copy through
//! user space elsewhere); never hard links, which would write through to the user's files.
//!
//! Must not: follow a link, or write outside the target.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runnel_engine::backend::BackendError;

/// What a copy did, for the job's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CopyStats {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    pub(crate) took: Duration,
}

impl CopyStats {
    /// `1 234 files, 12.3 MB in 0.05 s`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} files, {:.1} MB in {:.2} s",
            self.files,
            self.bytes as f64 / 1_000_000.0,
            self.took.as_secs_f64()
        )
    }
}

/// One thing to copy, relative to the source.
enum Item {
    Directory(PathBuf),
    File(PathBuf),
    Link(PathBuf, PathBuf),
}

/// The tree under `source` that a job sees, parents before children.
fn walk(source: &Path) -> Result<Vec<Item>, BackendError> {
    let walker = ignore::WalkBuilder::new(source)
        .hidden(false)
        .ignore(false)
        .parents(false)
        .git_global(false)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(std::cmp::Ord::cmp)
        .build();
    let mut items = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|error| BackendError::Io {
            operation: format!("list the working tree {}", source.display()),
            source: std::io::Error::other(error),
        })?;
        let Ok(relative) = entry.path().strip_prefix(source) else {
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let relative = relative.to_path_buf();
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            items.push(Item::Directory(relative));
        } else if file_type.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(io("read link", entry.path()))?;
            items.push(Item::Link(relative, link));
        } else if file_type.is_file() {
            items.push(Item::File(relative));
        }
        // Sockets, FIFOs and devices are not part of a working tree a job needs.
    }
    Ok(items)
}

/// Copies the working tree at `source` into the existing directory `target`.
pub(crate) fn copy_tree(source: &Path, target: &Path) -> Result<CopyStats, BackendError> {
    let started = Instant::now();
    let mut stats = CopyStats::default();
    for item in walk(source)? {
        match item {
            Item::Directory(relative) => {
                let to = target.join(&relative);
                std::fs::create_dir(&to).map_err(io("create", &to))?;
                let mode = std::fs::metadata(source.join(&relative))
                    .map_err(io("stat", &source.join(&relative)))?
                    .permissions();
                std::fs::set_permissions(&to, mode).map_err(io("chmod", &to))?;
            }
            Item::Link(relative, link) => {
                let to = target.join(&relative);
                std::os::unix::fs::symlink(&link, &to).map_err(io("create link", &to))?;
            }
            Item::File(relative) => {
                let (from, to) = (source.join(&relative), target.join(&relative));
                stats.bytes += std::fs::copy(&from, &to).map_err(io("copy", &from))?;
                stats.files += 1;
            }
        }
    }
    stats.took = started.elapsed();
    Ok(stats)
}

/// The working tree at `source` as a tar whose entries are relative to it, for an engine
/// that cannot see this machine's files (the tar goes through Docker's archive API).
pub(crate) fn tar_tree(source: &Path) -> Result<(Vec<u8>, CopyStats), BackendError> {
    let started = Instant::now();
    let mut stats = CopyStats::default();
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for item in walk(source)? {
        let (relative, from) = match &item {
            Item::Directory(relative) | Item::File(relative) | Item::Link(relative, _) => {
                (relative, source.join(relative))
            }
        };
        if let Item::File(_) = item {
            stats.files += 1;
            stats.bytes += std::fs::symlink_metadata(&from)
                .map_err(io("stat", &from))?
                .len();
        }
        builder
            .append_path_with_name(&from, relative)
            .map_err(io("pack", &from))?;
    }
    let archive = builder
        .into_inner()
        .map_err(io("pack the working tree", source))?;
    stats.took = started.elapsed();
    Ok((archive, stats))
}

fn io(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackendError {
    let operation = format!("{operation} {}", path.display());
    move |source| BackendError::Io { operation, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for (path, text) in [
            ("README.md", "hello"),
            ("src/main.rs", "fn main() {}"),
            ("target/debug/big", "build output"),
            (".gitignore", "target/\n*.log\n"),
            ("notes.log", "ignored"),
            (".git/HEAD", "ref: refs/heads/main\n"),
            (".git/hooks/pre-commit.sample", "#!/bin/sh\n"),
            ("run.sh", "#!/bin/sh\necho run\n"),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("setup");
            std::fs::write(&path, text).expect("setup");
        }
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .expect("setup");
        std::os::unix::fs::symlink("/etc/passwd", root.join("passwd-link")).expect("setup");
        dir
    }

    #[test]
    fn copies_what_git_tracks_keeps_links_and_modes() {
        let source = tree();
        let target = tempfile::tempdir().expect("temp dir");
        let stats = copy_tree(source.path(), target.path()).expect("copy");
        let target = target.path();
        assert_eq!(
            std::fs::read_to_string(target.join("src/main.rs")).expect("copied"),
            "fn main() {}"
        );
        assert!(target.join(".git/HEAD").is_file());
        assert!(target.join(".gitignore").is_file());
        assert!(!target.join("target").exists());
        assert!(!target.join("notes.log").exists());
        let link = std::fs::read_link(target.join("passwd-link")).expect("a link");
        assert_eq!(link, Path::new("/etc/passwd"));
        let mode = std::fs::metadata(target.join("run.sh"))
            .expect("copied")
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o755);
        assert_eq!(stats.files, 6);
        // A copy, not a hard link: writing it leaves the source alone.
        std::fs::write(target.join("README.md"), "changed").expect("write");
        assert_eq!(
            std::fs::read_to_string(source.path().join("README.md")).expect("source"),
            "hello"
        );
    }

    #[test]
    fn the_tar_holds_the_same_tree() {
        let source = tree();
        let (archive, stats) = tar_tree(source.path()).expect("tar");
        let mut names: Vec<String> = tar::Archive::new(archive.as_slice())
            .entries()
            .expect("entries")
            .map(|entry| {
                let entry = entry.expect("entry");
                entry.path().expect("path").display().to_string()
            })
            .collect();
        names.sort();
        assert!(names.contains(&"src/main.rs".to_owned()), "{names:?}");
        assert!(names.contains(&"passwd-link".to_owned()), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("target")), "{names:?}");
        assert_eq!(stats.files, 6);
    }
}
