//! The pod's workspace as `hashFiles` reads it ([`RemoteWorkspace`]): one exec lists it (`find`
//! and `readlink -f` in the pod), the runner walks that listing as the engine walks a local
//! workspace, and one more exec streams the matched files as tar (`xargs -0 tar -h`) that the
//! runner hashes. Two execs per `hashFiles`, whatever the number of files.
//!
//! Must not: match patterns or combine digests (the engine does, as for a local workspace).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use runnel_engine::backend::{BackendError, RemoteWorkspace};
use sha2::{Digest, Sha256};

use super::error::KubeError;
use super::exec::PodExec;

/// Exit code of the listing script when the workspace does not exist.
const MISSING: i32 = 66;
/// How deep links to directories are followed (a link to an ancestor would never end).
const MAX_LINK_DEPTH: usize = 32;

/// Lists the workspace: `R` its real path, then `D`/`F` directories and files, then `L` links
/// with their kind (`d`, `f`, other) and resolved target; NUL-terminated records, paths
/// relative (`./…`).
const LIST_SCRIPT: &str = r#"cd "$1" 2>/dev/null || exit 66
printf 'R%s\0' "$(pwd -P)"
find . -mindepth 1 -type d -exec printf 'D%s\0' {} +
find . -mindepth 1 -type f -exec printf 'F%s\0' {} +
find . -mindepth 1 -type l -exec sh -c '
  for l; do
    t=$(readlink -f "$l" 2>/dev/null) || t=""
    if [ -d "$l" ]; then k=d; elif [ -f "$l" ]; then k=f; else k=x; fi
    printf "L%s%s\0%s\0" "$k" "$l" "$t"
  done' sh {} +
"#;

/// `hashFiles` over the workspace of one pod.
pub(crate) struct PodWorkspace {
    pub(crate) exec: PodExec,
    pub(crate) root: String,
}

/// A link in the listing.
struct Link {
    /// `d`, `f` or anything else (dangling, a device…).
    kind: u8,
    /// Its target resolved, absolute.
    target: String,
}

/// The workspace as the listing describes it.
#[derive(Default)]
struct Listing {
    real_root: String,
    dirs: BTreeSet<String>,
    files: BTreeSet<String>,
    links: BTreeMap<String, Link>,
    /// Directory (relative; `""` the root) → its entries' names.
    children: BTreeMap<String, Vec<String>>,
}

impl Listing {
    fn parse(bytes: &[u8]) -> Listing {
        let mut listing = Listing::default();
        let mut records = bytes.split(|&b| b == 0);
        while let Some(record) = records.next() {
            let text = String::from_utf8_lossy(record);
            let Some(kind) = text.chars().next() else {
                continue;
            };
            let rest = &text[kind.len_utf8()..];
            match kind {
                'R' => listing.real_root = rest.to_owned(),
                'D' => listing.add(rest, |l, p| {
                    l.dirs.insert(p);
                }),
                'F' => listing.add(rest, |l, p| {
                    l.files.insert(p);
                }),
                'L' => {
                    let Some(link_kind) = rest.bytes().next() else {
                        continue;
                    };
                    let target = records
                        .next()
                        .map(|t| String::from_utf8_lossy(t).into_owned())
                        .unwrap_or_default();
                    listing.add(&rest[1..], |l, p| {
                        l.links.insert(
                            p,
                            Link {
                                kind: link_kind,
                                target,
                            },
                        );
                    });
                }
                _ => {}
            }
        }
        for names in listing.children.values_mut() {
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            names.dedup();
        }
        listing
    }

    fn add(&mut self, path: &str, insert: impl FnOnce(&mut Listing, String)) {
        let relative = path.strip_prefix("./").unwrap_or(path).to_owned();
        if relative.is_empty() {
            return;
        }
        let (parent, name) = relative.rsplit_once('/').unwrap_or(("", &relative));
        self.children
            .entry(parent.to_owned())
            .or_default()
            .push(name.to_owned());
        insert(self, relative);
    }

    /// The relative path inside the workspace that `target` (absolute, resolved) names.
    fn inside(&self, target: &str) -> Option<String> {
        if target == self.real_root {
            return Some(String::new());
        }
        let root = self.real_root.trim_end_matches('/');
        target
            .strip_prefix(root)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(str::to_owned)
    }

    /// The files `hashFiles` may hash, as the engine's local walk orders them.
    fn files(&self, follow_symlinks: bool) -> Vec<String> {
        let mut out = Vec::new();
        self.walk("", "", follow_symlinks, 0, &mut out);
        out
    }

    /// Walks directory `dir` (relative to the root), naming what it finds under `shown`.
    fn walk(&self, dir: &str, shown: &str, follow: bool, depth: usize, out: &mut Vec<String>) {
        let join = |base: &str, name: &str| {
            if base.is_empty() {
                name.to_owned()
            } else {
                format!("{base}/{name}")
            }
        };
        for name in self.children.get(dir).into_iter().flatten() {
            let actual = join(dir, name);
            let named = join(shown, name);
            if self.dirs.contains(&actual) {
                self.walk(&actual, &named, follow, depth, out);
            } else if self.files.contains(&actual) {
                out.push(named);
            } else if let Some(link) = self.links.get(&actual) {
                let Some(target) = self.inside(&link.target) else {
                    continue;
                };
                match link.kind {
                    b'f' => out.push(named),
                    b'd' if follow && depth < MAX_LINK_DEPTH => {
                        self.walk(&target, &named, follow, depth + 1, out);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Reads the tar archives of `files` (as `tar -h` wrote them) into their digests, in `files`' order; a
/// hard-link entry (the same file named twice) takes its first name's digest.
fn digests_of_tar(tar: &[u8], files: &[String]) -> Result<Vec<[u8; 32]>, String> {
    let normal = |path: &std::path::Path| {
        let text = path.to_string_lossy().into_owned();
        text.strip_prefix("./").unwrap_or(&text).to_owned()
    };
    let mut digests: BTreeMap<String, [u8; 32]> = BTreeMap::new();
    let mut archive = tar::Archive::new(tar);
    // `xargs` may run tar more than once: archives follow each other.
    archive.set_ignore_zeros(true);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = normal(&entry.path().map_err(|e| e.to_string())?);
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            let Some(first) = entry.link_name().map_err(|e| e.to_string())? else {
                continue;
            };
            if let Some(digest) = digests.get(&normal(&first)).copied() {
                digests.insert(path, digest);
            }
        } else if kind.is_file() {
            let mut hasher = Sha256::new();
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let read = entry.read(&mut buffer).map_err(|e| e.to_string())?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
            }
            digests.insert(path, hasher.finalize().into());
        }
    }
    files
        .iter()
        .map(|file| {
            digests
                .get(file)
                .copied()
                .ok_or_else(|| format!("`{file}` was not in the archive the pod sent"))
        })
        .collect()
}

impl PodWorkspace {
    fn error(&self, path: &str, operation: &'static str, message: String) -> BackendError {
        KubeError::File {
            operation,
            path: path.to_owned(),
            pod: self.exec.pod.clone(),
            message,
        }
        .into_backend("hashFiles")
    }
}

#[async_trait::async_trait]
impl RemoteWorkspace for PodWorkspace {
    async fn list_files(&self, follow_symlinks: bool) -> Result<Vec<String>, BackendError> {
        let (code, out, err) = self
            .exec
            .collect(&["sh", "-c", LIST_SCRIPT, "sh", &self.root], None)
            .await
            .map_err(|error| error.into_backend("hashFiles"))?;
        match code {
            0 => Ok(Listing::parse(&out).files(follow_symlinks)),
            MISSING => Ok(Vec::new()),
            _ => Err(self.error(
                &self.root,
                "list",
                String::from_utf8_lossy(&err).trim().to_owned(),
            )),
        }
    }

    async fn digest_files(&self, files: &[String]) -> Result<Vec<[u8; 32]>, BackendError> {
        // NUL-separated for `xargs -0` (busybox's tar has no `-T`); `./` first: tar would
        // take a name starting with `-` for an option. Several `xargs` batches make several
        // archives one after the other.
        let names: Vec<u8> = files
            .iter()
            .flat_map(|f| format!("./{f}\0").into_bytes())
            .collect();
        let (code, out, err) = self
            .exec
            .collect(
                &[
                    "sh",
                    "-c",
                    "cd \"$1\" && exec xargs -0 tar -c -h -f -",
                    "sh",
                    &self.root,
                ],
                Some(&names),
            )
            .await
            .map_err(|error| error.into_backend("hashFiles"))?;
        if code != 0 {
            return Err(self.error(
                &self.root,
                "read",
                format!("tar exit {code}: {}", String::from_utf8_lossy(&err).trim()),
            ));
        }
        digests_of_tar(&out, files).map_err(|message| self.error(&self.root, "read", message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> Listing {
        let records: &[&str] = &[
            "R/__w/workspace",
            "D./b",
            "D./a",
            "D./a/deep",
            "F./z.txt",
            "F./a/x.txt",
            "F./a/deep/x.txt",
            "F./b/x.txt",
            "Lf./file-link",
            "/__w/workspace/z.txt",
            "Lf./outside",
            "/etc/passwd",
            "Ld./dir-link",
            "/__w/workspace/a",
            "Lx./dangling",
            "",
        ];
        let mut bytes = Vec::new();
        for record in records {
            bytes.extend_from_slice(record.as_bytes());
            bytes.push(0);
        }
        Listing::parse(&bytes)
    }

    #[test]
    fn the_listing_is_walked_as_a_local_workspace() {
        assert_eq!(
            listing().files(false),
            ["a/deep/x.txt", "a/x.txt", "b/x.txt", "file-link", "z.txt"]
        );
        assert_eq!(
            listing().files(true),
            [
                "a/deep/x.txt",
                "a/x.txt",
                "b/x.txt",
                "dir-link/deep/x.txt",
                "dir-link/x.txt",
                "file-link",
                "z.txt"
            ]
        );
    }

    #[test]
    fn a_tar_becomes_digests_in_order_with_hard_links() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header.clone(), "./a.txt", &b"hello"[..])
            .expect("tar");
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Link);
        link.set_size(0);
        builder
            .append_link(&mut link, "./b.txt", "./a.txt")
            .expect("tar");
        let tar = builder.into_inner().expect("tar");
        let hello: [u8; 32] = Sha256::digest(b"hello").into();
        assert_eq!(
            digests_of_tar(&tar, &["b.txt".to_owned(), "a.txt".to_owned()]).expect("tar"),
            [hello, hello]
        );
        assert!(
            digests_of_tar(&tar, &["c.txt".to_owned()])
                .expect_err("missing")
                .contains("`c.txt`")
        );
    }
}
