//! A prepared job pod as the engine sees it: [`JobEnvironment`] over `exec`, torn down by
//! deleting the pod.
//!
//! Must not: create pods (`pod` and the backend do).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use runnel_engine::backend::{
    BackendError, EnvironmentInfo, EnvironmentPaths, ExecExit, ExecOutput, ExecRequest, HostRoute,
    JobEnvironment, RemoteWorkspace,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::exec::PodExec;
use super::pod::{self, EXEC_DIR};
use super::workspace::PodWorkspace;

pub(crate) struct KubernetesEnvironment {
    pub(crate) exec: PodExec,
    pub(crate) pods: Api<Pod>,
    pub(crate) paths: EnvironmentPaths,
    pub(crate) info: EnvironmentInfo,
    /// The job container's environment as a process there sees it.
    pub(crate) default_env: BTreeMap<String, String>,
    /// How the pod reaches this machine (its node's address, when that is this machine).
    pub(crate) host_route: HostRoute,
    pub(crate) next_exec: AtomicU64,
    pub(crate) torn_down: AtomicBool,
}

impl KubernetesEnvironment {
    fn operation(&self, what: &str) -> String {
        format!("{what} in pod `{}`", self.exec.pod)
    }
}

#[async_trait::async_trait]
impl JobEnvironment for KubernetesEnvironment {
    fn paths(&self) -> &EnvironmentPaths {
        &self.paths
    }

    fn info(&self) -> &EnvironmentInfo {
        &self.info
    }

    fn default_env(&self) -> BTreeMap<String, String> {
        self.default_env.clone()
    }

    fn host_route(&self) -> Option<HostRoute> {
        Some(self.host_route.clone())
    }

    fn remote_workspace(&self) -> Option<std::sync::Arc<dyn RemoteWorkspace>> {
        Some(std::sync::Arc::new(PodWorkspace {
            exec: self.exec.clone(),
            root: self.paths.workspace.clone(),
        }))
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        let sequence = self.next_exec.fetch_add(1, Ordering::Relaxed);
        let pid_file = format!("{EXEC_DIR}/{sequence}.pid");
        self.exec
            .step(request, &pid_file, output, cancel)
            .await
            .map_err(|error| error.into_backend(&self.operation("run a process")))
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        self.exec
            .write_file(path, contents, executable)
            .await
            .map_err(|error| error.into_backend(&self.operation("write a file")))
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.exec
            .read_file(path)
            .await
            .map_err(|error| error.into_backend(&self.operation("read a file")))
    }

    async fn read_files(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        self.exec
            .read_files(paths)
            .await
            .map_err(|error| error.into_backend(&self.operation("read files")))
    }

    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        self.exec
            .find_program(program, path)
            .await
            .map_err(|error| error.into_backend(&self.operation("look up a program")))
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        pod::delete(&self.pods, &self.exec.namespace, &self.exec.pod)
            .await
            .map_err(|error| error.into_backend("delete the job's pod"))
    }
}
