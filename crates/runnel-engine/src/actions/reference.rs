//! `uses:` strings → [`ActionReference`]: local (`./path`), container (`docker://image`), a
//! repository action (`owner/repo[/path]@ref`, fetched from the configured actions URL) or
//! Gitea's full-URL form (`https://host/owner/repo[/path]@ref`, taken literally).
//!
//! Must not: fetch anything.

/// What a `uses:` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionReference {
    /// `./path` (or `../path`): relative to the workspace.
    Local(String),
    /// `docker://image:tag`.
    Container(String),
    Remote(RemoteAction),
}

/// A repository action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAction {
    /// The `uses:` text, for messages.
    pub uses: String,
    /// What `git` is given: `https://github.com/owner/repo`, `file:///mirror/owner/repo`.
    pub repository_url: String,
    /// `owner/repo` (`github.action_repository`).
    pub repository: String,
    /// The directory inside the repository (`""` for the root).
    pub path: String,
    /// Tag, branch or commit (`github.action_ref`).
    pub git_ref: String,
}

impl ActionReference {
    /// Reads `uses`. `actions_url` is the base for `owner/repo@ref` (`self` means
    /// `server_url`, as Gitea's `DEFAULT_ACTIONS_URL=self` does). `None` when `uses` has none
    /// of the accepted forms (the workflow loader reports those earlier).
    pub fn parse(uses: &str, actions_url: &str, server_url: &str) -> Option<ActionReference> {
        if let Some(image) = uses.strip_prefix("docker://") {
            return Some(ActionReference::Container(image.to_owned()));
        }
        if uses.starts_with("./") || uses.starts_with("../") {
            return Some(ActionReference::Local(uses.to_owned()));
        }
        let (location, git_ref) = uses.rsplit_once('@')?;
        if git_ref.is_empty() {
            return None;
        }
        let (base, rest) = match location.find("://") {
            Some(at) => {
                let after_scheme = location.get(at + 3..)?;
                let host_end = after_scheme.find('/')?;
                let base = location.get(..at + 3 + host_end)?;
                (base.to_owned(), after_scheme.get(host_end + 1..)?)
            }
            None => {
                let base = if actions_url.eq_ignore_ascii_case("self") {
                    server_url
                } else {
                    actions_url
                };
                (base.trim_end_matches('/').to_owned(), location)
            }
        };
        let mut parts = rest.splitn(3, '/');
        let owner = parts.next().filter(|p| !p.is_empty())?;
        let repo = parts.next().filter(|p| !p.is_empty())?;
        let path = parts.next().unwrap_or_default().trim_matches('/');
        let repo = repo.strip_suffix(".git").unwrap_or(repo);
        Some(ActionReference::Remote(RemoteAction {
            uses: uses.to_owned(),
            repository_url: format!("{base}/{owner}/{repo}"),
            repository: format!("{owner}/{repo}"),
            path: path.to_owned(),
            git_ref: git_ref.to_owned(),
        }))
    }
}
