//! [`ActionSource`]: a repository action → a directory of its files on this machine, and the
//! default [`GitActionSource`].
//!
//! The git source resolves the ref with `git ls-remote` (a tag wins over a branch of the same
//! name, as in git; a full commit id is used as it is), then fetches only that commit
//! (`git fetch --depth 1`) into `<cache>/<repository url>/<commit>`. A directory that is
//! already there is reused without fetching, so an action pinned to a commit needs no network
//! at all once cached. Fetches go to a temporary directory renamed into place, so a run that
//! is killed half-way never leaves a broken cache entry.
//! Must not: know the job environment; the caller copies the files where the job runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::RemoteAction;

/// A repository action's files on this machine.
#[derive(Debug, Clone)]
pub struct FetchedAction {
    /// The repository at `commit` (the action itself is `RemoteAction::path` below it).
    pub directory: PathBuf,
    /// The commit the ref resolved to.
    pub commit: String,
    /// False when the cache already had this commit.
    pub downloaded: bool,
}

/// Why an action's files could not be had. Each variant names the repository URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActionSourceError {
    #[error("cannot run `git {command}` for {url}")]
    Spawn {
        command: String,
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {command}` for {url} failed: {stderr}")]
    Git {
        command: String,
        url: String,
        stderr: String,
    },
    #[error("`git {command}` for {url} did not finish within {} seconds", timeout.as_secs())]
    TimedOut {
        command: String,
        url: String,
        timeout: Duration,
    },
    #[error("{url} has no tag or branch named `{git_ref}`")]
    RefNotFound { url: String, git_ref: String },
    #[error("fetching {url} was cancelled")]
    Cancelled { url: String },
    #[error("{operation} {}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Brings repository actions onto this machine. `runnel run` and the daemon use
/// [`GitActionSource`]; tests and embedders may plug in their own.
#[async_trait::async_trait]
pub trait ActionSource: Send + Sync + std::fmt::Debug {
    async fn fetch(
        &self,
        action: &RemoteAction,
        cancel: &CancellationToken,
    ) -> Result<FetchedAction, ActionSourceError>;
}

/// Fetches actions with the `git` program into a cache directory.
#[derive(Debug, Clone)]
pub struct GitActionSource {
    cache: PathBuf,
    /// Bound on each `git` call, so an unreachable host fails the job instead of hanging it.
    timeout: Duration,
}

/// Makes temporary directory names unique within this process.
static FETCH_COUNTER: AtomicU64 = AtomicU64::new(0);

impl GitActionSource {
    pub fn new(cache: PathBuf) -> GitActionSource {
        GitActionSource {
            cache,
            timeout: Duration::from_secs(5 * 60),
        }
    }

    /// `<cache>/<url with unsafe characters replaced>`.
    fn repository_dir(&self, url: &str) -> PathBuf {
        let name: String = url
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cache.join(name.trim_start_matches('.'))
    }

    async fn git(
        &self,
        args: &[&str],
        directory: Option<&Path>,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<String, ActionSourceError> {
        let command_text = args.first().copied().unwrap_or_default().to_owned();
        let mut command = Command::new("git");
        command
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(directory) = directory {
            command.current_dir(directory);
        }
        let child = command.spawn().map_err(|source| ActionSourceError::Spawn {
            command: command_text.clone(),
            url: url.to_owned(),
            source,
        })?;
        let output = tokio::select! {
            output = tokio::time::timeout(self.timeout, child.wait_with_output()) => output,
            () = cancel.cancelled() => {
                return Err(ActionSourceError::Cancelled { url: url.to_owned() });
            }
        };
        let output = output
            .map_err(|_| ActionSourceError::TimedOut {
                command: command_text.clone(),
                url: url.to_owned(),
                timeout: self.timeout,
            })?
            .map_err(|source| ActionSourceError::Spawn {
                command: command_text.clone(),
                url: url.to_owned(),
                source,
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            let stderr = if stderr.is_empty() {
                format!("exit status {}", output.status)
            } else {
                stderr
            };
            return Err(ActionSourceError::Git {
                command: command_text,
                url: url.to_owned(),
                stderr,
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The commit `git_ref` names: a peeled tag, else a tag, else a branch; a full commit id
    /// is taken as it is.
    async fn resolve(
        &self,
        url: &str,
        git_ref: &str,
        cancel: &CancellationToken,
    ) -> Result<String, ActionSourceError> {
        if is_commit_id(git_ref) {
            return Ok(git_ref.to_ascii_lowercase());
        }
        let tag = format!("refs/tags/{git_ref}");
        let peeled = format!("refs/tags/{git_ref}^{{}}");
        let branch = format!("refs/heads/{git_ref}");
        let listing = self
            .git(
                &["ls-remote", "--", url, &tag, &peeled, &branch],
                None,
                url,
                cancel,
            )
            .await?;
        let refs: Vec<(&str, &str)> = listing
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .collect();
        [&peeled, &tag, &branch]
            .iter()
            .find_map(|wanted| {
                refs.iter()
                    .find(|(_, name)| name == wanted)
                    .map(|(id, _)| (*id).to_owned())
            })
            .ok_or_else(|| ActionSourceError::RefNotFound {
                url: url.to_owned(),
                git_ref: git_ref.to_owned(),
            })
    }

    async fn download(
        &self,
        url: &str,
        commit: &str,
        target: &Path,
        cancel: &CancellationToken,
    ) -> Result<(), ActionSourceError> {
        let parent = target.parent().unwrap_or(&self.cache);
        let io = |operation: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| ActionSourceError::Io {
                operation,
                path,
                source,
            }
        };
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io("creating", parent))?;
        let temporary = parent.join(format!(
            ".fetch-{commit}-{}-{}",
            std::process::id(),
            FETCH_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = self.download_into(url, commit, &temporary, cancel).await;
        if result.is_ok() {
            match tokio::fs::rename(&temporary, target).await {
                Ok(()) => return Ok(()),
                // Another run cached the same commit meanwhile: theirs is as good as ours.
                Err(_) if target.is_dir() => {}
                Err(source) => {
                    let _ = tokio::fs::remove_dir_all(&temporary).await;
                    return Err(io("moving the fetched action to", target)(source));
                }
            }
        }
        let _ = tokio::fs::remove_dir_all(&temporary).await;
        result
    }

    async fn download_into(
        &self,
        url: &str,
        commit: &str,
        directory: &Path,
        cancel: &CancellationToken,
    ) -> Result<(), ActionSourceError> {
        tokio::fs::create_dir_all(directory)
            .await
            .map_err(|source| ActionSourceError::Io {
                operation: "creating",
                path: directory.to_path_buf(),
                source,
            })?;
        let here = Some(directory);
        self.git(&["init", "-q"], here, url, cancel).await?;
        self.git(
            &["fetch", "-q", "--depth", "1", "--", url, commit],
            here,
            url,
            cancel,
        )
        .await?;
        self.git(
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                "--detach",
                "FETCH_HEAD",
            ],
            here,
            url,
            cancel,
        )
        .await?;
        let git_dir = directory.join(".git");
        tokio::fs::remove_dir_all(&git_dir)
            .await
            .map_err(|source| ActionSourceError::Io {
                operation: "removing",
                path: git_dir,
                source,
            })
    }
}

#[async_trait::async_trait]
impl ActionSource for GitActionSource {
    async fn fetch(
        &self,
        action: &RemoteAction,
        cancel: &CancellationToken,
    ) -> Result<FetchedAction, ActionSourceError> {
        let url = action.repository_url.as_str();
        let commit = self.resolve(url, &action.git_ref, cancel).await?;
        let directory = self.repository_dir(url).join(&commit);
        if directory.is_dir() {
            tracing::debug!(url, commit, "action found in the cache");
            return Ok(FetchedAction {
                directory,
                commit,
                downloaded: false,
            });
        }
        tracing::info!(url, commit, "fetching action");
        self.download(url, &commit, &directory, cancel).await?;
        Ok(FetchedAction {
            directory,
            commit,
            downloaded: true,
        })
    }
}

/// A full SHA-1 or SHA-256 commit id.
fn is_commit_id(git_ref: &str) -> bool {
    matches!(git_ref.len(), 40 | 64) && git_ref.chars().all(|c| c.is_ascii_hexdigit())
}
