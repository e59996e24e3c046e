//! The [`JobEnvironment`] over a prepared pod: exec, files, step containers and teardown,
//! all addressed to the job container that `pod::prepare` created.
//!
//! Must not: create pods; `pod` does, and hands over what it made in `Created`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use futures_util::future::join_all;
use runnel_engine::backend::{
    BackendError, BuiltImage, ContainerRun, EnvironmentInfo, EnvironmentPaths, ExecExit,
    ExecOutput, ExecRequest, ImageBuild, JobEnvironment,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::archive::{self, PathKind};
use super::exec::{self, ExecTarget};
use super::step_container;
use super::{failed, is_not_found};

use super::pod::EXEC_DIR;

#[derive(Debug, Default)]
pub(crate) struct Created {
    /// Removal order: services first, then the job container.
    pub(crate) containers: Vec<String>,
    pub(crate) network: Option<String>,
}

/// A prepared pod.
pub(crate) struct DockerEnvironment {
    pub(crate) docker: Docker,
    pub(crate) paths: EnvironmentPaths,
    pub(crate) info: EnvironmentInfo,
    pub(crate) default_env: BTreeMap<String, String>,
    pub(crate) container_id: String,
    pub(crate) has_sh: bool,
    pub(crate) next_exec: AtomicU64,
    pub(crate) created: Mutex<Created>,
}

impl DockerEnvironment {
    pub(crate) fn record(&self, change: impl FnOnce(&mut Created)) {
        // A poisoned lock only means another thread panicked mid-update; the list is still
        // the best record of what to remove.
        let mut created = self
            .created
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut created);
    }

    pub(crate) fn exec_target(&self) -> ExecTarget<'_> {
        let sequence = self.next_exec.fetch_add(1, Ordering::Relaxed);
        ExecTarget {
            docker: &self.docker,
            container: &self.container_id,
            pid_file: self
                .has_sh
                .then(|| format!("{EXEC_DIR}/exec-{sequence}.pid")),
        }
    }
}

#[async_trait::async_trait]
impl JobEnvironment for DockerEnvironment {
    fn paths(&self) -> &EnvironmentPaths {
        &self.paths
    }

    fn info(&self) -> &EnvironmentInfo {
        &self.info
    }

    fn default_env(&self) -> BTreeMap<String, String> {
        self.default_env.clone()
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        exec::run(&self.exec_target(), request, output, cancel).await
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        let mode = if executable { 0o755 } else { 0o644 };
        archive::write_file(&self.docker, &self.container_id, path, contents, mode).await
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        archive::read_file(&self.docker, &self.container_id, path).await
    }

    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        let candidates: Vec<String> = if program.contains('/') {
            vec![program.to_owned()]
        } else {
            path.split(':')
                .filter(|dir| dir.starts_with('/'))
                .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
                .collect()
        };
        for candidate in candidates {
            let kind = archive::stat(&self.docker, &self.container_id, &candidate).await?;
            if kind == (PathKind::File { executable: true }) {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    async fn build_image(
        &self,
        build: &ImageBuild,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage, BackendError> {
        step_container::build(&self.docker, &self.container_id, build, cancel).await
    }

    async fn run_container(
        &self,
        run: &ContainerRun,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        step_container::run(&self.docker, &self.container_id, run, output, cancel).await
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        let created = {
            let mut created = self
                .created
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::take(&mut *created)
        };
        let mut first_error = None;
        // Services join the job container's namespace: remove them first, then the job
        // container (with its anonymous volumes), then the network.
        let (services, job) = created
            .containers
            .split_at(created.containers.len().saturating_sub(1));
        for group in [services, job] {
            let removals = group.iter().map(|id| async move {
                let options = RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build();
                match self.docker.remove_container(id, Some(options)).await {
                    Err(error) if !is_not_found(&error) => {
                        Err(failed("remove container", format!("{id}: {error}")))
                    }
                    _ => Ok(()),
                }
            });
            for result in join_all(removals).await {
                if let Err(error) = result {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(network) = created.network {
            match self.docker.remove_network(&network).await {
                Err(error) if !is_not_found(&error) => {
                    first_error
                        .get_or_insert(failed("remove network", format!("{network}: {error}")));
                }
                _ => {}
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
