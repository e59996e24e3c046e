//! A prepared job pod as the engine sees it: [`JobEnvironment`] over `exec`, step containers
//! as ephemeral containers of the pod (`step_container`), torn down by deleting the pod.
//!
//! Must not: create pods (`pod` and the backend do).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use runnel_engine::backend::{
    BackendError, BuiltImage, ContainerRun, EnvironmentInfo, EnvironmentPaths, ExecExit,
    ExecOutput, ExecRequest, HostRoute, ImageBuild, JobEnvironment, RemoteWorkspace,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::KubeError;
use super::exec::PodExec;
use super::pod::{self, EXEC_DIR};
use super::step_container::{self, StepContainer};
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
    /// Numbers the step containers (`step-<n>`).
    pub(crate) next_container: AtomicU64,
    /// The job container's `imagePullPolicy`, also the step containers'.
    pub(crate) pull_policy: Option<String>,
    /// How long a step container may take to start.
    pub(crate) start_timeout: std::time::Duration,
    pub(crate) torn_down: AtomicBool,
}

impl KubernetesEnvironment {
    fn operation(&self, what: &str) -> String {
        format!("{what} in pod `{}`", self.exec.pod)
    }

    /// `error` as the engine sees it: [`BackendError::Lost`] when the pod is gone (said by
    /// `exec`, or found now by asking the API), so that the job ends there.
    async fn fail(&self, error: KubeError, what: &str) -> BackendError {
        let error = match error {
            KubeError::PodGone { .. } => error,
            other => match pod::lost(&self.pods, &self.exec.pod).await {
                Some(reason) => self.exec.gone(reason),
                None => other,
            },
        };
        match error {
            KubeError::PodGone { .. } => BackendError::Lost {
                operation: self.operation(what),
                source: Box::new(error),
            },
            other => other.into_backend(&self.operation(what)),
        }
    }
}

impl KubernetesEnvironment {
    /// A process that failed may have failed because the pod is going away (killed with it):
    /// then that is the error, not its exit code, and the job ends there.
    async fn check_exit(&self, exit: ExecExit, what: &str) -> Result<ExecExit, BackendError> {
        if matches!(exit, ExecExit::Code(code) if code != 0)
            && let Some(reason) = pod::lost(&self.pods, &self.exec.pod).await
        {
            return Err(BackendError::Lost {
                operation: self.operation(what),
                source: Box::new(self.exec.gone(reason)),
            });
        }
        Ok(exit)
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
        match self.exec.step(request, &pid_file, output, cancel).await {
            Ok(exit) => self.check_exit(exit, "run a process").await,
            Err(error) => Err(self.fail(error, "run a process").await),
        }
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        match self.exec.write_file(path, contents, executable).await {
            Ok(value) => Ok(value),
            Err(error) => Err(self.fail(error, "write a file").await),
        }
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        match self.exec.read_file(path).await {
            Ok(value) => Ok(value),
            Err(error) => Err(self.fail(error, "read a file").await),
        }
    }

    async fn read_files(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        match self.exec.read_files(paths).await {
            Ok(value) => Ok(value),
            Err(error) => Err(self.fail(error, "read files").await),
        }
    }

    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        match self.exec.find_program(program, path).await {
            Ok(value) => Ok(value),
            Err(error) => Err(self.fail(error, "look up a program").await),
        }
    }

    async fn build_image(
        &self,
        build: &ImageBuild,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage, BackendError> {
        let _ = cancel;
        Err(BackendError::Failed {
            operation: "build image".to_owned(),
            message: step_container::cannot_build(&build.context, &build.dockerfile),
        })
    }

    async fn run_container(
        &self,
        run: &ContainerRun,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        let sequence = self.next_container.fetch_add(1, Ordering::Relaxed);
        let step = StepContainer {
            exec: &self.exec,
            name: format!("step-{sequence}"),
            pull_policy: self.pull_policy.as_deref(),
            start_timeout: self.start_timeout,
        };
        match step.run(run, output, cancel).await {
            Ok(exit) => self.check_exit(exit, "run a step container").await,
            Err(error) => Err(self.fail(error, "run a step container").await),
        }
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
