//! One job's VM: booting it (job directory, overlay, QEMU, the agent's `Ready`), the
//! [`JobEnvironment`] answered through the agent, and teardown.
//!
//! Must not: leave QEMU, `virtiofsd`, the overlay or the sockets behind: every error while
//! booting, and teardown, kills QEMU and `virtiofsd` and removes the job directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use runnel_engine::backend::{
    BackendError, EnvironmentInfo, EnvironmentPaths, ExecExit, ExecOutput, ExecRequest,
    JobEnvironment, JobSpec,
};
use runnel_vm_agent::protocol::{Reply, Request};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::channel::{self, Channel, Replies};
use super::error::{VmError, into_backend};
use super::{Image, VmConfig, VmShare, leftovers, preload, qemu_args, virtiofs};

/// What an image runs once its agent answers, before the job's first step (the Docker image
/// starts its engine there and loads the preloaded images); an image without it has none.
const START_HOOK: &str = "/usr/local/lib/runnel-vm/start";
/// How long the start hook may take.
const START_HOOK_TIMEOUT: Duration = Duration::from_secs(300);
/// Where the job's directory is in the guest.
const GUEST_ROOT: &str = "/runnel";
/// How long a killed process may take to report its end before the step ends anyway.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// The `PATH` of Debian's root file system.
const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A booted VM with its agent.
pub(crate) struct VmEnvironment {
    job_dir: PathBuf,
    workspace: PathBuf,
    paths: EnvironmentPaths,
    info: EnvironmentInfo,
    channel: Channel,
    qemu: tokio::sync::Mutex<Option<Child>>,
    /// The job's `virtiofsd`, when the job's directory is shared over virtiofs.
    virtiofsd: tokio::sync::Mutex<Option<Child>>,
    /// Where the guest reaches this machine's loopback (the cache server).
    host_loopback: &'static str,
    /// Where the guest reaches the Gitea server, when not at its own address.
    server_origin: Option<String>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VmError {
    let what = what.into();
    move |source| VmError::Io { what, source }
}

/// `job_key` as a short file name part (the agent socket's path must stay under 108 bytes).
fn sanitize(job_key: &str) -> String {
    job_key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(32)
        .collect()
}

impl VmEnvironment {
    pub(crate) async fn boot(
        config: &VmConfig,
        image: &Image,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<VmEnvironment, VmError> {
        std::fs::create_dir_all(&config.root)
            .map_err(io(format!("create {}", config.root.display())))?;
        let job_dir = tempfile::Builder::new()
            .prefix(&format!(
                "{}{}-",
                leftovers::JOB_DIR_PREFIX,
                sanitize(&spec.job_key)
            ))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&config.root)
            .map_err(io(format!(
                "create a job directory in {}",
                config.root.display()
            )))?
            .keep();
        let mut qemu = None;
        let mut virtiofsd = None;
        let result = Self::start(
            config,
            image,
            spec,
            cancel,
            &job_dir,
            &mut qemu,
            &mut virtiofsd,
        )
        .await;
        if result.is_err() {
            // Nothing `prepare` made may be left behind on error.
            for mut child in qemu.into_iter().chain(virtiofsd) {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
            let _ = std::fs::remove_dir_all(&job_dir);
        }
        result
    }

    async fn start(
        config: &VmConfig,
        image: &Image,
        spec: &JobSpec,
        cancel: &CancellationToken,
        job_dir: &Path,
        qemu: &mut Option<Child>,
        virtiofsd: &mut Option<Child>,
    ) -> Result<VmEnvironment, VmError> {
        // First, so a runner killed while booting leaves nothing a restart would not remove.
        leftovers::write_record(job_dir, None, None)
            .map_err(io(format!("write the record in {}", job_dir.display())))?;
        let share = job_dir.join("job");
        for sub in ["workspace", "temp", "tool_cache", "home"] {
            let dir = share.join(sub);
            std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        }
        let workspace = share.join("workspace");
        if let Some(source) = &spec.workspace_source {
            crate::tree_copy::copy_tree(source, &workspace).map_err(|error| VmError::Tool {
                program: "copy the workspace".to_owned(),
                detail: error.to_string(),
            })?;
        }
        // Images for the guest's own Docker engine, loaded by the image's start hook.
        let service_images: Vec<String> = spec
            .services
            .iter()
            .map(|service| service.container.image.clone())
            .collect();
        preload::save(
            &config.preload,
            &service_images,
            config.docker_host.as_deref(),
            &share.join("preload"),
        )
        .await?;
        // The agent, in a directory of its own: the guest sees only it.
        let agent_dir = job_dir.join("agent");
        std::fs::create_dir_all(&agent_dir)
            .map_err(io(format!("create {}", agent_dir.display())))?;
        std::fs::copy(&config.agent, agent_dir.join("runnel-vm-agent")).map_err(|source| {
            VmError::AgentMissing {
                path: config.agent.clone(),
                source,
            }
        })?;
        let overlay = job_dir.join("overlay.qcow2");
        let output = Command::new(&config.qemu_img)
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&image.rootfs)
            .arg(&overlay)
            .args(config.disk_size.map(|size| size.to_string()))
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io(format!("run {}", config.qemu_img.display())))?;
        if !output.status.success() {
            return Err(VmError::Tool {
                program: config.qemu_img.display().to_string(),
                detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        let mut virtiofsd_pid = None;
        if config.share == VmShare::Virtiofs {
            let program = config
                .virtiofsd
                .clone()
                .unwrap_or_else(|| PathBuf::from("virtiofsd"));
            // Recorded before QEMU starts, so a runner killed in between leaves nothing.
            let child = virtiofs::start(&program, job_dir, &share).await?;
            virtiofsd_pid = child.id();
            *virtiofsd = Some(child);
            leftovers::write_record(job_dir, None, virtiofsd_pid)
                .map_err(io(format!("write the record in {}", job_dir.display())))?;
        }
        let log = std::fs::File::create(job_dir.join("qemu.log"))
            .map_err(io(format!("create {}", job_dir.join("qemu.log").display())))?;
        let log_err = log.try_clone().map_err(io("qemu.log"))?;
        let child = Command::new(&config.qemu)
            .args(qemu_args(config, image, job_dir, &share, &agent_dir)?)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("start {}", config.qemu.display())))?;
        let pid = child.id();
        let child = qemu.insert(child);
        leftovers::write_record(job_dir, pid, virtiofsd_pid)
            .map_err(io(format!("write the record in {}", job_dir.display())))?;

        let socket = job_dir.join("agent.sock");
        let console = || last_lines(job_dir);
        let boot = async {
            let stream = channel::connect(&socket, Duration::from_secs(10)).await?;
            let (mut reader, writer) = stream.into_split();
            let version = channel::wait_ready(&mut reader).await?;
            Ok::<_, VmError>((version, reader, writer))
        };
        let (version, reader, writer) = tokio::select! {
            booted = tokio::time::timeout(config.boot_timeout, boot) => match booted {
                Ok(result) => result?,
                Err(_) => return Err(VmError::BootTimeout {
                    timeout: config.boot_timeout,
                    console: console(),
                }),
            },
            status = child.wait() => {
                return Err(VmError::QemuExited {
                    status: status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    console: console(),
                });
            }
            () = cancel.cancelled() => return Err(VmError::BootCancelled),
        };
        tracing::info!(job = spec.job_key, agent = version, "VM up");
        let guest = |sub: &str| format!("{GUEST_ROOT}/{sub}");
        Ok(VmEnvironment {
            job_dir: job_dir.to_path_buf(),
            workspace,
            paths: EnvironmentPaths {
                workspace: guest("workspace"),
                temp: guest("temp"),
                tool_cache: guest("tool_cache"),
                home: guest("home"),
            },
            info: EnvironmentInfo {
                has_bash: true,
                ..EnvironmentInfo::default()
            },
            channel: Channel::start(reader, writer),
            qemu: tokio::sync::Mutex::new(qemu.take()),
            virtiofsd: tokio::sync::Mutex::new(virtiofsd.take()),
            host_loopback: config.host_loopback(),
            server_origin: config.server_origin(),
        })
    }

    /// Runs the image's start hook when it has one, its output going to the job's set-up log
    /// line by line; a hook that fails (or outlives [`START_HOOK_TIMEOUT`]) fails the boot.
    pub(crate) async fn run_start_hook(&self, cancel: &CancellationToken) -> Result<(), VmError> {
        let found = self
            .find_program(START_HOOK, "")
            .await
            .map_err(|error| VmError::Agent {
                message: error.to_string(),
            })?;
        if found.is_none() {
            return Ok(());
        }
        let request = ExecRequest {
            argv: vec![START_HOOK.to_owned()],
            env: self.default_env(),
            workdir: "/".to_owned(),
            timeout: Some(START_HOOK_TIMEOUT),
        };
        let (sender, mut receiver) = mpsc::channel(64);
        let run = async {
            let exit = self.exec(&request, sender, cancel).await;
            exit.map_err(|error| VmError::Agent {
                message: error.to_string(),
            })
        };
        let mut output = String::new();
        let forward = async {
            let mut pending = String::new();
            while let Some(chunk) = receiver.recv().await {
                let (ExecOutput::Stdout(data) | ExecOutput::Stderr(data)) = chunk;
                pending.push_str(&String::from_utf8_lossy(&data));
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    runnel_engine::backend::setup_log(line.trim_end());
                    output.push_str(&line);
                }
            }
            if !pending.is_empty() {
                runnel_engine::backend::setup_log(pending.trim_end());
                output.push_str(&pending);
            }
        };
        let (exit, ()) = tokio::join!(run, forward);
        match exit? {
            ExecExit::Code(0) => Ok(()),
            exit => Err(VmError::StartHook {
                hook: START_HOOK,
                exit: format!("{exit:?}"),
                output: output
                    .lines()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n"),
            }),
        }
    }

    /// The services' ports for the `job` context.
    pub(crate) fn set_service_ports(&mut self, ports: BTreeMap<String, BTreeMap<String, String>>) {
        self.info.service_ports = ports;
    }

    /// Waits for the one answer of a file request.
    async fn answer(&self, replies: &mut Replies) -> Result<Reply, VmError> {
        match replies.next().await {
            Some(Reply::Failed { message, .. }) => Err(VmError::Agent { message }),
            Some(reply) => Ok(reply),
            None => Err(VmError::AgentGone),
        }
    }
}

/// The last lines of the console and QEMU's own log, for a boot that failed.
fn last_lines(job_dir: &Path) -> String {
    let mut text = String::new();
    for file in ["console.log", "qemu.log"] {
        let content = std::fs::read_to_string(job_dir.join(file)).unwrap_or_default();
        let lines: Vec<&str> = content.lines().collect();
        let tail = &lines[lines.len().saturating_sub(15)..];
        for line in tail {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

#[async_trait::async_trait]
impl JobEnvironment for VmEnvironment {
    fn paths(&self) -> &EnvironmentPaths {
        &self.paths
    }

    fn info(&self) -> &EnvironmentInfo {
        &self.info
    }

    fn default_env(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("PATH".to_owned(), GUEST_PATH.to_owned()),
            ("HOME".to_owned(), self.paths.home.clone()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ])
    }

    /// The cache forward's address on the restricted network (only the cache server's port
    /// is forwarded), the gateway with QEMU's NAT (all of this machine's loopback).
    fn host_loopback(&self) -> Option<String> {
        Some(self.host_loopback.to_owned())
    }

    /// The server forward on the restricted network (only the server's host and port are
    /// forwarded), the gateway with QEMU's NAT for a server on this machine's loopback.
    fn server_origin(&self) -> Option<String> {
        self.server_origin.clone()
    }

    /// The workspace is shared into the guest (virtiofs or 9p) from the job directory: `hashFiles`
    /// reads it here.
    fn workspace_on_host(&self) -> Option<PathBuf> {
        Some(self.workspace.clone())
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        let operation = || format!("exec {}", request.argv.first().map_or("", String::as_str));
        let mut replies = self
            .channel
            .request(|id| Request::Exec {
                id,
                argv: request.argv.clone(),
                env: request
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                workdir: request.workdir.clone(),
            })
            .await
            .map_err(|e| into_backend(operation(), e))?;
        let timeout = request.timeout.map(tokio::time::sleep);
        tokio::pin!(timeout);
        let mut ended_by: Option<ExecExit> = None;
        let grace = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                reply = replies.next() => match reply {
                    Some(Reply::Stdout { data, .. }) => {
                        let _ = output.send(ExecOutput::Stdout(data)).await;
                    }
                    Some(Reply::Stderr { data, .. }) => {
                        let _ = output.send(ExecOutput::Stderr(data)).await;
                    }
                    Some(Reply::Exited { code, .. }) => {
                        return Ok(ended_by.unwrap_or(ExecExit::Code(code)));
                    }
                    Some(Reply::Failed { message, .. }) => {
                        return Err(into_backend(operation(), VmError::Agent { message }));
                    }
                    Some(_) => {
                        return Err(into_backend(operation(), VmError::Unexpected { id: replies.id }));
                    }
                    None => return Err(into_backend(operation(), VmError::AgentGone)),
                },
                () = async { match timeout.as_mut().as_pin_mut() {
                    Some(sleep) => sleep.await,
                    None => std::future::pending().await,
                } }, if ended_by.is_none() => {
                    ended_by = Some(ExecExit::TimedOut);
                    let _ = self.channel.send(&Request::Kill { id: replies.id }).await;
                    grace.as_mut().reset(tokio::time::Instant::now() + KILL_GRACE);
                }
                () = cancel.cancelled(), if ended_by.is_none() => {
                    ended_by = Some(ExecExit::Cancelled);
                    let _ = self.channel.send(&Request::Kill { id: replies.id }).await;
                    grace.as_mut().reset(tokio::time::Instant::now() + KILL_GRACE);
                }
                () = &mut grace, if ended_by.is_some() => {
                    return Ok(ended_by.unwrap_or(ExecExit::Cancelled));
                }
            }
        }
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        let operation = || format!("write {path}");
        let mut replies = self
            .channel
            .request(|id| Request::WriteFile {
                id,
                path: path.to_owned(),
                contents: contents.to_vec(),
                mode: if executable { 0o755 } else { 0o644 },
            })
            .await
            .map_err(|e| into_backend(operation(), e))?;
        match self.answer(&mut replies).await {
            Ok(Reply::Done { .. }) => Ok(()),
            Ok(_) => Err(into_backend(
                operation(),
                VmError::Unexpected { id: replies.id },
            )),
            Err(error) => Err(into_backend(operation(), error)),
        }
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let operation = || format!("read {path}");
        let mut replies = self
            .channel
            .request(|id| Request::ReadFile {
                id,
                path: path.to_owned(),
            })
            .await
            .map_err(|e| into_backend(operation(), e))?;
        match self.answer(&mut replies).await {
            Ok(Reply::File { contents, .. }) => Ok(contents),
            Ok(_) => Err(into_backend(
                operation(),
                VmError::Unexpected { id: replies.id },
            )),
            Err(error) => Err(into_backend(operation(), error)),
        }
    }

    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        let operation = || format!("look up {program}");
        let mut replies = self
            .channel
            .request(|id| Request::FindProgram {
                id,
                program: program.to_owned(),
                path: path.to_owned(),
            })
            .await
            .map_err(|e| into_backend(operation(), e))?;
        match self.answer(&mut replies).await {
            Ok(Reply::Found { path, .. }) => Ok(path),
            Ok(_) => Err(into_backend(
                operation(),
                VmError::Unexpected { id: replies.id },
            )),
            Err(error) => Err(into_backend(operation(), error)),
        }
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        self.channel.close();
        if let Some(mut child) = self.qemu.lock().await.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        // After QEMU, its only client.
        if let Some(mut child) = self.virtiofsd.lock().await.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        match std::fs::remove_dir_all(&self.job_dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BackendError::Io {
                operation: format!("remove VM job directory {}", self.job_dir.display()),
                source,
            }),
        }
    }
}
