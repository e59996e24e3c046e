//! The job directory over virtiofs: which share a guest gets (`vm.share`), where `virtiofsd`
//! is, and one `virtiofsd` per job (started before QEMU, its socket in the job directory).
//!
//! `virtiofsd` is the Rust one (crate `virtiofsd`, `tests/vm/virtiofsd.sh` builds it); the C
//! one QEMU 7.2 ships in `/usr/lib/qemu/` takes other options and is not looked for.
//!
//! Must not: outlive the job: the caller kills the process and the job directory (socket
//! included) goes with the job; the leftover sweep kills the one of a dead runner.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::error::VmError;

/// `vm.share`: how the job's directory reaches the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmShare {
    /// virtiofs when a `virtiofsd` is found, else 9p (the default).
    #[default]
    Auto,
    Virtiofs,
    NineP,
}

impl VmShare {
    /// `auto`, `virtiofs` or `9p`.
    pub fn parse(text: &str) -> Option<VmShare> {
        match text.trim() {
            "auto" => Some(VmShare::Auto),
            "virtiofs" => Some(VmShare::Virtiofs),
            "9p" => Some(VmShare::NineP),
            _ => None,
        }
    }
}

/// The socket `virtiofsd` listens on, in the job directory.
pub(crate) const SOCKET: &str = "virtiofs.sock";
/// How long `virtiofsd` may take to make its socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where `virtiofsd` is: `setting` (`vm.virtiofsd`, `RUNNEL_VM_VIRTIOFSD`) when given, else
/// `virtiofsd` beside the running executable, else on `PATH`, else where
/// `tests/vm/virtiofsd.sh` installs it (`${RUNNEL_CACHE:-$HOME/.cache/runnel}/virtiofsd/bin`).
/// `None`: none found.
pub fn find(setting: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = setting {
        return is_executable(path).then(|| path.to_path_buf());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("virtiofsd")));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("virtiofsd"));
    let cache = std::env::var_os("RUNNEL_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/runnel")))
        .map(|root| root.join("virtiofsd/bin/virtiofsd"));
    beside
        .into_iter()
        .chain(on_path)
        .chain(cache)
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `virtiofsd`'s arguments for sharing `share` on `socket`. Its sandbox: as root a chroot into
/// the share (mount namespaces need privileges a runner in a container may lack); otherwise
/// its default, a user namespace (a chroot needs root).
pub(crate) fn args(socket: &Path, share: &Path, root: bool) -> Vec<String> {
    vec![
        format!("--socket-path={}", socket.display()),
        format!("--shared-dir={}", share.display()),
        "--cache=auto".to_owned(),
        format!("--sandbox={}", if root { "chroot" } else { "namespace" }),
        "--log-level=error".to_owned(),
    ]
}

/// Whether this process runs as root (the owner of `/proc/self`).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Starts `program` sharing `share`, its socket at `JOB_DIR/`[`SOCKET`], its output in
/// `JOB_DIR/virtiofsd.log`; returns once the socket is there. A process that ends first or
/// makes no socket in time is an error naming the command and its last lines.
pub(crate) async fn start(program: &Path, job_dir: &Path, share: &Path) -> Result<Child, VmError> {
    let socket = job_dir.join(SOCKET);
    let args = args(&socket, share, running_as_root());
    let command = || format!("{} {}", program.display(), args.join(" "));
    let log_path = job_dir.join("virtiofsd.log");
    let log = std::fs::File::create(&log_path).map_err(|source| VmError::Io {
        what: format!("create {}", log_path.display()),
        source,
    })?;
    let log_err = log.try_clone().map_err(|source| VmError::Io {
        what: format!("create {}", log_path.display()),
        source,
    })?;
    let mut child = Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| VmError::Virtiofsd {
            command: command(),
            detail: source.to_string(),
        })?;
    let started = Instant::now();
    loop {
        if socket.exists() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            let output = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(VmError::Virtiofsd {
                command: command(),
                detail: format!("it ended ({status}): {}", last_lines(&output)),
            });
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(VmError::Virtiofsd {
                command: command(),
                detail: format!("no socket after {} s", START_TIMEOUT.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_parses_and_a_named_binary_must_exist() {
        assert_eq!(VmShare::parse("auto"), Some(VmShare::Auto));
        assert_eq!(VmShare::parse(" virtiofs"), Some(VmShare::Virtiofs));
        assert_eq!(VmShare::parse("9p"), Some(VmShare::NineP));
        assert_eq!(VmShare::parse("nfs"), None);
        assert_eq!(find(Some(Path::new("/nonexistent/virtiofsd"))), None);
        assert_eq!(
            find(Some(Path::new("/bin/sh"))),
            Some(PathBuf::from("/bin/sh"))
        );
        let socket = Path::new("/j/virtiofs.sock");
        let share = Path::new("/j/job");
        assert_eq!(
            args(socket, share, true).join(" "),
            "--socket-path=/j/virtiofs.sock --shared-dir=/j/job --cache=auto --sandbox=chroot \
             --log-level=error"
        );
        assert!(args(socket, share, false).contains(&"--sandbox=namespace".to_owned()));
    }

    /// A `virtiofsd` that ends at once is an error naming the command.
    #[tokio::test]
    async fn a_virtiofsd_that_ends_is_an_error_naming_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = start(Path::new("/bin/false"), dir.path(), dir.path())
            .await
            .expect_err("fails");
        let text = error.to_string();
        assert!(text.contains("/bin/false --socket-path="), "{text}");
        let error = start(Path::new("/nonexistent/virtiofsd"), dir.path(), dir.path())
            .await
            .expect_err("fails");
        assert!(
            error.to_string().contains("/nonexistent/virtiofsd"),
            "{error}"
        );
    }
}
