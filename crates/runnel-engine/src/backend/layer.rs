//! [`EnvironmentLayer`]: a job environment with things added on top of another one —
//! variables for every process, the facts the `job` context reports, and work to do at
//! teardown. The runner's services (cache, artifacts), the daemon's `runner.envs` and the
//! host backend's service containers are each such a layer, so none of them forwards the
//! [`JobEnvironment`] methods itself.
//!
//! Must not: change how processes, files or step containers are run; every call reaches the
//! inner environment, with only the layer's variables added.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    BackendError, BuiltImage, ContainerRun, EnvironmentInfo, EnvironmentPaths, ExecExit,
    ExecOutput, ExecRequest, ImageBuild, JobEnvironment,
};

/// Work a layer does once the inner environment is torn down (release a grant, remove
/// containers the layer's owner started).
pub type TeardownHook =
    Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send>> + Send>;

/// What a layer adds; build it with the fields you need and `..EnvironmentLayer::default()`.
#[derive(Default)]
pub struct EnvironmentLayer {
    /// Variables every process of the job starts with, over the inner environment's
    /// `default_env` (the workflow's `env` still wins: the engine adds it on top). Step
    /// containers, which do not start from `default_env`, get the ones their step does not set.
    pub env: BTreeMap<String, String>,
    /// Replaces the inner environment's [`EnvironmentInfo`].
    pub info: Option<EnvironmentInfo>,
    /// Runs at the first `teardown`, after the inner environment's; a second `teardown` only
    /// reaches the inner environment. Its error is returned when the inner teardown succeeded.
    pub teardown: Option<TeardownHook>,
}

impl EnvironmentLayer {
    /// `inner` with this layer on top.
    pub fn wrap(self, inner: Box<dyn JobEnvironment>) -> Box<dyn JobEnvironment> {
        Box::new(LayeredEnvironment {
            inner,
            env: self.env,
            info: self.info,
            teardown: Mutex::new(self.teardown),
        })
    }
}

struct LayeredEnvironment {
    inner: Box<dyn JobEnvironment>,
    env: BTreeMap<String, String>,
    info: Option<EnvironmentInfo>,
    /// Taken at the first teardown.
    teardown: Mutex<Option<TeardownHook>>,
}

#[async_trait::async_trait]
impl JobEnvironment for LayeredEnvironment {
    fn paths(&self) -> &EnvironmentPaths {
        self.inner.paths()
    }

    fn info(&self) -> &EnvironmentInfo {
        self.info.as_ref().unwrap_or_else(|| self.inner.info())
    }

    fn default_env(&self) -> BTreeMap<String, String> {
        let mut env = self.inner.default_env();
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    fn workspace_on_host(&self) -> Option<std::path::PathBuf> {
        self.inner.workspace_on_host()
    }
    fn remote_workspace(&self) -> Option<std::sync::Arc<dyn crate::backend::RemoteWorkspace>> {
        self.inner.remote_workspace()
    }

    fn host_loopback(&self) -> Option<String> {
        self.inner.host_loopback()
    }

    fn server_origin(&self) -> Option<String> {
        self.inner.server_origin()
    }

    fn host_route(&self) -> Option<crate::backend::HostRoute> {
        self.inner.host_route()
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
    async fn read_files(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        self.inner.read_files(paths).await
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        let inner = self.inner.teardown().await;
        let hook = self
            .teardown
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let own = match hook {
            Some(hook) => hook().await,
            None => Ok(()),
        };
        inner.and(own)
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
        if self.env.is_empty() {
            return self.inner.run_container(run, output, cancel).await;
        }
        let mut run = run.clone();
        for (name, value) in &self.env {
            run.env.entry(name.clone()).or_insert_with(|| value.clone());
        }
        self.inner.run_container(&run, output, cancel).await
    }
}

#[cfg(test)]
mod tests;
