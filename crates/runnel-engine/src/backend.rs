//! Where a job runs: the [`Backend`] trait and the [`JobEnvironment`] it prepares.
//!
//! The shape is chosen so that every isolation we plan fits behind it: host processes,
//! a Docker "pod" (job container + services sharing its network namespace), a microVM per
//! job (an agent inside the VM answers `exec`/`write_file`/`read_file`), and a Kubernetes pod
//! per job (`exec` through the API, files through `tar` over exec). So the engine never
//! assumes a shared file system: it writes scripts and reads env files through the
//! environment, and every path it hands over is a path *inside* the environment.
//!
//! Also: [`EnvironmentLayer`], the one wrapper that adds variables, facts or teardown work on
//! top of a prepared environment.
//!
//! Must not: know workflows or expressions; requests are plain data.

mod layer;
mod setup_log;

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use layer::{EnvironmentLayer, TeardownHook};
pub use setup_log::setup_log;
pub(crate) use setup_log::with_setup_log;

/// What a job needs from its environment, decided by the engine before `prepare`.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Stable id of this job instance (used in container names and labels).
    pub job_key: String,
    /// The job container (`container:` or the label's image); `None` for host-like backends.
    pub image: Option<ContainerSpec>,
    /// `services:` to start before the steps.
    pub services: Vec<ServiceSpec>,
    /// Host directory to expose as the workspace (copied or mounted, backend's choice).
    pub workspace_source: Option<std::path::PathBuf>,
    /// The job's `runs-on` labels, evaluated: a runner with several platforms (host, images)
    /// picks one by label (see `runnel_backends::router`).
    pub labels: Vec<String>,
}

/// A container to run: the job container or a service.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub image: String,
    pub env: BTreeMap<String, String>,
    /// `"8080:80"`, `"80"` as written in the workflow.
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    /// Extra `docker create` options, already checked against the allow-list.
    pub options: Vec<String>,
    pub credentials: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// The service id: its host name for the job.
    pub id: String,
    pub container: ContainerSpec,
    /// `entrypoint:`: one program replacing the image's entrypoint.
    pub entrypoint: Option<String>,
    /// `command:` as written (the backend splits it into arguments as a shell would),
    /// replacing the image's `CMD`.
    pub command: Option<String>,
}

/// Paths inside the environment that the engine uses.
#[derive(Debug, Clone)]
pub struct EnvironmentPaths {
    /// `GITHUB_WORKSPACE`.
    pub workspace: String,
    /// `RUNNER_TEMP`: scripts and env files go here.
    pub temp: String,
    /// `RUNNER_TOOL_CACHE`.
    pub tool_cache: String,
    /// `HOME` for steps.
    pub home: String,
}

/// One process to run inside the environment.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// Program and arguments; no shell is involved unless `argv` asks for one.
    pub argv: Vec<String>,
    /// The complete environment of the process (the engine has merged everything).
    pub env: BTreeMap<String, String>,
    /// Working directory inside the environment.
    pub workdir: String,
    /// Killed (process group / container exec) when this elapses.
    pub timeout: Option<Duration>,
}

/// Output of a running process, in the order it was produced per stream.
#[derive(Debug, Clone)]
pub enum ExecOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecExit {
    Code(i32),
    /// Killed because `timeout` elapsed.
    TimedOut,
    /// Killed because the cancellation token fired.
    Cancelled,
}

/// A directory of the job environment that a step container sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerMount {
    /// A path inside the job environment (as [`EnvironmentPaths`] names them). A missing
    /// directory is created.
    pub source: String,
    /// Where the step container sees it.
    pub target: String,
}

/// A step that runs in a container of its own (`uses: docker://…` and `runs.using: docker`
/// actions). It runs beside the job, not inside it: it shares the job's network (so services
/// answer on `localhost` and on their names, as they do for the job) and sees the job's
/// directories only through `mounts`. The backend labels it like the job's other objects and
/// removes it when it ends, times out or is cancelled.
#[derive(Debug, Clone)]
pub struct ContainerRun {
    /// An image reference (pulled when missing) or what [`JobEnvironment::build_image`] gave.
    pub image: String,
    /// Replaces the image's entrypoint (one program, no shell splitting).
    pub entrypoint: Option<String>,
    /// The container's arguments (its `CMD`); each item is one argv element. Empty: the
    /// image's own `CMD`.
    pub args: Vec<String>,
    /// The complete environment the engine wants (the image's `ENV` still applies under it).
    pub env: BTreeMap<String, String>,
    /// Working directory inside the step container.
    pub workdir: String,
    pub mounts: Vec<ContainerMount>,
    /// Killed and removed when this elapses.
    pub timeout: Option<Duration>,
}

/// An image to build from a directory of the job environment (a `Dockerfile` action).
#[derive(Debug, Clone)]
pub struct ImageBuild {
    /// The build context: a directory inside the job environment.
    pub context: String,
    /// The Dockerfile, relative to `context`.
    pub dockerfile: String,
}

/// What [`JobEnvironment::build_image`] produced.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The reference to put in [`ContainerRun::image`].
    pub image: String,
    /// An image built earlier from the same context was reused.
    pub reused: bool,
}

/// The error of backends without step containers (the default bodies).
fn container_steps_unsupported(operation: &str) -> BackendError {
    BackendError::Failed {
        operation: operation.to_owned(),
        message: "container actions (`docker://` images and `runs.using: docker`) need the \
                  Docker backend's container steps; run the job on a Docker label or with \
                  `container:`"
            .to_owned(),
    }
}

/// Facts about a prepared environment that the `job` context reports.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentInfo {
    pub container_id: Option<String>,
    pub network: Option<String>,
    /// service id → (container port → host port), as strings like GitHub's `job` context.
    pub service_ports: BTreeMap<String, BTreeMap<String, String>>,
    /// Whether `bash` exists in the environment (GitHub's default shell choice).
    pub has_bash: bool,
    /// The job container's image; `None` on the host (`ImageOS` is derived from it).
    pub image: Option<String>,
}

/// Why the backend could not do something; names the failing call and its cause.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{operation}: {message}")]
    Failed { operation: String, message: String },
    #[error("{operation}: {source}")]
    Io {
        operation: String,
        #[source]
        source: std::io::Error,
    },
    /// A backend's own typed error, boxed whole so that its cause (the Docker engine's answer,
    /// a file system error) stays reachable through `source()`. The backend's error says what
    /// went wrong and repeats its cause's text, as `Io` does.
    #[error("{operation}: {source}")]
    Backend {
        operation: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The environment itself is gone (a pod deleted or evicted, its node lost): nothing more
    /// can run in it. The engine fails the job and skips what is left of it, `always()` steps
    /// and post steps included; teardown is still called. `source` says what was lost and why.
    #[error("{operation}: {source}")]
    Lost {
        operation: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BackendError {
    /// Whether `error`, or an error in its `source()` chain, is a [`BackendError::Lost`].
    pub fn is_lost(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(BackendError::Lost { .. }) = error.downcast_ref::<BackendError>() {
                return true;
            }
            current = error.source();
        }
        false
    }
}

/// A workspace that is not on this machine (a pod's), as `hashFiles` reads it: the backend
/// lists and digests the files; the engine matches the patterns and combines the digests.
#[async_trait::async_trait]
pub trait RemoteWorkspace: Send + Sync {
    /// Every file below the workspace `hashFiles` may hash: `/`-separated paths relative to
    /// it, depth first, sorted by name (bytes) within each directory. Symbolic links as on
    /// this machine: one to a file inside the workspace is that file, one to a directory
    /// inside it is descended into only with `follow_symlinks`, one leading outside (or
    /// nowhere) counts as nothing.
    async fn list_files(&self, follow_symlinks: bool) -> Result<Vec<String>, BackendError>;
    /// The SHA-256 of the contents of each of `files` (paths as `list_files` gives them), in
    /// order.
    async fn digest_files(&self, files: &[String]) -> Result<Vec<[u8; 32]>, BackendError>;
}

/// Prepares job environments. One per runner; cheap to share.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Creates the environment (containers, network, work dir, services healthy) for one job.
    /// On error, nothing it created is left behind.
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError>;
}

/// How a job's processes reach this machine ([`JobEnvironment::host_route`]), so the runner
/// can hand out an address of its cache and artifact server that works there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRoute {
    /// At this address of one of this machine's interfaces (a pod's node IP when the node is
    /// this machine): the runner's server also listens there.
    Interface(std::net::IpAddr),
    /// Not at all as far as the backend can tell (a pod on another machine); says why.
    Unreachable(String),
}

/// What [`JobEnvironment::read_file`] says (after the path) about a symbolic link there.
pub const LINK_REFUSED: &str = "is a symbolic link: files the runner reads back are read only as regular files, never through a link";

/// A prepared environment in which a job's steps run. `teardown` must always be called; it is
/// idempotent and removes everything `prepare` made.
#[async_trait::async_trait]
pub trait JobEnvironment: Send + Sync {
    fn paths(&self) -> &EnvironmentPaths;
    fn info(&self) -> &EnvironmentInfo;
    /// Variables a process here has before the engine adds its own: for the host, the
    /// runner's environment (`PATH`, `HOME`, `LANG`, …); for a container, the image's `ENV`.
    /// The engine starts every step's environment from this (and prepends `GITHUB_PATH`
    /// entries to its `PATH`). Default: nothing.
    fn default_env(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    /// Where the workspace the steps see is on this machine, when it is there (a host job's
    /// directory, a Docker job's bind-mounted job directory): `hashFiles` reads it there.
    /// `None` (the default): the files are elsewhere (a remote engine, a VM, a pod).
    fn workspace_on_host(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// The address at which the job's processes reach this machine's loopback when it is not
    /// `127.0.0.1` (a VM's user-mode network maps its gateway onto it): the runner's cache and
    /// artifact server is handed out there. `None` (the default): loopback, or a container's
    /// network gateway.
    fn host_loopback(&self) -> Option<String> {
        None
    }
    /// The origin (`scheme://host:port`) at which the job's processes reach the run's server
    /// (Gitea: `github.server_url`, its API, artifacts and runtime URLs) when not at the
    /// server's own address: a restricted VM's forward to it, or a NAT gateway onto this
    /// machine's loopback. The engine hands the job the server's URLs at this origin (paths
    /// kept); the runner's grants do the same ([`crate::GrantRequest::server_origin`]).
    /// `None` (the default): the server's own URLs.
    fn server_origin(&self) -> Option<String> {
        None
    }
    /// How the job's processes reach this machine when the backend knows better than the
    /// defaults (loopback for host jobs, a Docker network's gateway for containers): a pod
    /// on this machine's node reaches it at the node's address; one on another machine may
    /// not reach it at all. `None` (the default): the defaults.
    fn host_route(&self) -> Option<HostRoute> {
        None
    }
    /// The workspace as `hashFiles` reads it when it is not on this machine (a pod's).
    /// `None` (the default): there is no such reader; `hashFiles` then fails saying so
    /// unless [`JobEnvironment::workspace_on_host`] answers.
    fn remote_workspace(&self) -> Option<std::sync::Arc<dyn RemoteWorkspace>> {
        None
    }
    /// Runs one process; output chunks are sent to `output` as they come.
    async fn exec(
        &self,
        request: &ExecRequest,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError>;
    /// Writes a file inside the environment (creating parent directories), mode 0644 or
    /// 0755 when `executable`.
    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError>;
    /// Reads a file inside the environment; `Ok(None)` when it does not exist. A symbolic
    /// link at `path` itself is not followed: it is an error saying [`LINK_REFUSED`] (a step
    /// that replaces `$GITHUB_OUTPUT` with a link to `/etc/passwd` gets nothing of that file
    /// into outputs, env or summary, on any backend).
    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError>;
    /// Reads several files at once, each as [`JobEnvironment::read_file`] would; the engine
    /// reads a step's file commands so. The default reads them one by one; a backend where
    /// each call is a round trip (a pod's exec) answers in one.
    async fn read_files(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        let mut contents = Vec::with_capacity(paths.len());
        for path in paths {
            contents.push(self.read_file(path).await?);
        }
        Ok(contents)
    }
    /// Removes everything `prepare` created. Safe to call twice.
    async fn teardown(&self) -> Result<(), BackendError>;
    /// Looks `program` up the way `exec` would with `path` as `PATH` (a name with a `/` is
    /// checked as a path). `Ok(None)`: not there. The default answers "assume it is there"
    /// with the name itself, so a backend that cannot look programs up lets `exec` fail.
    /// The engine uses it to pick shells (`bash` or `sh`, `python` or `python3`) and to say
    /// clearly when one is missing.
    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        let _ = path;
        Ok(Some(program.to_owned()))
    }
    /// Builds `build` (or finds the image built earlier from the same files). Default: the
    /// backend has no step containers.
    async fn build_image(
        &self,
        build: &ImageBuild,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage, BackendError> {
        let _ = (build, cancel);
        Err(container_steps_unsupported("build image"))
    }
    /// Runs a step container to its end; output chunks are sent to `output` as they come.
    /// Default: the backend has no step containers.
    async fn run_container(
        &self,
        run: &ContainerRun,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        let _ = (run, output, cancel);
        Err(container_steps_unsupported("run container"))
    }
}
