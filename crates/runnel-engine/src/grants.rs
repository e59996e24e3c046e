//! What a runner grants its jobs (the cache and artifact servers it offers over HTTP, the
//! runtime token): the [`RunnerGrants`] hook the caller plugs into [`crate::RunOptions::grants`], and the
//! [`EnvironmentLayer`] that hands each job its variables (`ACTIONS_CACHE_URL`,
//! `ACTIONS_RESULTS_URL`, `ACTIONS_RUNTIME_URL`, `ACTIONS_RUNTIME_TOKEN`, …).
//!
//! Owns: when a job gets its grant (after its environment exists, so the caller knows the
//! job's network) and when it is released (at teardown), and putting the variables under every
//! process of the job — steps, actions and step containers. Must not: know what the services
//! are or speak HTTP; the caller's implementation does.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::backend::{EnvironmentLayer, JobEnvironment, TeardownHook};

/// What a [`RunnerGrants`] implementation learns about a job whose environment is ready.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    /// Unique key of the job instance within the run (`build`, `test-1`, `gitea-task-7`).
    pub job_key: String,
    /// `github.repository` (`owner/name`): caches are scoped to it.
    pub repository: String,
    /// `github.run_id`: artifacts are scoped to the run.
    pub run_id: String,
    /// The steps run in a container (they reach the host through `network`'s gateway, not
    /// `127.0.0.1`).
    pub in_container: bool,
    /// The Docker network of the job container, when there is one.
    pub network: Option<String>,
    /// Where the job's processes reach this machine's `127.0.0.1` when they are not on it
    /// ([`crate::backend::JobEnvironment::host_loopback`]: a VM's gateway).
    pub host_loopback: Option<String>,
    /// Where the job's processes reach the run's server (Gitea) when not at its own address
    /// ([`crate::backend::JobEnvironment::server_origin`]: a VM's forward): URLs of the server
    /// the grant hands out take this origin ([`crate::replace_origin`]).
    pub server_origin: Option<String>,
    /// How the job reaches this machine when its backend says
    /// ([`crate::backend::JobEnvironment::host_route`]: a pod's node).
    pub host_route: Option<crate::backend::HostRoute>,
    /// How long the job may run: `timeout-minutes`, at most the runner's job timeout
    /// ([`crate::RunOptions::default_job_timeout`], which the daemon sets from `runner.timeout`
    /// and enforces), so a workflow cannot ask for a ten-year grant. Grants such as a signed
    /// cache token need not outlive it by much.
    pub timeout: std::time::Duration,
    /// `github.ref` (`refs/heads/main`, `refs/pull/7/head`): caches are isolated by ref.
    pub git_ref: String,
    /// `github.base_ref`: a pull request's base branch (`main`); empty otherwise.
    pub base_ref: String,
    /// `github.event.repository.default_branch` (`main`); empty when the event does not say.
    pub default_branch: String,
}

/// What a job gets: variables for every process, and the values to mask in its logs.
#[derive(Debug, Clone, Default)]
pub struct JobGrant {
    /// Set under every process of the job; the workflow's own `env:` still wins.
    pub env: BTreeMap<String, String>,
    /// Values never shown in logs (the runtime token).
    pub secrets: Vec<String>,
    /// Handed back to [`RunnerGrants::release`] at the job's end (say, the token to revoke).
    pub lease: String,
    /// Shown in the job's log as warnings (a service the job cannot use, and why).
    pub warnings: Vec<String>,
}

/// Why the runner could not grant a job its services; the runner's own error type, kept
/// with its causes for the job's warning.
pub type GrantError = Box<dyn std::error::Error + Send + Sync>;

/// What the runner grants its jobs. One per runner or run; shared by its jobs.
/// ("Services" are a workflow's service containers; these are the runner's own.)
#[async_trait::async_trait]
pub trait RunnerGrants: Send + Sync + std::fmt::Debug {
    /// Called once per job after its environment is prepared. An error is logged as a warning
    /// (with its causes) and the job runs without the services (as a cache outage only warns
    /// on GitHub).
    async fn start_job(&self, job: &GrantRequest) -> Result<JobGrant, GrantError>;

    /// Called once when the job's environment is torn down, with the grant's `lease`.
    async fn release(&self, lease: &str);
}

/// `environment` with a grant's variables under every process, and the grant released at
/// teardown (once, however often teardown is called).
pub(crate) fn with_grant(
    environment: Box<dyn JobEnvironment>,
    grants: Arc<dyn RunnerGrants>,
    grant: JobGrant,
) -> Box<dyn JobEnvironment> {
    let lease = grant.lease;
    let release: TeardownHook = Box::new(move || {
        Box::pin(async move {
            grants.release(&lease).await;
            Ok(())
        })
    });
    EnvironmentLayer {
        env: grant.env,
        info: None,
        teardown: Some(release),
    }
    .wrap(environment)
}
