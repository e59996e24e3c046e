//! Finding and reading workflow files: the default folders, directories expanded to their
//! `*.yml`/`*.yaml` files (not recursive, sorted, as Gitea and GitHub read them).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A workflow file as read from disk; `display` is the path as the user should see it.
pub(crate) struct SourceFile {
    pub(crate) display: String,
    pub(crate) text: String,
}

/// The folders Gitea reads, in order: the first that exists wins.
const DEFAULT_DIRS: &[&str] = &[".gitea/workflows", ".github/workflows"];

pub(crate) fn default_paths() -> Result<Vec<PathBuf>> {
    match DEFAULT_DIRS.iter().map(Path::new).find(|p| p.is_dir()) {
        Some(dir) => Ok(vec![dir.to_path_buf()]),
        None => bail!(
            "no workflow folder found: looked for {} (pass a path)",
            DEFAULT_DIRS.join(" and ")
        ),
    }
}

pub(crate) fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut in_dir = Vec::new();
            let entries =
                std::fs::read_dir(path).with_context(|| format!("read dir {}", path.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("read dir {}", path.display()))?;
                let p = entry.path();
                let is_yaml = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| e == "yml" || e == "yaml");
                if is_yaml && p.is_file() {
                    in_dir.push(p);
                }
            }
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

pub(crate) fn read(path: &Path) -> Result<SourceFile> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: not valid UTF-8", path.display()))?;
    let display = path
        .strip_prefix("./")
        .unwrap_or(path)
        .display()
        .to_string();
    Ok(SourceFile { display, text })
}

/// The branch checked out in the working tree (`refs/heads/...` from `.git/HEAD`), if any: the
/// ref a local run pretends to be pushed to. Read directly so no `git` program is needed.
pub(crate) fn current_branch() -> Option<String> {
    let head = std::fs::read_to_string(".git/HEAD").ok()?;
    let git_ref = head.trim().strip_prefix("ref: ")?;
    git_ref
        .starts_with("refs/heads/")
        .then(|| git_ref.to_owned())
}

/// The commit checked out in the working tree, from `.git/HEAD` (a branch's loose ref or
/// `packed-refs`, or a detached sha); `None` outside a repository.
pub(crate) fn head_sha() -> Option<String> {
    let head = std::fs::read_to_string(".git/HEAD").ok()?;
    let head = head.trim();
    let Some(git_ref) = head.strip_prefix("ref: ") else {
        return is_sha(head).then(|| head.to_owned());
    };
    if let Ok(sha) = std::fs::read_to_string(Path::new(".git").join(git_ref)) {
        let sha = sha.trim();
        return is_sha(sha).then(|| sha.to_owned());
    }
    let packed = std::fs::read_to_string(".git/packed-refs").ok()?;
    packed.lines().find_map(|line| {
        let (sha, name) = line.split_once(' ')?;
        (name == git_ref && is_sha(sha)).then(|| sha.to_owned())
    })
}

/// Where the `origin` remote of the working tree's repository lives: its server
/// (`https://host[:port]`) and `owner/name`, as a local run reports them in `github.*`
/// (act does the same). `None` without a repository, an origin or a URL of a known shape.
pub(crate) fn origin_remote() -> Option<Remote> {
    let config = std::fs::read_to_string(".git/config").ok()?;
    let mut in_origin = false;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            in_origin = line == r#"[remote "origin"]"#;
        } else if in_origin
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "url"
        {
            return parse_remote_url(value.trim());
        }
    }
    None
}

/// The `origin` remote's server and repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    /// `https://host[:port]` (an SSH remote's host with `https`).
    pub(crate) server_url: String,
    /// `owner/name`, without `.git`.
    pub(crate) repository: String,
}

/// `https://host/owner/name(.git)`, `ssh://git@host[:port]/owner/name.git`,
/// `git@host:owner/name.git`.
fn parse_remote_url(url: &str) -> Option<Remote> {
    let (server_url, path) = if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/')?;
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let server_url = match scheme {
            "http" | "https" => format!("{scheme}://{host}"),
            // The web server of an SSH remote: same host, default port.
            _ => format!("https://{}", host.split(':').next()?),
        };
        (server_url, path)
    } else {
        let (authority, path) = url.split_once(':')?;
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        (format!("https://{host}"), path)
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let (owner, name) = path.rsplit_once('/')?;
    let owner = owner.rsplit('/').next()?;
    (!owner.is_empty() && !name.is_empty()).then(|| Remote {
        server_url,
        repository: format!("{owner}/{name}"),
    })
}

fn is_sha(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_name_server_and_repository() {
        let remote = |server: &str, repository: &str| {
            Some(Remote {
                server_url: server.to_owned(),
                repository: repository.to_owned(),
            })
        };
        let cases = [
            (
                "https://github.com/acme/tool.git",
                remote("https://github.com", "acme/tool"),
            ),
            (
                "https://gitea.example.com:3000/acme/tool",
                remote("https://gitea.example.com:3000", "acme/tool"),
            ),
            (
                "http://user:pw@localhost:3000/acme/tool.git",
                remote("http://localhost:3000", "acme/tool"),
            ),
            (
                "git@github.com:acme/tool.git",
                remote("https://github.com", "acme/tool"),
            ),
            (
                "ssh://git@gitea.example.com:2222/acme/tool.git",
                remote("https://gitea.example.com", "acme/tool"),
            ),
            ("/srv/git/tool.git", None),
            ("https://example.com/", None),
        ];
        for (url, expected) in cases {
            assert_eq!(parse_remote_url(url), expected, "{url}");
        }
    }
}
