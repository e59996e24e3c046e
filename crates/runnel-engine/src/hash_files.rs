//! `hashFiles(...)` over a workspace on this machine, as GitHub's runner computes it
//! (semantics.md 1.7): `@actions/glob` patterns relative to the workspace, later patterns
//! override earlier ones, `!` excludes, a pattern matching a directory matches everything
//! below it; the result is the SHA-256 of the concatenated SHA-256 digests of the matched
//! files in depth-first, name-sorted order, or `''` when nothing matches.
//!
//! Symbolic links are followed only to what lies inside the workspace (links resolved): a
//! step can plant `leak -> /etc/shadow` in a workspace that sits in a job directory on the
//! runner's machine, and `hashFiles('leak')` must not hash the runner's file. Such links
//! count as nothing.
//!
//! Must not: look outside the workspace root.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::backend::RemoteWorkspace;

/// Hashes the files under `root` matched by `patterns`.
pub(crate) fn hash_files(
    root: &Path,
    follow_symlinks: bool,
    patterns: &[String],
) -> Result<String, String> {
    let mut files = Vec::new();
    let real_root = std::fs::canonicalize(root)
        .map_err(|error| format!("hashFiles: cannot read {}: {error}", root.display()))?;
    let walk_root = Walk {
        real_root: &real_root,
        follow_symlinks,
    };
    walk_root
        .walk(root, "", &mut files)
        .map_err(|error| format!("hashFiles: cannot read {}: {error}", root.display()))?;
    let mut digests = Vec::new();
    for relative in selected(files, patterns) {
        let bytes = std::fs::read(root.join(&relative))
            .map_err(|error| format!("hashFiles: cannot read {relative}: {error}"))?;
        digests.push(Sha256::digest(&bytes).into());
    }
    Ok(combined(&digests))
}

/// Hashes the files of a workspace that is elsewhere (a pod's): the backend lists them and
/// digests the matched ones; matching and combining are the same as on this machine.
///
/// Expression evaluation is synchronous: the backend's calls run on this thread with the
/// runtime's other workers moving the rest (`block_in_place`), which needs the multi-threaded
/// runtime `runnel` runs on.
pub(crate) fn hash_remote_files(
    remote: &dyn RemoteWorkspace,
    follow_symlinks: bool,
    patterns: &[String],
) -> Result<String, String> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| {
        "hashFiles: the job's workspace is remote and no runtime is running".to_owned()
    })?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(
            "hashFiles over a remote workspace needs the multi-threaded runtime".to_owned(),
        );
    }
    tokio::task::block_in_place(|| {
        handle.block_on(async {
            let files = remote
                .list_files(follow_symlinks)
                .await
                .map_err(|error| format!("hashFiles: {error}"))?;
            let matched = selected(files, patterns);
            if matched.is_empty() {
                return Ok(String::new());
            }
            let digests = remote
                .digest_files(&matched)
                .await
                .map_err(|error| format!("hashFiles: {error}"))?;
            if digests.len() != matched.len() {
                return Err(format!(
                    "hashFiles: the backend digested {} of {} files",
                    digests.len(),
                    matched.len()
                ));
            }
            Ok(combined(&digests))
        })
    })
}

/// The files of `files` (relative, `/`-separated, in walk order) that `patterns` select:
/// later patterns override earlier ones, `!` excludes, a pattern matching a directory
/// matches everything below it.
pub(crate) fn selected(files: Vec<String>, patterns: &[String]) -> Vec<String> {
    let patterns: Vec<Pattern> = patterns
        .iter()
        .flat_map(|p| p.lines())
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with('#'))
        .map(Pattern::new)
        .collect();
    files
        .into_iter()
        .filter(|relative| {
            let segments: Vec<&str> = relative.split('/').collect();
            let mut included = false;
            for pattern in &patterns {
                if pattern.matches_path_or_ancestor(&segments) {
                    included = !pattern.negated;
                }
            }
            included
        })
        .collect()
}

/// The SHA-256 of the files' digests in order, hex; `''` for no files.
fn combined(digests: &[[u8; 32]]) -> String {
    if digests.is_empty() {
        return String::new();
    }
    let mut combined = Sha256::new();
    for digest in digests {
        combined.update(digest);
    }
    combined
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How to walk a workspace.
struct Walk<'a> {
    /// The workspace with its own links resolved: links must stay below it.
    real_root: &'a Path,
    follow_symlinks: bool,
}

impl Walk<'_> {
    /// Files below `dir`, as `/`-separated paths relative to the root, depth first, sorted
    /// by name in each directory.
    fn walk(&self, dir: &Path, prefix: &str, files: &mut Vec<String>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let file_type = entry.file_type()?;
            let (is_dir, is_file) = if file_type.is_symlink() {
                // Only what the link names inside the workspace.
                let target = std::fs::canonicalize(entry.path())
                    .ok()
                    .filter(|real| real.starts_with(self.real_root))
                    .and_then(|real| std::fs::metadata(real).ok());
                match target {
                    // Without `--follow-symbolic-links` a link is hashed as what it points
                    // to when that is a file, and not descended into when it is a directory.
                    Some(meta) => (self.follow_symlinks && meta.is_dir(), meta.is_file()),
                    None => (false, false),
                }
            } else {
                (file_type.is_dir(), file_type.is_file())
            };
            if is_dir {
                self.walk(&entry.path(), &relative, files)?;
            } else if is_file {
                files.push(relative);
            }
        }
        Ok(())
    }
}

struct Pattern {
    negated: bool,
    segments: Vec<String>,
}

impl Pattern {
    fn new(text: &str) -> Pattern {
        let mut negated = false;
        let mut rest = text;
        while let Some(stripped) = rest.strip_prefix('!') {
            negated = !negated;
            rest = stripped;
        }
        let rest = rest.trim_start_matches("./");
        let segments = rest
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(str::to_owned)
            .collect();
        Pattern { negated, segments }
    }

    fn matches_path_or_ancestor(&self, path: &[&str]) -> bool {
        (1..=path.len()).any(|len| match_segments(&self.segments, path.get(..len).unwrap_or(&[])))
    }
}

fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, path.get(skip..).unwrap_or(&[])))
        }
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => {
                match_segment(first.as_bytes(), segment.as_bytes())
                    && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// One path segment against `*`, `?` and `[...]` (dot files match too, as `@actions/glob`
/// sets `dot: true`).
fn match_segment(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => {
            (0..=text.len()).any(|skip| match_segment(rest, text.get(skip..).unwrap_or(&[])))
        }
        Some((b'?', rest)) => text
            .split_first()
            .is_some_and(|(_, text_rest)| match_segment(rest, text_rest)),
        Some((b'[', rest)) => {
            let Some(close) = rest.iter().position(|&b| b == b']') else {
                return text.first() == Some(&b'[')
                    && match_segment(rest, text.get(1..).unwrap_or(&[]));
            };
            let (class, after) = (
                rest.get(..close).unwrap_or(&[]),
                rest.get(close + 1..).unwrap_or(&[]),
            );
            let Some((&c, text_rest)) = text.split_first() else {
                return false;
            };
            let (negate, class) = match class.split_first() {
                Some((b'!' | b'^', inner)) => (true, inner),
                _ => (false, class),
            };
            let mut found = false;
            let mut i = 0;
            while let Some(&start) = class.get(i) {
                if class.get(i + 1) == Some(&b'-')
                    && let Some(&end) = class.get(i + 2)
                {
                    found |= (start..=end).contains(&c);
                    i += 3;
                } else {
                    found |= start == c;
                    i += 1;
                }
            }
            found != negate && match_segment(after, text_rest)
        }
        Some((b'\\', rest)) => match (rest.split_first(), text.split_first()) {
            (Some((p, prest)), Some((t, trest))) => p == t && match_segment(prest, trest),
            _ => false,
        },
        Some((p, rest)) => text
            .split_first()
            .is_some_and(|(t, text_rest)| p == t && match_segment(rest, text_rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_match_like_globs() {
        let cases = [
            ("*.lock", "Cargo.lock", true),
            ("*.lock", "a/Cargo.lock", false),
            ("**/*.lock", "a/b/Cargo.lock", true),
            ("**/*.lock", "Cargo.lock", true),
            ("src", "src/main.rs", true),
            ("s?c/*.rs", "src/main.rs", true),
            ("[a-c]*", "bar", true),
            ("[!a-c]*", "bar", false),
        ];
        for (pattern, path, expected) in cases {
            let segments: Vec<&str> = path.split('/').collect();
            assert_eq!(
                Pattern::new(pattern).matches_path_or_ancestor(&segments),
                expected,
                "{pattern} vs {path}"
            );
        }
    }

    #[test]
    fn links_count_only_inside_the_workspace() {
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::write(outside.path().join("shadow"), "host secret").expect("setup");
        let workspace = tempfile::tempdir().expect("temp dir");
        let root = workspace.path();
        std::fs::write(root.join("a.txt"), "a").expect("setup");
        let alone = hash_files(root, true, &["**".to_owned()]).expect("hash");
        std::os::unix::fs::symlink(outside.path().join("shadow"), root.join("leak"))
            .expect("setup");
        std::os::unix::fs::symlink(outside.path(), root.join("leak-dir")).expect("setup");
        for follow in [false, true] {
            let hashed = hash_files(root, follow, &["**".to_owned()]).expect("hash");
            assert_eq!(hashed, alone, "follow {follow}");
            let only_leak = hash_files(root, follow, &["leak".to_owned()]).expect("hash");
            assert_eq!(only_leak, "", "follow {follow}");
        }
        std::os::unix::fs::symlink("a.txt", root.join("b.txt")).expect("setup");
        let with_inner = hash_files(root, false, &["b.txt".to_owned()]).expect("hash");
        assert_eq!(
            with_inner,
            hash_files(root, false, &["a.txt".to_owned()]).expect("hash")
        );
    }
}
