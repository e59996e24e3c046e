//! Services a runner offers its jobs over HTTP (the cache and artifact servers): the
//! [`JobServices`] hook the caller plugs into [`crate::RunOptions::job_services`], and the
//! environment wrapper that hands each job its variables (`ACTIONS_CACHE_URL`,
//! `ACTIONS_RESULTS_URL`, `ACTIONS_RUNTIME_URL`, `ACTIONS_RUNTIME_TOKEN`, …).
//!
//! Owns: when a job gets its grant (after its environment exists, so the caller knows the
//! job's network) and when it is released (at teardown), and putting the variables under every
//! process of the job — steps, actions and step containers. Must not: know what the services
//! are or speak HTTP; the caller's implementation does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backend::{
    BackendError, BuiltImage, ContainerRun, EnvironmentInfo, EnvironmentPaths, ExecExit,
    ExecOutput, ExecRequest, ImageBuild, JobEnvironment,
};

/// What a [`JobServices`] implementation learns about a job whose environment is ready.
#[derive(Debug, Clone)]
pub struct JobServiceRequest {
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
}

/// What a job gets: variables for every process, and the values to mask in its logs.
#[derive(Debug, Clone, Default)]
pub struct JobServiceGrant {
    /// Set under every process of the job; the workflow's own `env:` still wins.
    pub env: BTreeMap<String, String>,
    /// Values never shown in logs (the runtime token).
    pub secrets: Vec<String>,
    /// Handed back to [`JobServices::release`] at the job's end (say, the token to revoke).
    pub lease: String,
}

/// The runner's services for jobs. One per runner or run; shared by its jobs.
#[async_trait::async_trait]
pub trait JobServices: Send + Sync + std::fmt::Debug {
    /// Called once per job after its environment is prepared. An error is logged as a warning
    /// and the job runs without the services (as a cache outage only warns on GitHub).
    async fn start_job(&self, job: &JobServiceRequest) -> Result<JobServiceGrant, String>;

    /// Called once when the job's environment is torn down, with the grant's `lease`.
    async fn release(&self, lease: &str);
}

/// A job environment whose processes also get a grant's variables, and whose teardown
/// releases the grant. Every [`JobEnvironment`] method is forwarded, the defaulted ones too.
pub(crate) struct ServicesEnvironment {
    inner: Box<dyn JobEnvironment>,
    env: BTreeMap<String, String>,
    services: Arc<dyn JobServices>,
    lease: Mutex<Option<String>>,
}

impl ServicesEnvironment {
    pub(crate) fn new(
        inner: Box<dyn JobEnvironment>,
        services: Arc<dyn JobServices>,
        grant: JobServiceGrant,
    ) -> ServicesEnvironment {
        ServicesEnvironment {
            inner,
            env: grant.env,
            services,
            lease: Mutex::new(Some(grant.lease)),
        }
    }
}

#[async_trait::async_trait]
impl JobEnvironment for ServicesEnvironment {
    fn paths(&self) -> &EnvironmentPaths {
        self.inner.paths()
    }

    fn info(&self) -> &EnvironmentInfo {
        self.inner.info()
    }

    fn default_env(&self) -> BTreeMap<String, String> {
        let mut env = self.inner.default_env();
        env.extend(self.env.clone());
        env
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        self.inner.exec(request, output, cancel).await
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        self.inner.write_file(path, contents, executable).await
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.inner.read_file(path).await
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        let result = self.inner.teardown().await;
        // Taken once, so a second teardown does not release twice.
        let lease = self
            .lease
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(lease) = lease {
            self.services.release(&lease).await;
        }
        result
    }

    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        self.inner.find_program(program, path).await
    }

    async fn build_image(
        &self,
        build: &ImageBuild,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage, BackendError> {
        self.inner.build_image(build, cancel).await
    }

    async fn run_container(
        &self,
        run: &ContainerRun,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        // Step containers do not start from `default_env`; the step's own variables win.
        let mut run = run.clone();
        for (name, value) in &self.env {
            run.env.entry(name.clone()).or_insert_with(|| value.clone());
        }
        self.inner.run_container(&run, output, cancel).await
    }
}
