//! One process in the job container through `docker exec`, with its output streamed and its
//! process group killed on timeout or cancel.
//!
//! Docker has no "kill this exec" call. Each exec'd process leads its own session and process
//! group, so steps start under a tiny `sh` wrapper that writes its pid (the group id, as `exec`
//! keeps it) to a file and then `exec`s the real program; killing is a second exec that sends
//! SIGKILL to that group. Without `/bin/sh` in the image the process runs bare, and a timeout
//! can only abandon it (teardown removes the container anyway).
//!
//! When the job container runs the exec `agent`, processes start there instead (same command
//! line, from [`command`]); this path remains for everything the agent hands back, and
//! [`kill`] serves both.
//!
//! Must not: decide shells or build scripts; `argv` arrives complete.

use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use runnel_engine::backend::{ExecExit, ExecOutput, ExecRequest};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::DockerError;

/// The operation of this module's errors.
const OPERATION: &str = "exec in container";

/// How long to wait for the output to end after the process group was killed.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);

/// How to run requests in one container.
pub(crate) struct ExecTarget<'a> {
    pub(crate) docker: &'a Docker,
    pub(crate) container: &'a str,
    /// Where the wrapper writes the pid; `None`: no `/bin/sh`, run bare.
    pub(crate) pid_file: Option<String>,
}

pub(crate) async fn run(
    target: &ExecTarget<'_>,
    request: &ExecRequest,
    output: mpsc::Sender<ExecOutput>,
    cancel: &CancellationToken,
) -> Result<ExecExit, DockerError> {
    let program = request.argv.first().map_or("", String::as_str);
    let (cmd, env) = command(target, request);
    let created = target
        .docker
        .create_exec(
            target.container,
            CreateExecOptions {
                cmd: Some(cmd),
                env: Some(env),
                working_dir: Some(request.workdir.clone()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(DockerError::engine(OPERATION, program))?;
    let started = target
        .docker
        .start_exec(&created.id, None)
        .await
        .map_err(DockerError::engine(OPERATION, program))?;
    let StartExecResults::Attached {
        output: mut stream, ..
    } = started
    else {
        return Err(DockerError::ExecDetached {
            program: program.to_owned(),
        });
    };

    let deadline = async {
        match request.timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let stopped = loop {
        tokio::select! {
            chunk = stream.next() => match chunk {
                Some(Ok(chunk)) => forward(&output, chunk).await,
                Some(Err(source)) => {
                    let subject = format!("{program}: output stream");
                    return Err(DockerError::engine(OPERATION, &subject)(source));
                }
                None => break None,
            },
            () = &mut deadline => break Some(ExecExit::TimedOut),
            () = cancel.cancelled() => break Some(ExecExit::Cancelled),
        }
    };
    if let Some(stopped) = stopped {
        kill(target).await;
        // Keep what the process wrote before it died, but don't wait on a straggler that
        // escaped the group and holds the pipe.
        let drain = async {
            while let Some(Ok(chunk)) = stream.next().await {
                forward(&output, chunk).await;
            }
        };
        let _ = tokio::time::timeout(KILL_GRACE, drain).await;
        return Ok(stopped);
    }
    exit_code(target, &created.id, program).await
}

/// The command line and environment of `request`: under the pid-file wrapper when the image
/// has `/bin/sh`. dash (Debian's and Ubuntu's `/bin/sh`) drops variables whose names are not
/// shell names, such as `INPUT_RESTORE-KEYS`: those skip the shell and are set by `env` after
/// it. The `agent` runs the same command line.
pub(crate) fn command(
    target: &ExecTarget<'_>,
    request: &ExecRequest,
) -> (Vec<String>, Vec<String>) {
    let mut env = Vec::new();
    let mut unshellable = Vec::new();
    for (key, value) in &request.env {
        let entry = format!("{key}={value}");
        match is_shell_name(key) {
            true => env.push(entry),
            false => unshellable.push(entry),
        }
    }
    match &target.pid_file {
        Some(pid_file) => {
            let mut cmd = vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                // `$0` is the pid file: it keeps `$@` exactly the request's argv.
                r#"echo $$ >"$0" 2>/dev/null; exec "$@""#.to_owned(),
                pid_file.clone(),
            ];
            if !unshellable.is_empty() {
                cmd.push("env".to_owned());
                cmd.extend(unshellable);
            }
            cmd.extend(request.argv.iter().cloned());
            (cmd, env)
        }
        None => (request.argv.clone(), [env, unshellable].concat()),
    }
}

async fn forward(output: &mpsc::Sender<ExecOutput>, chunk: bollard::container::LogOutput) {
    let message = match chunk {
        bollard::container::LogOutput::StdOut { message } => ExecOutput::Stdout(message.to_vec()),
        bollard::container::LogOutput::StdErr { message }
        | bollard::container::LogOutput::Console { message } => {
            ExecOutput::Stderr(message.to_vec())
        }
        bollard::container::LogOutput::StdIn { .. } => return,
    };
    // A receiver that went away no longer wants output; the process still runs to its end.
    let _ = output.send(message).await;
}

/// The stream ends when the process's pipes close; the exit code lands a moment later.
async fn exit_code(
    target: &ExecTarget<'_>,
    exec_id: &str,
    program: &str,
) -> Result<ExecExit, DockerError> {
    for _ in 0..500 {
        let inspect = target
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(DockerError::engine(OPERATION, program))?;
        if inspect.running != Some(true) {
            let code = inspect.exit_code.unwrap_or(-1);
            return Ok(ExecExit::Code(i32::try_from(code).unwrap_or(-1)));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(DockerError::ExecStillRunning {
        program: program.to_owned(),
    })
}

/// SIGKILL to the process group recorded by the wrapper; best effort, logged when it fails.
pub(crate) async fn kill(target: &ExecTarget<'_>) {
    let Some(pid_file) = &target.pid_file else {
        tracing::warn!(
            container = target.container,
            "no /bin/sh in the image: a timed-out process cannot be killed before teardown"
        );
        return;
    };
    let script = r#"pid=$(cat "$0") && { kill -KILL -"$pid" 2>/dev/null || kill -KILL "$pid"; }"#;
    let created = target
        .docker
        .create_exec(
            target.container,
            CreateExecOptions {
                cmd: Some(vec![
                    "/bin/sh".to_owned(),
                    "-c".to_owned(),
                    script.to_owned(),
                    pid_file.clone(),
                ]),
                ..Default::default()
            },
        )
        .await;
    let result = match created {
        Ok(created) => target
            .docker
            .start_exec(
                &created.id,
                Some(bollard::exec::StartExecOptions {
                    detach: true,
                    ..Default::default()
                }),
            )
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    if let Err(error) = result {
        tracing::warn!(container = target.container, %error, "could not kill a process group");
    }
}

/// Runs `argv` as root in `container` to its end, output discarded; best effort (logged),
/// for housekeeping such as removing files steps made.
pub(crate) async fn run_as_root_quietly(docker: &Docker, container: &str, argv: Vec<String>) {
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(argv),
                user: Some("0:0".to_owned()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await;
    let started = match created {
        Ok(created) => docker.start_exec(&created.id, None).await,
        Err(error) => Err(error),
    };
    match started {
        Ok(StartExecResults::Attached { mut output, .. }) => {
            let drain = async { while output.next().await.is_some() {} };
            if tokio::time::timeout(HOUSEKEEPING_LIMIT, drain)
                .await
                .is_err()
            {
                tracing::warn!(container, "housekeeping in the job container took too long");
            }
        }
        Ok(StartExecResults::Detached) => {}
        Err(error) => tracing::warn!(container, %error, "housekeeping in the job container failed"),
    }
}

const HOUSEKEEPING_LIMIT: Duration = Duration::from_secs(120);

/// A name `sh` keeps in the environment: letters, digits and `_`, not starting with a digit.
fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::is_shell_name;

    #[test]
    fn shell_names() {
        for name in ["PATH", "_x", "INPUT_KEY", "a1"] {
            assert!(is_shell_name(name), "{name}");
        }
        for name in ["", "1A", "INPUT_RESTORE-KEYS", "STATE_a.b", "X Y"] {
            assert!(!is_shell_name(name), "{name}");
        }
    }
}
