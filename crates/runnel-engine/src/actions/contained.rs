//! Reading the files of a fetched repository (an action, a reusable workflow) without ever
//! leaving it: a symbolic link is followed only when its target, every link on the way
//! resolved, is inside the checkout. A link to `/etc/shadow`, to the runner's `.runner` or
//! out through `../..` is refused, so an action cannot make the runner read a host file and
//! hand its bytes to a job.
//!
//! Must not: write anything, or read outside the root it is given.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A path that names something outside the repository it was read from.
#[derive(Debug, thiserror::Error)]
pub enum ContainedError {
    #[error("`{relative}` is a symbolic link that leaves the repository")]
    LeavesRepository { relative: String },
    #[error("cannot read `{relative}`")]
    Io {
        relative: String,
        #[source]
        source: io::Error,
    },
}

/// One regular file of a listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedFile {
    /// Path relative to the root, `/`-separated.
    pub relative: String,
    /// Where its bytes are on this machine (inside the root, links resolved).
    pub path: PathBuf,
    pub executable: bool,
}

/// The files of a tree, and the links that were left out because they leave it.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: Vec<ListedFile>,
    /// Links whose target is outside the root (relative path, the link's text).
    pub refused: Vec<(String, String)>,
}

/// Lists the regular files under `root`, sorted, `.git` at the top left out. A link to a
/// file inside the root is listed as that file; a link to a directory is skipped (links may
/// loop); a link leaving the root is listed in `refused` and never opened.
pub fn list_files(root: &Path) -> io::Result<Listing> {
    let real_root = std::fs::canonicalize(root)?;
    let mut listing = Listing::default();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((directory, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&directory)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(path = %entry.path().display(), "skipping a non-UTF-8 file name");
                continue;
            };
            if prefix.is_empty() && name == ".git" {
                continue;
            }
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push((path, relative));
            } else if file_type.is_file() {
                let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
                listing.files.push(ListedFile {
                    relative,
                    path,
                    executable,
                });
            } else if file_type.is_symlink() {
                // A dangling link has nothing to copy.
                let Ok(real) = std::fs::canonicalize(&path) else {
                    continue;
                };
                if !real.starts_with(&real_root) {
                    let text = std::fs::read_link(&path)
                        .map(|target| target.display().to_string())
                        .unwrap_or_default();
                    listing.refused.push((relative, text));
                } else if let Ok(metadata) = std::fs::metadata(&real)
                    && metadata.is_file()
                {
                    listing.files.push(ListedFile {
                        relative,
                        path: real,
                        executable: metadata.permissions().mode() & 0o111 != 0,
                    });
                }
            }
        }
    }
    listing.files.sort();
    listing.refused.sort();
    Ok(listing)
}

/// Reads `relative` under `root` as text, refusing a path whose links lead outside the root.
pub async fn read_to_string(root: &Path, relative: &str) -> Result<String, ContainedError> {
    let root = root.to_path_buf();
    let owned = relative.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        let real_root = std::fs::canonicalize(&root).map_err(|source| ContainedError::Io {
            relative: owned.clone(),
            source,
        })?;
        let path = root.join(&owned);
        // A missing file is reported as missing, not as leaving the repository.
        std::fs::symlink_metadata(&path).map_err(|source| ContainedError::Io {
            relative: owned.clone(),
            source,
        })?;
        let real =
            resolve_inside(&real_root, &path).ok_or_else(|| ContainedError::LeavesRepository {
                relative: owned.clone(),
            })?;
        std::fs::read_to_string(real).map_err(|source| ContainedError::Io {
            relative: owned,
            source,
        })
    })
    .await;
    read.unwrap_or_else(|error| {
        Err(ContainedError::Io {
            relative: relative.to_owned(),
            source: io::Error::other(error),
        })
    })
}

/// `path` with every link resolved, when that is inside `real_root` (itself resolved).
fn resolve_inside(real_root: &Path, path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    real.starts_with(real_root).then_some(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempfile::TempDir, tempfile::TempDir) {
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::write(outside.path().join("secret"), "host secret").expect("setup");
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path();
        std::fs::create_dir_all(dir.join("lib")).expect("setup");
        std::fs::write(dir.join("lib/index.js"), "code").expect("setup");
        std::fs::write(dir.join("action.yml"), "name: x").expect("setup");
        symlink("lib/index.js", dir.join("main.js")).expect("setup");
        symlink(outside.path().join("secret"), dir.join("leak-absolute")).expect("setup");
        symlink(
            "../../../../../../../../etc/passwd",
            dir.join("leak-relative"),
        )
        .expect("setup");
        symlink(outside.path(), dir.join("leak-dir")).expect("setup");
        symlink("lib", dir.join("lib-link")).expect("setup");
        (root, outside)
    }

    #[test]
    fn links_inside_are_files_links_outside_are_refused() {
        let (root, _outside) = tree();
        let listing = list_files(root.path()).expect("listing");
        let names: Vec<&str> = listing.files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["action.yml", "lib/index.js", "main.js"]);
        let refused: Vec<&str> = listing.refused.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(refused, ["leak-absolute", "leak-dir", "leak-relative"]);
        for file in &listing.files {
            assert!(std::fs::read_to_string(&file.path).expect("read") != "host secret");
        }
    }

    #[tokio::test]
    async fn reading_through_a_link_that_leaves_is_refused() {
        let (root, _outside) = tree();
        let text = read_to_string(root.path(), "main.js")
            .await
            .expect("inside");
        assert_eq!(text, "code");
        for name in ["leak-absolute", "leak-relative"] {
            let error = read_to_string(root.path(), name).await.expect_err(name);
            assert!(
                matches!(error, ContainedError::LeavesRepository { .. }),
                "{error}"
            );
        }
        let missing = read_to_string(root.path(), "nope.yml")
            .await
            .expect_err("missing");
        assert!(matches!(missing, ContainedError::Io { .. }), "{missing}");
    }
}
