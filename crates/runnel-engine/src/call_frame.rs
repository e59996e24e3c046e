//! What the jobs of a called reusable workflow inherit from the call: [`CallFrame`], and
//! [`Origin`], the repository a workflow file belongs to.
//!
//! A leaf: the driver makes frames (through `reusable`), `contexts` and `job` read them.
//! Must not: resolve, load or run anything.

use std::path::PathBuf;

use runnel_expr::Object;

/// What the jobs of a called workflow inherit from the call.
#[derive(Debug, Clone)]
pub(crate) struct CallFrame {
    /// `github` of the top-level caller (GitHub: "the github context is always associated
    /// with the caller workflow"), before the job-specific fields.
    pub(crate) github: Object,
    /// The call's `with:`, typed and with defaults.
    pub(crate) inputs: Object,
    /// Identities of the files from the top-level workflow down to this one.
    pub(crate) chain: Vec<String>,
    /// Where `./` calls of the called file resolve.
    pub(crate) origin: Origin,
    /// Every secret of the levels above: masked below even when not passed down.
    pub(crate) mask: Vec<String>,
    /// `<call job key>/`: what the keys of the called job instances start with.
    pub(crate) key_prefix: String,
}

/// The repository a workflow file belongs to, where its `./` calls resolve.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// The run's own repository: the workspace source on this machine, or (with no
    /// workspace, as in the daemon) the event's repository at its commit, fetched.
    Workspace,
    /// A repository fetched for a remote call: its files at one commit.
    Repository {
        directory: PathBuf,
        /// `url@commit`: the identity prefix of its files.
        id: String,
    },
}
