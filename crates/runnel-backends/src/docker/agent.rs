//! The exec agent: processes in the job container without `docker exec`.
//!
//! `docker exec` costs about 50 ms per process (a `runc exec`: a new process joining every
//! namespace and cgroup), most of what a one-step job adds to a bare `docker run`. When the
//! job's `/__w` is a directory of this machine (`workdir`), the job container's main process
//! is instead a small bash loop that reads request numbers from a FIFO in `/__w/_runnel` and
//! starts each request's process itself, with its stdout, stderr and exit status going to
//! FIFOs that this module reads. About 5 ms per process.
//!
//! The process must not be able to tell the difference, so the agent starts it exactly as
//! `docker exec` would: the environment Docker gave the container's main process (read from
//! the agent's own `/proc/self/environ`, minus the `PWD` that `/bin/sh` adds when it launches
//! bash) with the request's on top, through `env -i`; its own session and process group
//! (`setsid`, as `runc exec` does); stdin `/dev/null`; no other descriptors; default signal
//! dispositions (bash, unlike dash, does not ignore SIGINT/SIGQUIT in the asynchronous
//! commands it starts); then the same pid-file wrapper and argv as `exec` builds. The agent
//! runs as the container's user, in its namespaces and cgroup, as exec'd processes do.
//!
//! Whenever that cannot be guaranteed the request goes through `docker exec` instead
//! ([`Outcome::Fallback`]): no bash (4.4 or later), `env` or `setsid` in the image (the agent
//! then says `no` and becomes `tail -f /dev/null`, the old main process), no `/bin/sh` (the
//! pod recreates the container under `tail`), a working directory the agent cannot enter (so
//! Docker reports it as before), a FIFO a step replaced, or an agent that died. Killing on
//! timeout or cancel is `exec::kill`, as before.
//!
//! Files a step made are not trusted: FIFOs are created here by name in a directory opened
//! without following links, and opened with `O_NOFOLLOW`. Requests (argv and environment)
//! are files readable in the container, as the engine's own env files and scripts are; the
//! agent empties each one as soon as it read it.
//!
//! Must not: decide what to run (`exec::command` builds the command line) or create pods (it
//! only replaces a job container whose launcher cannot run, for `pod`).

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat};
use nix::unistd::{UnlinkatFlags, mkfifoat, unlinkat};
use runnel_engine::backend::{ExecExit, ExecOutput, ExecRequest};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::environment::DockerEnvironment;
use super::error::DockerError;
use super::exec::{self, ExecTarget};

/// `/__w/_runnel` (`pod::EXEC_DIR`) on this machine: below the job directory's `w`.
const EXEC_SUBDIR: &str = "_runnel";
const REQUESTS: &str = "agent.fifo";
const READY: &str = "agent.ready";
/// How long a new container's agent may take to say whether it runs.
const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long the exit status may lag behind the end of the output.
const STATUS_LIMIT: Duration = Duration::from_secs(5);

/// The job container's main process: `/bin/sh` starts the agent when bash is there, else
/// it says `no` and waits as the container always did.
const LAUNCHER: &str = r#"for b in /bin/bash /usr/bin/bash; do [ -x "$b" ] && exec "$b" -c "$1" runnel-agent; done
echo no >/__w/_runnel/agent.ready
exec tail -f /dev/null"#;

/// The agent (bash; its directory is `$1`, for tests). A request `N` is the file `req-N` (`wd`, `envs`, `argv`, and `pwd`
/// when the container's configured environment has `PWD`); output goes to the FIFOs
/// `out-N` and `err-N`, then the exit status, or `retry` when nothing was started, to `st-N`.
const AGENT: &str = r#"d=${1:-/__w/_runnel}
no() { exec 3<&-; echo no >"$d/agent.ready"; exec tail -f /dev/null; }
((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 404)) || no
e=$(command -v env) && s=$(command -v setsid) && [[ $e == /* && $s == /* ]] || no
mapfile -d '' E </proc/self/environ || no
exec 3<>"$d/agent.fifo" || no
echo yes >"$d/agent.ready"
while :; do
  read -r n <&3 || { (($? > 128)) && continue; exec 3<&-; exec tail -f /dev/null; }
  [[ $n =~ ^[0-9]+$ ]] || continue
  (
    exec 3<&-
    st=$d/st-$n
    { . "$d/req-$n" && : >"$d/req-$n"; } 2>/dev/null || { echo retry >"$st"; exit; }
    env=()
    for v in "${E[@]}"; do [[ $v == PWD=* ]] || env+=("$v"); done
    [[ ${pwd+set} ]] && env+=("PWD=$pwd")
    { cd -- "$wd" && exec 4>"$d/out-$n" 5>"$d/err-$n"; } 2>/dev/null || { echo retry >"$st"; exit; }
    ( exec "$e" -i "${env[@]}" "${envs[@]}" "$s" "${argv[@]}" ) >&4 2>&5 4>&- 5>&- </dev/null &
    exec 4>&- 5>&-
    wait "$!"
    echo "$?" >"$st"
  ) &
done"#;

/// The job container's entrypoint when it runs the agent.
pub(crate) fn entrypoint() -> Vec<String> {
    ["/bin/sh", "-c", LAUNCHER, "runnel-agent", AGENT]
        .map(str::to_owned)
        .to_vec()
}

/// Docker could not start the launcher (no `/bin/sh`; without `--init` this fails the start).
pub(crate) fn is_missing_launcher(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError { message, .. }
            if message.contains("\"/bin/sh\"")
    )
}

/// Removes job container `old`, whose launcher could not run, and starts `body` (without the
/// agent) in its place, under the same name; the new id. Both are recorded for teardown.
pub(crate) async fn replace_container(
    environment: &DockerEnvironment,
    old: &str,
    name: &str,
    body: ContainerCreateBody,
) -> Result<String, DockerError> {
    let docker = &environment.docker;
    let image = body.image.clone().unwrap_or_default();
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    docker
        .remove_container(old, Some(options))
        .await
        .map_err(DockerError::engine("replace job container", old))?;
    environment.record(|created| created.containers.retain(|id| id != old));
    let id = docker
        .create_container(
            super::create_options(Some(name), environment.steps.platform()),
            body,
        )
        .await
        .map_err(DockerError::engine("create job container", &image))?
        .id;
    environment.record(|created| created.containers.push(id.clone()));
    docker
        .start_container(&id, None)
        .await
        .map_err(DockerError::engine("start job container", &image))?;
    Ok(id)
}

/// What [`Agent::run`] did.
pub(crate) enum Outcome {
    Exited(ExecExit),
    /// Nothing was started: use `docker exec`.
    Fallback,
}

enum State {
    Starting,
    Ready(Arc<pipe::Sender>),
    Unusable,
}

/// The agent of one job container.
pub(crate) struct Agent {
    /// The job directory's `w` on this machine (the container's `/__w`).
    work: PathBuf,
    /// `PWD` of the container's configured environment, which `/bin/sh` may have changed.
    pwd: Option<String>,
    state: Mutex<State>,
    next: AtomicU64,
}

impl Agent {
    /// Makes the request FIFO; call before the container starts. `None` (logged) when it
    /// cannot be made: the agent then finds no FIFO and says `no`.
    pub(crate) fn prepare(work: PathBuf) -> Option<Agent> {
        let made = open_exec_dir(&work).and_then(|dir| {
            mkfifoat(dir.as_fd(), REQUESTS, Mode::from_bits_truncate(0o600))?;
            let fifo = open_fifo(&dir, REQUESTS, OFlag::O_RDONLY)?;
            // Whatever user the container runs as must open it.
            fchmod(fifo.as_fd(), Mode::from_bits_truncate(0o666))
        });
        match made {
            Ok(()) => Some(Agent {
                work,
                pwd: None,
                state: Mutex::new(State::Starting),
                next: AtomicU64::new(1),
            }),
            Err(errno) => {
                tracing::debug!(%errno, "no exec agent: cannot make its FIFO");
                None
            }
        }
    }

    /// Sets the container's configured `PWD` (from its inspected `Config.Env`).
    pub(crate) fn set_pwd(&mut self, pwd: Option<String>) {
        self.pwd = pwd;
    }

    /// Runs `request` through the agent, or says to use `docker exec`.
    pub(crate) async fn run(
        &self,
        target: &ExecTarget<'_>,
        request: &ExecRequest,
        output: &mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<Outcome, DockerError> {
        // Without the wrapper nothing could kill the process; a relative or empty working
        // directory means something else to Docker.
        if target.pid_file.is_none() || !request.workdir.starts_with('/') {
            return Ok(Outcome::Fallback);
        }
        let Some(sender) = self.sender().await else {
            return Ok(Outcome::Fallback);
        };
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let (argv, env) = exec::command(target, request);
        let script = request_script(&request.workdir, &env, &argv, self.pwd.as_deref());
        let fifos = match Fifos::make(&self.work, number, &script) {
            Ok(fifos) => fifos,
            Err(errno) => {
                tracing::debug!(%errno, "exec agent: cannot make a request; using docker exec");
                remove_request(&self.work, number);
                return Ok(Outcome::Fallback);
            }
        };
        if let Err(error) = send(&sender, number).await {
            tracing::debug!(%error, "exec agent: gone; using docker exec");
            *self.state.lock().await = State::Unusable;
            remove_request(&self.work, number);
            return Ok(Outcome::Fallback);
        }
        let outcome = fifos.collect(target, request, output, cancel).await;
        remove_request(&self.work, number);
        outcome
    }

    /// The request FIFO once the agent said it runs; `None` when it will not.
    async fn sender(&self) -> Option<Arc<pipe::Sender>> {
        let mut state = self.state.lock().await;
        if matches!(*state, State::Starting) {
            *state = self.wait_ready().await;
        }
        match &*state {
            State::Ready(sender) => Some(sender.clone()),
            State::Starting | State::Unusable => None,
        }
    }

    async fn wait_ready(&self) -> State {
        let started = Instant::now();
        loop {
            match read_ready(&self.work) {
                Ok(Some(answer)) if answer == b"yes\n" => {
                    return match open_sender(&self.work) {
                        Ok(sender) => State::Ready(Arc::new(sender)),
                        Err(error) => {
                            tracing::debug!(%error, "exec agent: cannot open its FIFO");
                            State::Unusable
                        }
                    };
                }
                Ok(Some(answer)) if answer == b"no\n" => {
                    tracing::debug!("exec agent: not in this image (bash 4.4, env, setsid)");
                    return State::Unusable;
                }
                // Not written yet, or half.
                Ok(_) => {}
                Err(errno) => {
                    tracing::debug!(%errno, "exec agent: cannot read its answer");
                    return State::Unusable;
                }
            }
            if started.elapsed() > READY_LIMIT {
                tracing::warn!("the job container's exec agent did not start; using docker exec");
                return State::Unusable;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// The read ends of one request's FIFOs.
struct Fifos {
    out: pipe::Receiver,
    err: pipe::Receiver,
    status: pipe::Receiver,
}

impl Fifos {
    /// Makes `out-N`, `err-N` and `st-N` and opens them (no writer yet: the agent opens them
    /// when it starts the process), then writes `req-N`.
    fn make(work: &Path, number: u64, script: &[u8]) -> Result<Fifos, Errno> {
        let dir = open_exec_dir(work)?;
        let mut opened = Vec::new();
        for kind in ["out", "err", "st"] {
            let name = format!("{kind}-{number}");
            match unlinkat(dir.as_fd(), name.as_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(errno) => return Err(errno),
            }
            mkfifoat(dir.as_fd(), name.as_str(), Mode::from_bits_truncate(0o600))?;
            let fifo = open_fifo(&dir, &name, OFlag::O_RDONLY)?;
            fchmod(fifo.as_fd(), Mode::from_bits_truncate(0o666))?;
            opened.push(pipe::Receiver::from_owned_fd(fifo).map_err(io_errno)?);
        }
        let name = format!("req-{number}");
        match unlinkat(dir.as_fd(), name.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(errno) => return Err(errno),
        }
        let mode = Mode::from_bits_truncate(0o644);
        let file = openat(
            dir.as_fd(),
            name.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            mode,
        )?;
        fchmod(file.as_fd(), mode)?;
        std::fs::File::from(file)
            .write_all(script)
            .map_err(io_errno)?;
        let mut opened = opened.into_iter();
        match (opened.next(), opened.next(), opened.next()) {
            (Some(out), Some(err), Some(status)) => Ok(Fifos { out, err, status }),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Forwards the output until both streams end (every holder closed them, as with
    /// `docker exec`), then reads the exit status.
    async fn collect(
        mut self,
        target: &ExecTarget<'_>,
        request: &ExecRequest,
        output: &mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<Outcome, DockerError> {
        let program = request.argv.first().map_or("", String::as_str);
        let deadline = async {
            match request.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let mut out_buffer = vec![0u8; 64 * 1024];
        let mut err_buffer = vec![0u8; 64 * 1024];
        let mut status_buffer = [0u8; 64];
        let mut status = Vec::new();
        let (mut out_open, mut err_open, mut status_open) = (true, true, true);
        let read_error = |source| DockerError::Io {
            operation: "exec in container",
            subject: format!("{program}: output"),
            source,
        };
        let stopped = loop {
            if !out_open && !err_open {
                break None;
            }
            tokio::select! {
                read = self.out.read(&mut out_buffer), if out_open => match read.map_err(read_error)? {
                    0 => out_open = false,
                    n => send_output(output, ExecOutput::Stdout(out_buffer[..n].to_vec())).await,
                },
                read = self.err.read(&mut err_buffer), if err_open => match read.map_err(read_error)? {
                    0 => err_open = false,
                    n => send_output(output, ExecOutput::Stderr(err_buffer[..n].to_vec())).await,
                },
                read = self.status.read(&mut status_buffer), if status_open => match read.map_err(read_error)? {
                    0 => {
                        status_open = false;
                        // Only said before the process was started, so before any output.
                        if status == b"retry\n" {
                            return Ok(Outcome::Fallback);
                        }
                    }
                    n => status.extend_from_slice(&status_buffer[..n]),
                },
                () = &mut deadline => break Some(ExecExit::TimedOut),
                () = cancel.cancelled() => break Some(ExecExit::Cancelled),
            }
        };
        if let Some(stopped) = stopped {
            exec::kill(target).await;
            // Keep what the process wrote before it died, but don't wait on a straggler that
            // escaped the group and holds the pipe.
            let drain = async {
                while out_open || err_open {
                    tokio::select! {
                        read = self.out.read(&mut out_buffer), if out_open => match read {
                            Ok(0) | Err(_) => out_open = false,
                            Ok(n) => send_output(output, ExecOutput::Stdout(out_buffer[..n].to_vec())).await,
                        },
                        read = self.err.read(&mut err_buffer), if err_open => match read {
                            Ok(0) | Err(_) => err_open = false,
                            Ok(n) => send_output(output, ExecOutput::Stderr(err_buffer[..n].to_vec())).await,
                        },
                    }
                }
            };
            let _ = tokio::time::timeout(exec::KILL_GRACE, drain).await;
            return Ok(Outcome::Exited(stopped));
        }
        if status_open {
            let rest = async {
                let mut rest = Vec::new();
                self.status.read_to_end(&mut rest).await.map(|_| rest)
            };
            match tokio::time::timeout(STATUS_LIMIT, rest).await {
                Ok(Ok(rest)) => status.extend_from_slice(&rest),
                Ok(Err(error)) => return Err(read_error(error)),
                Err(_) => {
                    return Err(DockerError::AgentNoStatus {
                        program: program.to_owned(),
                    });
                }
            }
        }
        let code = std::str::from_utf8(&status)
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
            .ok_or_else(|| DockerError::AgentBadStatus {
                program: program.to_owned(),
                status: String::from_utf8_lossy(&status).trim().to_owned(),
            })?;
        Ok(Outcome::Exited(ExecExit::Code(code)))
    }
}

async fn send_output(output: &mpsc::Sender<ExecOutput>, message: ExecOutput) {
    // A receiver that went away no longer wants output; the process still runs to its end.
    let _ = output.send(message).await;
}

/// Writes `N\n` to the agent (one write: atomic on a pipe).
async fn send(sender: &pipe::Sender, number: u64) -> std::io::Result<()> {
    let line = format!("{number}\n");
    loop {
        sender.writable().await?;
        match sender.try_write(line.as_bytes()) {
            Ok(written) if written == line.len() => return Ok(()),
            Ok(_) => return Err(std::io::Error::other("short write to the agent's FIFO")),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
}

/// `req-N`: bash assignments, every value single-quoted.
fn request_script(workdir: &str, env: &[String], argv: &[String], pwd: Option<&str>) -> Vec<u8> {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|item| quote(item))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut script = format!(
        "wd={}\nenvs=({})\nargv=({})\n",
        quote(workdir),
        list(env),
        list(argv)
    );
    if let Some(pwd) = pwd {
        script.push_str(&format!("pwd={}\n", quote(pwd)));
    }
    script.into_bytes()
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Removes a request's files; best effort (the job directory goes at teardown anyway).
fn remove_request(work: &Path, number: u64) {
    let Ok(dir) = open_exec_dir(work) else {
        return;
    };
    for kind in ["out", "err", "st", "req"] {
        let name = format!("{kind}-{number}");
        let _ = unlinkat(dir.as_fd(), name.as_str(), UnlinkatFlags::NoRemoveDir);
    }
}

/// `_runnel` below `work`, never through a link a step planted.
fn open_exec_dir(work: &Path) -> Result<OwnedFd, Errno> {
    let work = std::fs::File::open(work).map_err(io_errno)?;
    openat(
        work.as_fd(),
        EXEC_SUBDIR,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
}

/// Opens a FIFO non-blocking without following links; anything else is refused.
fn open_fifo(dir: &OwnedFd, name: &str, access: OFlag) -> Result<OwnedFd, Errno> {
    let fifo = openat(
        dir.as_fd(),
        name,
        access | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let kind = SFlag::from_bits_truncate(fstat(fifo.as_fd())?.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFIFO {
        return Err(Errno::EINVAL);
    }
    Ok(fifo)
}

fn open_sender(work: &Path) -> std::io::Result<pipe::Sender> {
    let dir = open_exec_dir(work)?;
    let fifo = open_fifo(&dir, REQUESTS, OFlag::O_WRONLY)?;
    pipe::Sender::from_owned_fd(fifo)
}

/// The agent's answer, when it has written one.
fn read_ready(work: &Path) -> Result<Option<Vec<u8>>, Errno> {
    let dir = open_exec_dir(work)?;
    super::workdir::read_regular_at(&dir, READY, 16)
}

fn io_errno(error: std::io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(Errno::EIO as i32))
}

#[cfg(test)]
mod tests;
