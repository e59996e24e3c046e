//! Where a called reusable workflow's text comes from: `./path` in the repository of the
//! calling file (the workspace on this machine, or the commit fetched for a remote call),
//! `owner/repo/.gitea/workflows/x.yml@ref` (or `.github/…`, or Gitea's full URL) through the
//! run's [`ActionSource`], cached by commit like actions.
//!
//! Owns: [`ResolvedWorkflow`], [`ResolveError`] and the identity of a called
//! file used to find cycles. Must not: parse or check the workflow (the caller does).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use runnel_plan::Event;
use tokio_util::sync::CancellationToken;

use crate::actions::contained::{self, ContainedError};
use crate::actions::{
    ActionReference, ActionSource, ActionSourceError, GitActionSource, RemoteAction,
};
use crate::call_frame::Origin;
use crate::options::RunOptions;

/// A called workflow's text and where it came from.
#[derive(Debug)]
pub(crate) struct ResolvedWorkflow {
    /// Identifies the file across the call tree (`<origin>:<path>`), for cycles.
    pub(crate) id: String,
    /// The name its diagnostics carry: the path for a local file, the `uses:` for a remote.
    pub(crate) file: String,
    pub(crate) text: String,
    pub(crate) origin: Origin,
    /// The commit a remote call resolved to, for the log.
    pub(crate) commit: Option<String>,
}

/// Why a called workflow could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error(
        "`{uses}` is not a reusable workflow reference: use `./.gitea/workflows/file.yml` or \
         `owner/repo/.gitea/workflows/file.yml@ref`"
    )]
    Invalid { uses: String },
    #[error("`{uses}` leaves the repository (`..` is not allowed)")]
    OutsideRepository { uses: String },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: ContainedError,
    },
    #[error("cannot fetch `{uses}` from {url}")]
    Fetch {
        uses: String,
        url: String,
        #[source]
        source: ActionSourceError,
    },
}

/// The identity of a top-level workflow file, comparable with those of `./` calls.
pub(crate) fn top_level_id(file: &str) -> String {
    format!(":{}", file.trim_start_matches("./"))
}

/// Reads or fetches the workflow `uses` names, as called from a file of `origin`.
pub(crate) async fn resolve(
    uses: &str,
    origin: &Origin,
    options: &RunOptions,
    event: &Event,
    cancel: &CancellationToken,
) -> Result<ResolvedWorkflow, ResolveError> {
    if let Some(path) = uses.strip_prefix("./") {
        let path = relative_path(uses, path)?;
        return match origin {
            Origin::Repository { directory, id } => {
                let text = read(directory, &path).await?;
                Ok(ResolvedWorkflow {
                    id: format!("{id}:{path}"),
                    file: format!("{uses} ({id})"),
                    text,
                    origin: origin.clone(),
                    commit: None,
                })
            }
            Origin::Workspace => match &options.workspace_source {
                Some(workspace) => Ok(ResolvedWorkflow {
                    id: top_level_id(&path),
                    text: read(workspace, &path).await?,
                    file: path,
                    origin: Origin::Workspace,
                    commit: None,
                }),
                None => own_repository(uses, &path, options, event, cancel).await,
            },
        };
    }
    let Some(ActionReference::Remote(remote)) =
        ActionReference::parse(uses, &options.actions_url, &options.server.server_url)
    else {
        return Err(ResolveError::Invalid {
            uses: uses.to_owned(),
        });
    };
    if !(remote.path.starts_with(".gitea/workflows/")
        || remote.path.starts_with(".github/workflows/"))
    {
        return Err(ResolveError::Invalid {
            uses: uses.to_owned(),
        });
    }
    let path = relative_path(uses, &remote.path)?;
    let fetched = source(options)
        .fetch(&remote, cancel)
        .await
        .map_err(|source| ResolveError::Fetch {
            uses: uses.to_owned(),
            url: remote.repository_url.clone(),
            source,
        })?;
    let text = read(&fetched.directory, &path).await?;
    let id = format!("{}@{}", remote.repository_url, fetched.commit);
    Ok(ResolvedWorkflow {
        id: format!("{id}:{path}"),
        file: uses.to_owned(),
        text,
        origin: Origin::Repository {
            directory: fetched.directory,
            id,
        },
        commit: Some(fetched.commit),
    })
}

/// No workspace on this machine (the daemon): the run's repository at the event's commit,
/// fetched from the server like an action (as act_runner does for local calls).
async fn own_repository(
    uses: &str,
    path: &str,
    options: &RunOptions,
    event: &Event,
    cancel: &CancellationToken,
) -> Result<ResolvedWorkflow, ResolveError> {
    let server = options.server.server_url.trim_end_matches('/');
    let remote = RemoteAction {
        uses: format!("{}@{}", event.repository, event.sha),
        repository_url: format!("{server}/{}", event.repository),
        repository: event.repository.clone(),
        path: String::new(),
        git_ref: event.sha.clone(),
    };
    let fetched = source(options)
        .fetch(&remote, cancel)
        .await
        .map_err(|source| ResolveError::Fetch {
            uses: uses.to_owned(),
            url: remote.repository_url.clone(),
            source,
        })?;
    let text = read(&fetched.directory, path).await?;
    Ok(ResolvedWorkflow {
        id: top_level_id(path),
        file: path.to_owned(),
        text,
        // Its `./` calls are in the same repository: keep reading from this commit.
        origin: Origin::Repository {
            directory: fetched.directory,
            id: String::new(),
        },
        commit: Some(fetched.commit),
    })
}

fn source(options: &RunOptions) -> Arc<dyn ActionSource> {
    match &options.action_source {
        Some(source) => Arc::clone(source),
        None => Arc::new(GitActionSource::new(options.actions_cache.clone())),
    }
}

/// `path` normalised (no `.` parts, `/` separators); `..` or an absolute path is refused.
fn relative_path(uses: &str, path: &str) -> Result<String, ResolveError> {
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => {
                return Err(ResolveError::OutsideRepository {
                    uses: uses.to_owned(),
                });
            }
        }
    }
    if parts.is_empty() {
        return Err(ResolveError::Invalid {
            uses: uses.to_owned(),
        });
    }
    Ok(parts.join("/"))
}

/// Reads `relative` in the repository at `root`, never through a link that leaves it.
async fn read(root: &Path, relative: &str) -> Result<String, ResolveError> {
    contained::read_to_string(root, relative)
        .await
        .map_err(|source| ResolveError::Read {
            path: root.join(relative),
            source,
        })
}
