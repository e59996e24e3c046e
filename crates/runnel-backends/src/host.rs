//! The host backend: steps run as process groups on this machine in a per-job work directory.
//!
//! Owns: the job directory (`workspace/` or the source directory in place, `temp/`,
//! `tool_cache/`, `home/`), spawning processes with exactly the environment the engine gives,
//! killing whole process groups on timeout, cancellation and teardown, and file access that
//! stays inside the job's directories, and (`leftovers`) the record of a job's process groups
//! that lets the next start clean up after a killed runner. Must not: parse workflows or evaluate expressions;
//! run containers (`services` asks the Docker backend for the job's services).

mod error;
mod files;
pub(crate) mod leftovers;
mod process;
pub(crate) mod services;
mod signals;

pub use signals::restore_default_signals_for_steps;

pub use leftovers::{LeftoverReport, cleanup as cleanup_leftovers};
pub use services::HostWithDockerServices;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runnel_engine::backend::{
    Backend, BackendError, EnvironmentInfo, EnvironmentPaths, ExecExit, ExecOutput, ExecRequest,
    JobEnvironment, JobSpec,
};
use runnel_engine::runner_env;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use error::HostError;

/// Where a job's workspace comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkspaceMode {
    /// Steps work in the source directory itself (act's bind mode). The default because a
    /// local run is usually about the files the user is editing: build outputs stay where
    /// the user expects them, nothing is copied, and a large repository starts instantly.
    #[default]
    InPlace,
    /// Steps work in a copy under the job directory, removed at teardown, so a job cannot
    /// change the source tree.
    Copy,
}

/// Which `HOME` steps see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HomeMode {
    /// The runner's own `HOME`: tools installed per user (rustup, pyenv, nvm) keep working,
    /// as on a self-hosted GitHub runner.
    #[default]
    Inherit,
    /// The job directory's `home/`, empty at the start of every job.
    Isolated,
}

/// Settings of the host backend.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Directory under which job directories are made; the system temp dir when `None`.
    pub root: Option<PathBuf>,
    pub workspace: WorkspaceMode,
    pub home: HomeMode,
    /// Variables of the runner's own environment that steps start with; `None` passes all
    /// of them except the runner's `RUNNEL_*` settings (a self-hosted GitHub runner also
    /// passes its environment on).
    pub inherit_env: Option<Vec<String>>,
    /// Leave the runner's own settings and credentials ([`runner_env::is_runner_only`]) out of what steps
    /// inherit: a registered runner sets this, so a job never sees the registration token or
    /// the cache's S3 keys. An operator who wants a job to have one names it in
    /// `runner.envs` (or `runner.env_file`), which the daemon adds on top.
    pub withhold_runner_env: bool,
    /// `runner.tool_cache_mode: shared`: every job's `RUNNER_TOOL_CACHE` is `tool_cache/`
    /// under the root (the Gitea runner's directory too), kept after the job; otherwise each
    /// job has its own, removed with it.
    pub shared_tool_cache: bool,
}

/// Runs jobs on this machine.
#[derive(Debug, Clone, Default)]
pub struct HostBackend {
    config: HostConfig,
}

impl HostBackend {
    pub fn new(config: HostConfig) -> HostBackend {
        HostBackend { config }
    }

    /// Kills the process groups and removes the job directories that runner processes which
    /// are gone (SIGKILLed, crashed) left under this backend's root; see [`cleanup_leftovers`].
    pub fn cleanup_leftovers(&self) -> LeftoverReport {
        leftovers::cleanup(&root_of(&self.config))
    }
}

/// The directory under the root that `shared_tool_cache` jobs share (not a job directory:
/// leftover cleanup never touches it).
pub const SHARED_TOOL_CACHE: &str = "tool_cache";

/// Where job directories are made.
fn root_of(config: &HostConfig) -> PathBuf {
    config.root.clone().unwrap_or_else(std::env::temp_dir)
}

#[async_trait::async_trait]
impl Backend for HostBackend {
    async fn prepare(
        &self,
        spec: &JobSpec,
        _cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        if let Some(image) = &spec.image {
            return Err(HostError::ContainerNeedsDocker {
                job_key: spec.job_key.clone(),
                image: image.image.clone(),
            }
            .into());
        }
        if let Some(service) = spec.services.first() {
            return Err(HostError::ServicesNeedDocker {
                job_key: spec.job_key.clone(),
                service: service.id.clone(),
            }
            .into());
        }
        let environment = HostEnvironment::create(&self.config, spec)?;
        Ok(Box::new(environment))
    }
}

/// One job's directory and the process groups started in it.
pub struct HostEnvironment {
    job_dir: PathBuf,
    workspace: PathBuf,
    paths: EnvironmentPaths,
    info: EnvironmentInfo,
    default_env: BTreeMap<String, String>,
    /// Process groups started by `exec`, killed at teardown (background processes a step
    /// left behind, as GitHub's runner cleans up orphans at job end), as also written to the
    /// job directory's record for the cleanup after a killed runner.
    groups: Mutex<Vec<leftovers::Group>>,
}

impl HostEnvironment {
    fn create(config: &HostConfig, spec: &JobSpec) -> Result<HostEnvironment, BackendError> {
        let root = root_of(config);
        let io = |operation: String| move |source| BackendError::Io { operation, source };
        std::fs::create_dir_all(&root).map_err(io(format!("create {}", root.display())))?;
        let prefix = format!(
            "{}{}-",
            leftovers::JOB_DIR_PREFIX,
            files::sanitize(&spec.job_key)
        );
        // Private to the runner's user: the step scripts in it hold secret values inline.
        let job_dir = tempfile::Builder::new()
            .prefix(&prefix)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&root)
            .map_err(io(format!("create job directory in {}", root.display())))?
            .keep();
        let result = Self::populate(config, spec, &job_dir);
        if result.is_err() {
            // Nothing `prepare` made may be left behind on error.
            let _ = std::fs::remove_dir_all(&job_dir);
        }
        result
    }

    fn populate(
        config: &HostConfig,
        spec: &JobSpec,
        job_dir: &Path,
    ) -> Result<HostEnvironment, BackendError> {
        let io = |operation: String| move |source| BackendError::Io { operation, source };
        // First, so a runner killed while preparing leaves nothing a restart would not remove.
        leftovers::write_record(job_dir, &[]).map_err(io(format!(
            "write {}",
            job_dir.join(leftovers::RECORD).display()
        )))?;
        let tool_cache = if config.shared_tool_cache {
            root_of(config).join(SHARED_TOOL_CACHE)
        } else {
            job_dir.join("tool_cache")
        };
        for dir in [
            job_dir.join("temp"),
            tool_cache.clone(),
            job_dir.join("home"),
        ] {
            std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        }
        let own_workspace = job_dir.join("workspace");
        let workspace = match (&spec.workspace_source, config.workspace) {
            (Some(source), WorkspaceMode::InPlace) => std::fs::canonicalize(source)
                .map_err(io(format!("workspace source {}", source.display())))?,
            (Some(source), WorkspaceMode::Copy) => {
                files::copy_tree(source, &own_workspace)?;
                own_workspace
            }
            (None, _) => {
                std::fs::create_dir_all(&own_workspace)
                    .map_err(io(format!("create {}", own_workspace.display())))?;
                own_workspace
            }
        };
        let mut default_env = inherited_env(config.inherit_env.as_deref());
        if config.withhold_runner_env {
            default_env.retain(|name, _| !runner_env::is_runner_only(name));
        }
        let home = match config.home {
            HomeMode::Isolated => job_dir.join("home"),
            HomeMode::Inherit => default_env
                .get("HOME")
                .map_or_else(|| job_dir.join("home"), PathBuf::from),
        };
        default_env.insert("HOME".to_owned(), display(&home));
        let path_var = default_env.get("PATH").cloned().unwrap_or_default();
        let has_bash = process::which("bash", &path_var).is_some();
        Ok(HostEnvironment {
            job_dir: job_dir.to_path_buf(),
            paths: EnvironmentPaths {
                workspace: display(&workspace),
                temp: display(&job_dir.join("temp")),
                tool_cache: display(&tool_cache),
                home: display(&home),
            },
            workspace,
            info: EnvironmentInfo {
                has_bash,
                ..EnvironmentInfo::default()
            },
            default_env,
            groups: Mutex::new(Vec::new()),
        })
    }

    /// The job directory (for tests and diagnostics).
    pub fn job_dir(&self) -> &Path {
        &self.job_dir
    }

    /// `path` as a host path, when it lies inside the job directory or the workspace.
    fn checked_path(&self, access: &'static str, path: &str) -> Result<PathBuf, HostError> {
        files::inside(Path::new(path), &[&self.job_dir, &self.workspace]).ok_or_else(|| {
            HostError::OutsideJob {
                access,
                path: path.to_owned(),
            }
        })
    }
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The runner's environment that steps start with.
fn inherited_env(only: Option<&[String]>) -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| match only {
            Some(names) => names.iter().any(|n| n == name),
            None => !name.starts_with("RUNNEL_"),
        })
        .collect()
}

#[async_trait::async_trait]
impl JobEnvironment for HostEnvironment {
    fn paths(&self) -> &EnvironmentPaths {
        &self.paths
    }

    fn workspace_on_host(&self) -> Option<PathBuf> {
        Some(self.workspace.clone())
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
        let workdir = PathBuf::from(&request.workdir);
        process::run(request, &workdir, output, cancel, |pgid| {
            if let Ok(mut groups) = self.groups.lock() {
                groups.push(leftovers::Group::started(pgid));
                if let Err(error) = leftovers::write_record(&self.job_dir, &groups) {
                    tracing::warn!(%error, pgid, "cannot record a process group for cleanup");
                }
            }
        })
        .await
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        let host_path = self.checked_path("write", path)?;
        files::write(&host_path, contents, executable)
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let host_path = self.checked_path("read", path)?;
        if std::fs::symlink_metadata(&host_path).is_ok_and(|meta| meta.file_type().is_symlink()) {
            return Err(BackendError::Io {
                operation: format!("read {path}"),
                source: std::io::Error::other(runnel_engine::backend::LINK_REFUSED),
            });
        }
        match std::fs::read(&host_path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(BackendError::Io {
                operation: format!("read {path}"),
                source,
            }),
        }
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        let groups = self
            .groups
            .lock()
            .map(|mut groups| std::mem::take(&mut *groups))
            .unwrap_or_default();
        for group in groups {
            process::kill_group_now(group.pgid);
        }
        match std::fs::remove_dir_all(&self.job_dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BackendError::Io {
                operation: format!("remove job directory {}", self.job_dir.display()),
                source,
            }),
        }
    }

    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        Ok(process::which(program, path).map(|found| display(&found)))
    }
}
