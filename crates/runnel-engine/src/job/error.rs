//! Why a job could not run its steps ([`JobError`]) and why one step failed ([`StepError`]).
//! Each message is the log line a person reads, so its text is fixed: tests and users match
//! on it. Expression errors ([`ExprError`]) belong to the expression state and pass through.
//!
//! Must not: log; the job and the step runner turn these into runner messages in one place
//! each.

use std::path::PathBuf;

use crate::actions::ActionSourceError;
use crate::backend::BackendError;
use crate::shell::ShellError;
use crate::with_causes;

pub(crate) use super::expr::ExprError;

/// Why a job failed before or around its steps.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error(transparent)]
    Expression(#[from] ExprError),
    #[error("preparing the job environment failed: {0}")]
    Prepare(#[source] BackendError),
    #[error("cannot encode the event payload: {0}")]
    EncodeEvent(#[source] serde_json::Error),
    #[error("writing the event payload failed: {0}")]
    WriteEvent(#[source] BackendError),
}

/// Why a step (or a `pre`/`post` hook, or fetching an action at job setup) failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    #[error(transparent)]
    Expression(#[from] ExprError),
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error("shell `{program}` runs only on Windows runners; this runner is {os}")]
    WindowsOnlyShell { program: String, os: String },
    #[error("looking for `{program}` failed: {source}")]
    FindProgram {
        program: String,
        #[source]
        source: BackendError,
    },
    #[error(
        "shell `{program}` is not supported here: `{program}`{} was not found on PATH",
        nor(.fallbacks)
    )]
    ShellNotFound {
        program: String,
        fallbacks: Vec<String>,
    },
    #[error("writing {path} failed: {source}")]
    Write {
        path: String,
        #[source]
        source: BackendError,
    },
    #[error("running the step failed: {0}")]
    Run(#[source] BackendError),
    #[error("invalid action reference `{uses}`")]
    InvalidReference { uses: String },
    #[error("`uses: {uses}` is a container image, not an action with `action.yml`")]
    ContainerReference { uses: String },
    /// `hint` says where the runner fetched from and what to change.
    #[error("cannot fetch action `{uses}`: {}\nhint: {hint}", with_causes(.source))]
    Fetch {
        uses: String,
        #[source]
        source: ActionSourceError,
        hint: String,
    },
    #[error("listing {} failed: {source}", .path.display())]
    ListAction {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("listing {} failed: {source}", .path.display())]
    ListActionTask {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("reading {} failed: {source}", .path.display())]
    ReadActionFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path} failed: {source}")]
    Read {
        path: String,
        #[source]
        source: BackendError,
    },
    #[error("{path} of action `{uses}` is not UTF-8 text")]
    MetadataNotUtf8 { path: String, uses: String },
    /// `diagnostics`: the errors rendered with their lines, one after another.
    #[error("the metadata of action `{uses}` has errors:\n{diagnostics}")]
    MetadataInvalid { uses: String, diagnostics: String },
    #[error("the metadata of action `{uses}` could not be read")]
    MetadataUnreadable { uses: String },
    #[error(
        "cannot find `action.yml` or `action.yaml` for `uses: {uses}` in {directory}{}",
        if *.local { LOCAL_ACTION_HINT } else { "" }
    )]
    MetadataMissing {
        uses: String,
        directory: String,
        /// A local action: the hint asks whether the repository was checked out.
        local: bool,
    },
    /// `path`: the `PATH` searched, as the step would have had it.
    #[error(
        "`uses: {uses}` is a JavaScript action (`runs.using: {using}`), which runs with the \
         job environment's `node`, but no `node` was found on PATH ({path}); install \
         Node.js {} or newer there (Debian: `apt-get install nodejs`) or run the job in an \
         image that has it",
        .using.trim_start_matches("node")
    )]
    NodeNotFound {
        uses: String,
        using: String,
        path: String,
    },
    #[error("`uses: {uses}`: {source}")]
    BuildImage {
        uses: String,
        #[source]
        source: BackendError,
    },
    #[error("`uses: {uses}`: composite actions may nest at most {depth} deep")]
    CompositeTooDeep { uses: String, depth: usize },
    #[error("`uses: {uses}`: composite actions have no `pre`")]
    CompositePre { uses: String },
    #[error("`uses: {uses}` names no image")]
    NoImage { uses: String },
}

const LOCAL_ACTION_HINT: &str = " (local actions are read from the workspace: does an earlier \
                                 step check the repository out?)";

/// ` (nor a, b)` after a shell that was not found, when it has fallbacks.
fn nor(fallbacks: &[String]) -> String {
    if fallbacks.is_empty() {
        String::new()
    } else {
        format!(" (nor {})", fallbacks.join(", "))
    }
}

#[cfg(test)]
mod tests;
