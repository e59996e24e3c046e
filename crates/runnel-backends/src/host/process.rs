//! Processes of the host backend: `PATH` lookup, spawning in a new process group with exactly
//! the requested environment, streaming output, and killing the whole group on timeout or
//! cancellation (SIGTERM, a short grace, then SIGKILL).
//!
//! Must not: touch files beyond the executable check of `PATH` lookup.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use runnel_engine::backend::{BackendError, ExecExit, ExecOutput, ExecRequest};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::HostError;

/// Time a process group gets between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long output is still collected after the main process exited: a background process
/// that inherited the pipes must not hold the step open (GitHub's step also ends when its
/// shell exits).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);

/// Finds `program` in `path` (colon separated); a name with `/` is checked as a path.
pub(crate) fn which(program: &str, path: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let candidate = PathBuf::from(program);
        return is_executable(&candidate).then_some(candidate);
    }
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Runs `request` in its own process group; `on_spawn` learns the group id (for teardown).
pub(crate) async fn run(
    request: &ExecRequest,
    workdir: &Path,
    output: mpsc::Sender<ExecOutput>,
    cancel: &CancellationToken,
    on_spawn: impl FnOnce(i32),
) -> Result<ExecExit, BackendError> {
    let Some((program, args)) = request.argv.split_first() else {
        return Err(HostError::EmptyCommand.into());
    };
    let path_var = request.env.get("PATH").map_or("", String::as_str);
    let Some(resolved) = which(program, path_var) else {
        return Err(HostError::NotOnPath {
            program: program.clone(),
            path: path_var.to_owned(),
        }
        .into());
    };
    let mut command = Command::new(&resolved);
    command
        .args(args)
        .env_clear()
        .envs(&request.env)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().map_err(|source| BackendError::Io {
        operation: format!("exec {} in {}", resolved.display(), workdir.display()),
        source,
    })?;
    let Some(pgid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        return Err(HostError::NoProcessId {
            program: program.clone(),
        }
        .into());
    };
    on_spawn(pgid);
    tracing::debug!(program = %resolved.display(), pgid, "spawned");

    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(pump(
            stdout,
            output.clone(),
            ExecOutput::Stdout,
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(pump(stderr, output, ExecOutput::Stderr)));
    }

    let timeout = async {
        match request.timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let exit = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => ExecExit::Code(
                status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            ),
            Err(source) => {
                terminate(&mut child, pgid).await;
                return Err(BackendError::Io { operation: format!("wait for {program}"), source });
            }
        },
        () = timeout => {
            terminate(&mut child, pgid).await;
            ExecExit::TimedOut
        }
        () = cancel.cancelled() => {
            terminate(&mut child, pgid).await;
            ExecExit::Cancelled
        }
    };
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN_AFTER_EXIT, reader)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    Ok(exit)
}

/// Copies a pipe into the channel chunk by chunk. Keeps reading when the receiver is gone
/// so the process never blocks on a full pipe.
async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    output: mpsc::Sender<ExecOutput>,
    wrap: fn(Vec<u8>) -> ExecOutput,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let chunk = buffer.get(..read).unwrap_or_default().to_vec();
                let _ = output.send(wrap(chunk)).await;
            }
        }
    }
}

/// SIGTERM to the group, a grace period for the leader to exit, then SIGKILL to whatever
/// is left of the group.
async fn terminate(child: &mut Child, pgid: i32) {
    let group = Pid::from_raw(pgid);
    let _ = killpg(group, Signal::SIGTERM);
    let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait().await;
}

/// SIGKILL to a group left over from an earlier step (no-op when it is gone).
pub(crate) fn kill_group_now(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}
