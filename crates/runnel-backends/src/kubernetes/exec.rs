//! Processes in a job's pod through the exec API: output streamed as it comes, the exit code
//! read from the status channel, and files moved through `cat` over the same API.
//!
//! The exec API takes only an argv (in the request's URL, so in the API server's logs): a
//! step's environment, working directory and command go over stdin instead, as a small `sh`
//! script the pod's `sh` reads to its end (the websocket protocol v5 closes stdin) and then
//! `exec`s. The script first writes its pid to a file: closing an exec stream does not stop
//! the process in the container, so a timed-out or cancelled step is killed by a second exec
//! that kills that pid and its descendants.
//!
//! A step whose exec ends badly (a code other than 0, a broken stream) has its pod looked at,
//! and so has a running step every few seconds: a pod deleted, evicted or lost with its node
//! ends the step with [`KubeError::PodGone`] and the API's reason, not with the code of a
//! process killed with its container.
//!
//! Must not: create or delete pods (`pod` does).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::AttachParams;
use runnel_engine::backend::{ExecExit, ExecOutput, ExecRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::KubeError;
use super::pod;

/// The container of a job's pod that runs the steps.
pub(crate) const JOB_CONTAINER: &str = "job";

/// How often a running step's pod is looked at: a pod deleted, evicted or on a lost node
/// may leave the exec stream open (a node that is gone answers nothing).
const WATCH_EVERY: Duration = Duration::from_secs(5);

/// Exit code of the read scripts when the file does not exist.
const MISSING: i32 = 66;
/// Exit code of the read scripts when a path is a symbolic link (never followed: see
/// [`JobEnvironment::read_file`](runnel_engine::backend::JobEnvironment::read_file)).
const LINK: i32 = 67;

/// Sends the files named by its arguments that exist as a tar (nothing when none does; `tar`
/// drops the leading `/` of the names). Absolute paths, so no name is taken for an option.
/// A link among them ends it first with [`LINK`] (the engine then reads them one by one, so
/// that the error names the file).
const READ_MANY: &str = r#"for f; do [ -L "$f" ] && exit 67; done
any=
for f; do [ -e "$f" ] && any=1; done
[ -n "$any" ] || exit 0
for f; do [ -e "$f" ] && printf '%s\0' "$f"; done | xargs -0 tar -c -f -
"#;

/// A pod's exec endpoint.
#[derive(Clone)]
pub(crate) struct PodExec {
    pub(crate) pods: Api<Pod>,
    pub(crate) pod: String,
    pub(crate) namespace: String,
}

/// How one exec ended: its exit code, or why the API gave none.
enum Ended {
    Code(i32),
    Failure(String),
}

/// `text` as one single-quoted `sh` word.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The script that runs `request`: records its pid in `pid_file`, enters the working directory
/// and replaces itself with the program under exactly `request.env`.
pub(crate) fn step_script(request: &ExecRequest, pid_file: &str) -> String {
    let mut script = format!("echo $$ > {}\n", quote(pid_file));
    script.push_str(&format!(
        "cd {dir} 2>/dev/null || {{ echo \"runnel: the working directory {dir} does not exist in the pod\" >&2; exit 1; }}\n",
        dir = quote(&request.workdir)
    ));
    script.push_str("exec env -i");
    for (key, value) in &request.env {
        // `env` cannot set a name with `=` (nor can any process have one).
        if key.is_empty() || key.contains('=') {
            continue;
        }
        script.push(' ');
        script.push_str(&quote(&format!("{key}={value}")));
    }
    for arg in &request.argv {
        script.push(' ');
        script.push_str(&quote(arg));
    }
    script.push_str(" </dev/null\n");
    script
}

/// Kills the process whose pid `pid_file` holds and every descendant of it (collected first,
/// so that none is re-parented away before it is killed).
pub(crate) fn kill_script(pid_file: &str) -> String {
    format!(
        r#"f={file}
[ -f "$f" ] || exit 0
root=$(cat "$f")
all="$root"; level="$root"
while [ -n "$level" ]; do
  next=""
  for s in /proc/[0-9]*/stat; do
    read -r line < "$s" 2>/dev/null || continue
    rest=${{line##*) }}
    set -- $rest
    for p in $level; do
      if [ "$2" = "$p" ]; then c=${{s#/proc/}}; next="$next ${{c%/stat}}"; fi
    done
  done
  all="$all $next"; level="$next"
done
kill -9 $all 2>/dev/null
rm -f "$f"
exit 0
"#,
        file = quote(pid_file)
    )
}

/// The exit code in an exec's final status: `Success` is 0; a failure with reason
/// `NonZeroExitCode` carries the code in a cause `ExitCode`. Otherwise the API's message.
fn exit_code(status: &Status) -> Ended {
    if status.status.as_deref() == Some("Success") {
        return Ended::Code(0);
    }
    let code = status.details.as_ref().and_then(|details| {
        details
            .causes
            .iter()
            .flatten()
            .find(|cause| cause.reason.as_deref() == Some("ExitCode"))
            .and_then(|cause| cause.message.as_deref()?.parse::<i32>().ok())
    });
    match code {
        Some(code) => Ended::Code(code),
        None => Ended::Failure(match (&status.message, &status.reason) {
            (Some(message), _) if !message.is_empty() => message.clone(),
            (_, reason) => format!(
                "the exec failed ({})",
                reason.as_deref().unwrap_or("no reason given")
            ),
        }),
    }
}

impl PodExec {
    fn params(stdin: bool) -> AttachParams {
        let mut params = AttachParams::default()
            .container(JOB_CONTAINER)
            .stdin(stdin)
            .stdout(true)
            .stderr(true);
        // The client's pipes hold 1 KiB by default: a step's output and a copied tree move
        // in larger pieces.
        params.max_stdin_buf_size = Some(64 * 1024);
        params.max_stdout_buf_size = Some(64 * 1024);
        params.max_stderr_buf_size = Some(64 * 1024);
        params
    }

    fn exec_error(&self, message: String) -> KubeError {
        KubeError::Exec {
            pod: self.pod.clone(),
            message,
        }
    }

    /// Runs `argv` with `input` on stdin; stdout and stderr are sent to `output` as they come.
    /// Ends when the process does, or with `Ok(None)` when `stop` resolves first (the stream
    /// is dropped then; the process is the caller's to kill).
    async fn run(
        &self,
        argv: &[&str],
        input: Option<&[u8]>,
        output: mpsc::Sender<ExecOutput>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Option<i32>, KubeError> {
        let mut attached = self
            .pods
            .exec(&self.pod, argv.to_vec(), &Self::params(input.is_some()))
            .await
            .map_err(KubeError::api("create", "pods/exec", &self.namespace))?;
        let stdin = attached.stdin();
        let stdout = attached.stdout();
        let stderr = attached.stderr();
        let status = attached.take_status();
        let feed = async {
            if let (Some(mut stdin), Some(input)) = (stdin, input) {
                stdin.write_all(input).await?;
                stdin.shutdown().await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let work = async {
            let (fed, out, err) = tokio::join!(
                feed,
                pump(stdout, output.clone(), ExecOutput::Stdout),
                pump(stderr, output, ExecOutput::Stderr)
            );
            fed.and(out)
                .and(err)
                .map_err(|source| KubeError::ExecStream {
                    pod: self.pod.clone(),
                    source,
                })?;
            let status = match status {
                Some(status) => status.await,
                None => None,
            };
            match status.as_ref().map(exit_code) {
                Some(Ended::Code(code)) => Ok(code),
                Some(Ended::Failure(message)) => Err(self.exec_error(message)),
                None => Err(self.exec_error(
                    "the stream ended without an exit status (the pod or its node may be gone)"
                        .to_owned(),
                )),
            }
        };
        tokio::select! {
            code = work => {
                let _ = attached.join().await;
                code.map(Some)
            }
            () = stop => {
                attached.abort();
                Ok(None)
            }
        }
    }

    /// Runs `argv` to its end, collecting stdout and stderr.
    pub(crate) async fn collect(
        &self,
        argv: &[&str],
        input: Option<&[u8]>,
    ) -> Result<(i32, Vec<u8>, Vec<u8>), KubeError> {
        let (sender, mut receiver) = mpsc::channel(64);
        let collector = async move {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            while let Some(chunk) = receiver.recv().await {
                match chunk {
                    ExecOutput::Stdout(bytes) => out.extend_from_slice(&bytes),
                    ExecOutput::Stderr(bytes) => err.extend_from_slice(&bytes),
                }
            }
            (out, err)
        };
        let (code, (out, err)) = tokio::join!(
            self.run(argv, input, sender, std::future::pending()),
            collector
        );
        match code? {
            Some(code) => Ok((code, out, err)),
            None => Err(self.exec_error("the exec was stopped".to_owned())),
        }
    }

    /// Runs one step's process (see the module docs).
    pub(crate) async fn step(
        &self,
        request: &ExecRequest,
        pid_file: &str,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, KubeError> {
        let script = step_script(request, pid_file);
        let timeout = request.timeout.unwrap_or(Duration::MAX);
        let mut why = None;
        let mut lost = None;
        let watch = async {
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                if let Some(reason) = pod::lost(&self.pods, &self.pod).await {
                    return reason;
                }
            }
        };
        let stop = async {
            tokio::select! {
                () = tokio::time::sleep(timeout) => why = Some(ExecExit::TimedOut),
                () = cancel.cancelled() => why = Some(ExecExit::Cancelled),
                reason = watch => lost = Some(reason),
            }
        };
        let ended = self
            .run(
                &["sh", "-c", "script=$(cat) && eval \"$script\""],
                Some(script.as_bytes()),
                output,
                stop,
            )
            .await;
        if let Some(reason) = lost {
            return Err(self.gone(reason));
        }
        match ended {
            Ok(Some(0)) => Ok(ExecExit::Code(0)),
            // A process killed with its container, or a stream cut off: was it the pod?
            Ok(Some(code)) => match pod::lost(&self.pods, &self.pod).await {
                Some(reason) => Err(self.gone(reason)),
                None => Ok(ExecExit::Code(code)),
            },
            Err(error) => match pod::lost(&self.pods, &self.pod).await {
                Some(reason) => Err(self.gone(reason)),
                None => Err(error),
            },
            Ok(None) => {
                self.kill(pid_file).await;
                Ok(why.unwrap_or(ExecExit::Cancelled))
            }
        }
    }

    /// The pod is no longer there to run anything: `reason` from [`pod::lost`].
    pub(crate) fn gone(&self, reason: String) -> KubeError {
        KubeError::PodGone {
            pod: self.pod.clone(),
            reason,
        }
    }

    /// Kills a step's process tree; a failure is logged (the pod goes at teardown anyway).
    async fn kill(&self, pid_file: &str) {
        let script = kill_script(pid_file);
        if let Err(error) = self.collect(&["sh", "-c", &script], None).await {
            tracing::warn!(pod = %self.pod, %error, "could not kill a step's processes");
        }
    }

    /// Writes `contents` to `path` (parents created), mode 0755 when `executable`, else 0644.
    pub(crate) async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), KubeError> {
        let mode = if executable { "755" } else { "644" };
        // An empty file (the engine makes five per step) needs no stdin: an exec whose stdin
        // is closed at once was seen, under load, to leave `cat` waiting for ever.
        let (fill, input) = if contents.is_empty() {
            (": >", None)
        } else {
            ("cat >", Some(contents))
        };
        let script =
            format!("mkdir -p \"$(dirname \"$1\")\" && {fill} \"$1\" && chmod {mode} \"$1\"");
        let (code, _, err) = self
            .collect(&["sh", "-c", &script, "sh", path], input)
            .await?;
        if code != 0 {
            return Err(KubeError::File {
                operation: "write",
                path: path.to_owned(),
                pod: self.pod.clone(),
                message: String::from_utf8_lossy(&err).trim().to_owned(),
            });
        }
        Ok(())
    }

    fn link_refused(&self, path: &str) -> KubeError {
        KubeError::File {
            operation: "read",
            path: path.to_owned(),
            pod: self.pod.clone(),
            message: runnel_engine::backend::LINK_REFUSED.to_owned(),
        }
    }

    /// Reads `path`; `None` when it does not exist, an error when it is a symbolic link.
    pub(crate) async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, KubeError> {
        let script = format!(
            "[ -L \"$1\" ] && exit {LINK}; [ -e \"$1\" ] || exit {MISSING}; exec cat \"$1\""
        );
        let (code, out, err) = self
            .collect(&["sh", "-c", &script, "sh", path], None)
            .await?;
        match code {
            0 => Ok(Some(out)),
            MISSING => Ok(None),
            LINK => Err(self.link_refused(path)),
            _ => Err(KubeError::File {
                operation: "read",
                path: path.to_owned(),
                pod: self.pod.clone(),
                message: String::from_utf8_lossy(&err).trim().to_owned(),
            }),
        }
    }

    /// Reads `paths` in one exec (the existing ones as a tar); `None` for each that does not
    /// exist.
    pub(crate) async fn read_files(
        &self,
        paths: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, KubeError> {
        let mut argv = vec!["sh", "-c", READ_MANY, "sh"];
        argv.extend(paths.iter().map(String::as_str));
        let (code, out, err) = self.collect(&argv, None).await?;
        if code == LINK {
            return Err(self.link_refused(&paths.join(", ")));
        }
        if code != 0 {
            return Err(KubeError::File {
                operation: "read",
                path: paths.join(", "),
                pod: self.pod.clone(),
                message: format!("tar exit {code}: {}", String::from_utf8_lossy(&err).trim()),
            });
        }
        let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        if !out.is_empty() {
            let mut archive = tar::Archive::new(out.as_slice());
            archive.set_ignore_zeros(true);
            let broken = |error: std::io::Error| KubeError::File {
                operation: "read",
                path: paths.join(", "),
                pod: self.pod.clone(),
                message: format!("the archive the pod sent is broken: {error}"),
            };
            for entry in archive.entries().map_err(broken)? {
                let mut entry = entry.map_err(broken)?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = entry.path().map_err(broken)?.to_string_lossy().into_owned();
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(broken)?;
                found.insert(name.trim_start_matches('/').to_owned(), bytes);
            }
        }
        Ok(paths
            .iter()
            .map(|path| found.get(path.trim_start_matches('/')).cloned())
            .collect())
    }

    /// Where `program` is with `path` as `PATH` (`command -v`), `None` when it is not there.
    pub(crate) async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, KubeError> {
        let (code, out, _) = self
            .collect(
                &[
                    "sh",
                    "-c",
                    "PATH=\"$1\"; command -v \"$2\"",
                    "sh",
                    path,
                    program,
                ],
                None,
            )
            .await?;
        let found = String::from_utf8_lossy(&out).trim().to_owned();
        Ok((code == 0 && !found.is_empty()).then_some(found))
    }
}

/// Forwards a stream's chunks to `output` until it ends (or nobody listens any more).
async fn pump(
    stream: Option<impl AsyncRead + Unpin>,
    output: mpsc::Sender<ExecOutput>,
    wrap: fn(Vec<u8>) -> ExecOutput,
) -> std::io::Result<()> {
    let Some(mut stream) = stream else {
        return Ok(());
    };
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        if output.send(wrap(buffer[..read].to_vec())).await.is_err() {
            // The receiver is gone; keep draining so the process is not blocked.
            continue;
        }
    }
}

/// Parses `env` output into variables: a line without `=` continues the previous value (a
/// value with a newline). The shell's own (`PWD`, `OLDPWD`, `SHLVL`, `_`) are left out.
pub(crate) fn parse_env(text: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some((key, value))
                if !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                env.insert(key.to_owned(), value.to_owned());
                last = Some(key.to_owned());
            }
            _ => {
                if let Some(value) = last.as_ref().and_then(|key| env.get_mut(key)) {
                    value.push('\n');
                    value.push_str(line);
                }
            }
        }
    }
    for own in ["PWD", "OLDPWD", "SHLVL", "_"] {
        env.remove(own);
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn step_script_sets_only_the_requested_environment() {
        let request = ExecRequest {
            argv: vec!["bash".to_owned(), "-e".to_owned(), "/tmp/s t.sh".to_owned()],
            env: BTreeMap::from([
                ("A".to_owned(), "x'y".to_owned()),
                ("B=C".to_owned(), "dropped".to_owned()),
            ]),
            workdir: "/__w/workspace".to_owned(),
            timeout: None,
        };
        let script = step_script(&request, "/__w/_runnel/1.pid");
        assert!(script.starts_with("echo $$ > '/__w/_runnel/1.pid'\n"));
        assert!(script.contains("cd '/__w/workspace' 2>/dev/null"));
        assert!(
            script.ends_with("exec env -i 'A=x'\\''y' 'bash' '-e' '/tmp/s t.sh' </dev/null\n"),
            "{script}"
        );
    }

    #[test]
    fn env_output_keeps_multi_line_values() {
        let env = parse_env("PATH=/bin\nX=a\nb\nHOME=/root\nPWD=/\nSHLVL=1\n");
        assert_eq!(env.len(), 3, "{env:?}");
        assert_eq!(env["PATH"], "/bin");
        assert_eq!(env["X"], "a\nb");
        assert_eq!(env["HOME"], "/root");
    }
}
