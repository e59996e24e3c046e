//! The [`JobEnvironment`] over a prepared pod: exec, files, step containers and teardown,
//! all addressed to the job container that `pod::prepare` created.
//!
//! Must not: create pods; `pod` does, and hands over what it made in `Created`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bollard::Docker;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use futures_util::future::join_all;
use runnel_engine::backend::{
    BackendError, BuiltImage, ContainerRun, EnvironmentInfo, EnvironmentPaths, ExecExit,
    ExecOutput, ExecRequest, ImageBuild, JobEnvironment,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::agent::{self, Agent};
use super::archive::{self, PathKind};
use super::error::DockerError;
use super::exec::{self, ExecTarget};
use super::is_not_found;
use super::step_container::{self, StepPolicy};
use super::workdir::{HostIo, HostWorkDir};

use super::pod::EXEC_DIR;

/// Container removals still running after `teardown` returned.
pub(crate) type PendingTeardowns =
    Arc<Mutex<Vec<tokio::task::JoinHandle<Result<(), BackendError>>>>>;

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
    pub(crate) container_name: String,
    pub(crate) has_sh: bool,
    /// The job's `/__w` and `HOME` on this machine; `None`: in a volume, reached through the
    /// archive API.
    pub(crate) work_dir: Option<HostWorkDir>,
    /// Where teardown leaves its container removals when they run in the background.
    pub(crate) background_teardowns: Option<PendingTeardowns>,
    pub(crate) next_exec: AtomicU64,
    pub(crate) created: Mutex<Created>,
    /// Runs processes without `docker exec` when the job container has it (`agent`).
    pub(crate) agent: Option<Agent>,
    /// Pulls, builds and privileges of step containers.
    pub(crate) steps: StepPolicy,
    /// The source tree mounted as the workspace (`--bind`), if any.
    pub(crate) bound_workspace: Option<std::path::PathBuf>,
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

impl DockerEnvironment {
    /// Why the job container no longer runs; `None` while it does, or when the engine cannot
    /// tell (then the original error stands).
    async fn lost(&self) -> Option<String> {
        match self
            .docker
            .inspect_container(&self.container_id, None)
            .await
        {
            Err(error) if is_not_found(&error) => Some("it was removed".to_owned()),
            Err(_) => None,
            Ok(inspect) => inspect.state.as_ref().and_then(gone_reason),
        }
    }

    /// `error` as the engine sees it: [`BackendError::Lost`] when the job container is gone
    /// (asked now), so that the job ends there instead of running its other steps against a
    /// missing container.
    async fn fail(&self, error: BackendError, what: &str) -> BackendError {
        match self.lost().await {
            Some(reason) => self.lost_error(what, reason),
            None => error,
        }
    }

    fn lost_error(&self, what: &str, reason: String) -> BackendError {
        BackendError::Lost {
            operation: what.to_owned(),
            source: Box::new(DockerError::ContainerGone {
                container: self.container_name.clone(),
                reason,
            }),
        }
    }

    /// A process that failed may have failed because its container went away: then that is
    /// the error, not the exit code.
    async fn check_exit(&self, exit: ExecExit, what: &str) -> Result<ExecExit, BackendError> {
        if matches!(exit, ExecExit::Code(code) if code != 0)
            && let Some(reason) = self.lost().await
        {
            return Err(self.lost_error(what, reason));
        }
        Ok(exit)
    }

    /// Removes the job directory. Files that steps made as another user (root in the
    /// container, a non-root runner here) may not be ours to remove: then they are removed
    /// from inside the job container, as root, and the directory again.
    async fn remove_work_dir(
        &self,
        work_dir: &HostWorkDir,
        created: &Created,
    ) -> Result<(), BackendError> {
        let Err(error) = work_dir.remove().await else {
            return Ok(());
        };
        let Some(job_container) = created.containers.last() else {
            return Err(error);
        };
        tracing::debug!(%error, "removing the job directory from inside the job container");
        // Never the workspace when it is the user's bind-mounted source tree.
        let mut targets = vec!["/__w/_temp", "/__w/_tool", "/__w/_runnel", "/github/home"];
        if self.info.has_bash || self.has_sh {
            if !work_dir.is_shadowed(super::pod::WORKSPACE) {
                targets.push(super::pod::WORKSPACE);
            }
            let mut argv = vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                r#"for d in "$@"; do find "$d" -mindepth 1 -maxdepth 1 -exec rm -rf {} +; done"#
                    .to_owned(),
                "sh".to_owned(),
            ];
            argv.extend(targets.iter().map(|target| (*target).to_owned()));
            exec::run_as_root_quietly(&self.docker, job_container, argv).await;
        }
        work_dir.remove().await
    }
}

#[async_trait::async_trait]
impl JobEnvironment for DockerEnvironment {
    fn paths(&self) -> &EnvironmentPaths {
        &self.paths
    }

    fn workspace_on_host(&self) -> Option<std::path::PathBuf> {
        if let Some(bound) = &self.bound_workspace {
            return Some(bound.clone());
        }
        // `workspace_parent` mounts the same directory elsewhere in the container.
        let work_dir = self.work_dir.as_ref()?;
        Some(work_dir.work_on_host().join("workspace"))
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
        let what = "exec in container";
        let target = self.exec_target();
        if let Some(agent) = &self.agent {
            match agent.run(&target, request, &output, cancel).await {
                Ok(agent::Outcome::Exited(exit)) => return self.check_exit(exit, what).await,
                Ok(_) => {}
                Err(error) => return Err(self.fail(error.into(), what).await),
            }
        }
        match exec::run(&target, request, output, cancel).await {
            Ok(exit) => self.check_exit(exit, what).await,
            Err(error) => Err(self.fail(error.into(), what).await),
        }
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        let mode = if executable { 0o755 } else { 0o644 };
        if let Some(work_dir) = &self.work_dir
            && let HostIo::Done(()) = work_dir.write(path, contents, mode).await?
        {
            return Ok(());
        }
        match archive::write_file(&self.docker, &self.container_id, path, contents, mode).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.fail(error.into(), "write file in container").await),
        }
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        if let Some(work_dir) = &self.work_dir
            && let HostIo::Done(contents) = work_dir.read(path).await?
        {
            return Ok(contents);
        }
        match archive::read_file(&self.docker, &self.container_id, path).await {
            Ok(contents) => Ok(contents),
            Err(error) => Err(self.fail(error.into(), "read file in container").await),
        }
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
        // All at once (a `stat` is a round trip to the engine); the first in PATH order wins.
        let kinds = join_all(
            candidates
                .iter()
                .map(|candidate| archive::stat(&self.docker, &self.container_id, candidate)),
        )
        .await;
        let what = "look up a program in container";
        for (candidate, kind) in candidates.into_iter().zip(kinds) {
            match kind {
                Ok(PathKind::File { executable: true }) => return Ok(Some(candidate)),
                Ok(_) => {}
                Err(error) => return Err(self.fail(error.into(), what).await),
            }
        }
        // The engine's "not found" for a removed container looks like a missing program.
        if let Some(reason) = self.lost().await {
            return Err(self.lost_error(what, reason));
        }
        Ok(None)
    }

    async fn build_image(
        &self,
        build: &ImageBuild,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage, BackendError> {
        Ok(
            step_container::build(&self.docker, &self.container_id, &self.steps, build, cancel)
                .await?,
        )
    }

    async fn run_container(
        &self,
        run: &ContainerRun,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        let what = "run step container";
        match step_container::run(
            &self.docker,
            &self.container_id,
            &self.steps,
            run,
            output,
            cancel,
        )
        .await
        {
            Ok(exit) => self.check_exit(exit, what).await,
            Err(error) => Err(self.fail(error.into(), what).await),
        }
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        let created = {
            let mut created = self
                .created
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::take(&mut *created)
        };
        let work_dir = match &self.work_dir {
            Some(work_dir) => self.remove_work_dir(work_dir, &created).await,
            None => Ok(()),
        };
        let objects = match &self.background_teardowns {
            Some(pending) => {
                // Whoever drives the backend awaits these before it exits
                // (`DockerBackend::finish_teardowns`).
                let docker = self.docker.clone();
                let handle = tokio::spawn(async move {
                    remove_objects(&docker, created)
                        .await
                        .map_err(BackendError::from)
                });
                pending
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(handle);
                Ok(())
            }
            None => remove_objects(&self.docker, created)
                .await
                .map_err(BackendError::from),
        };
        work_dir.and(objects)
    }
}

/// Removes what `prepare` created: services first (they join the job container's namespace),
/// then the job container (with its anonymous volumes), then the network.
pub(crate) async fn remove_objects(docker: &Docker, created: Created) -> Result<(), DockerError> {
    let mut first_error = None;
    let (services, job) = created
        .containers
        .split_at(created.containers.len().saturating_sub(1));
    for group in [services, job] {
        let removals = group.iter().map(|id| async move {
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(id, Some(options)).await {
                Err(source) if !is_not_found(&source) => Err(DockerError::Engine {
                    operation: "remove container",
                    subject: id.clone(),
                    source,
                }),
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
        match docker.remove_network(&network).await {
            Err(source) if !is_not_found(&source) => {
                first_error.get_or_insert(DockerError::Engine {
                    operation: "remove network",
                    subject: network,
                    source,
                });
            }
            _ => {}
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Why a container in `state` no longer runs jobs; `None` while it runs.
fn gone_reason(state: &bollard::models::ContainerState) -> Option<String> {
    if state.running == Some(true) && state.paused != Some(true) {
        return None;
    }
    if state.paused == Some(true) {
        return Some("it is paused".to_owned());
    }
    let mut reason = if state.oom_killed == Some(true) {
        "the kernel killed it for lack of memory (OOM)".to_owned()
    } else {
        match state.exit_code {
            Some(code) => format!("it stopped with exit code {code}"),
            None => "it stopped".to_owned(),
        }
    };
    if let Some(error) = state.error.as_deref().filter(|error| !error.is_empty()) {
        reason.push_str(&format!(" ({error})"));
    }
    Some(reason)
}

#[cfg(test)]
mod tests {
    use bollard::models::ContainerState;

    use super::gone_reason;

    #[test]
    fn a_running_container_is_not_gone_and_the_others_say_why() {
        let state = |running, paused, oom, code, error: &str| ContainerState {
            running: Some(running),
            paused: Some(paused),
            oom_killed: Some(oom),
            exit_code: code,
            error: Some(error.to_owned()),
            ..ContainerState::default()
        };
        assert_eq!(gone_reason(&state(true, false, false, None, "")), None);
        assert_eq!(
            gone_reason(&state(true, true, false, None, "")).as_deref(),
            Some("it is paused")
        );
        assert_eq!(
            gone_reason(&state(false, false, false, Some(137), "")).as_deref(),
            Some("it stopped with exit code 137")
        );
        assert_eq!(
            gone_reason(&state(false, false, true, Some(137), "")).as_deref(),
            Some("the kernel killed it for lack of memory (OOM)")
        );
        assert_eq!(
            gone_reason(&state(false, false, false, Some(255), "mount failed")).as_deref(),
            Some("it stopped with exit code 255 (mount failed)")
        );
    }
}
