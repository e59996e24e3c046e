//! The job's directories on this machine: the job container's `/__w` and `HOME` are
//! bind-mounted from a per-job directory here (as GitHub mounts its runner's `_work` at
//! `/__w`), so the engine's scripts, event file and file-command files are plain file IO.
//! Through Docker's archive API each such file costs about 60 ms (the engine re-executes
//! itself to untar in a chroot), and a step writes six files and reads five.
//!
//! Files a step made are not trusted: a path is opened one component at a time with
//! `O_NOFOLLOW`, so a symlink planted in the container (`ln -s /etc/shadow $GITHUB_OUTPUT`)
//! is never followed on this machine. Such a path answers [`HostIo::UseArchive`], and the
//! caller goes through the archive API, which stays inside the container (it does not follow
//! a final link at all: such a file reads as empty, as before job directories existed).
//!
//! Directory names carry the runner's pid and start time, like the labels of its Docker
//! objects, so that directories of dead runners are removed at start.
//!
//! Must not: talk to Docker.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use runnel_engine::backend::BackendError;

use super::leftovers;

/// Where the job container sees the two directories.
const WORK_TARGET: &str = "/__w";
const HOME_TARGET: &str = "/github/home";
/// The job directory's children that are mounted.
const WORK_DIR: &str = "w";
const HOME_DIR: &str = "home";
const PREFIX: &str = "runnel-pod-";

/// One job's directory on this machine.
#[derive(Debug)]
pub(crate) struct HostWorkDir {
    job_dir: PathBuf,
    /// Container paths under `/__w` or `HOME` that another mount covers (a bind-mounted
    /// workspace, `volumes:`): their files are not in `job_dir`.
    shadowed: Vec<String>,
}

/// What a host-side file operation found.
pub(crate) enum HostIo<T> {
    Done(T),
    /// The path is not (only) ours on this machine: use the archive API.
    UseArchive,
}

impl HostWorkDir {
    /// Creates `<root>/runnel-pod-<pid>-<start>-<name>/{w/{_temp,_tool,_runnel,workspace},home}`,
    /// the mounted ones world-writable with the sticky bit like /tmp (`--user` may run steps as
    /// anyone), the job directory itself private to the runner.
    pub(crate) fn create(
        root: &Path,
        name: &str,
        work_subdirs: &[&str],
    ) -> Result<HostWorkDir, BackendError> {
        let io = |operation: String| move |source| BackendError::Io { operation, source };
        std::fs::create_dir_all(root).map_err(io(format!("create {}", root.display())))?;
        let (pid, start) = leftovers::this_runner();
        let job_dir = root.join(format!("{PREFIX}{pid}-{start}-{name}"));
        let work = job_dir.join(WORK_DIR);
        let mut directories = vec![job_dir.clone(), work.clone(), job_dir.join(HOME_DIR)];
        directories.extend(work_subdirs.iter().map(|sub| work.join(sub)));
        let made = directories.iter().try_for_each(|directory| {
            std::fs::create_dir(directory)
                .map_err(io(format!("create {}", directory.display())))?;
            // Only the runner may enter the job directory on this machine; inside, the
            // mounted directories' own modes are what containers see.
            let mode = if directory == &job_dir { 0o700 } else { 0o1777 };
            std::fs::set_permissions(directory, std::fs::Permissions::from_mode(mode))
                .map_err(io(format!("chmod {}", directory.display())))
        });
        if let Err(error) = made {
            let _ = std::fs::remove_dir_all(&job_dir);
            return Err(error);
        }
        Ok(HostWorkDir {
            job_dir,
            shadowed: Vec::new(),
        })
    }

    /// Paths another mount covers; files there go through the archive API.
    pub(crate) fn shadow(&mut self, container_path: &str) {
        self.shadowed
            .push(container_path.trim_end_matches('/').to_owned());
    }

    /// Whether another mount covers `container_path`.
    pub(crate) fn is_shadowed(&self, container_path: &str) -> bool {
        self.shadowed.iter().any(|covered| {
            container_path == covered
                || container_path
                    .strip_prefix(covered.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// The directory on this machine behind `/__w`. The runner made it, but steps own
    /// everything below it: open its children without following links.
    pub(crate) fn work_on_host(&self) -> PathBuf {
        self.job_dir.join(WORK_DIR)
    }

    /// `(host source, container target)` of the two bind mounts.
    pub(crate) fn mounts(&self) -> [(String, &'static str); 2] {
        [
            (display(&self.job_dir.join(WORK_DIR)), WORK_TARGET),
            (display(&self.job_dir.join(HOME_DIR)), HOME_TARGET),
        ]
    }

    /// The mounted directory and the components below it, when `path` (inside the container)
    /// is ours on this machine. `.`, `..` and empty components are left to the archive API.
    fn locate<'p>(&self, path: &'p str) -> Option<(PathBuf, Vec<&'p str>)> {
        if self.is_shadowed(path) {
            return None;
        }
        let (base, rest) = [(WORK_TARGET, WORK_DIR), (HOME_TARGET, HOME_DIR)]
            .into_iter()
            .find_map(|(target, dir)| {
                let rest = path.strip_prefix(target)?.strip_prefix('/')?;
                Some((self.job_dir.join(dir), rest))
            })?;
        let components: Vec<&str> = rest.split('/').collect();
        let plain = components
            .iter()
            .all(|component| !matches!(*component, "" | "." | ".."));
        plain.then_some((base, components))
    }

    /// Writes a file (replacing what was there), creating missing parents (0755).
    pub(crate) async fn write(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<HostIo<()>, BackendError> {
        let Some((base, components)) = self.locate(path) else {
            return Ok(HostIo::UseArchive);
        };
        let components: Vec<String> = components.into_iter().map(str::to_owned).collect();
        let contents = contents.to_vec();
        let done =
            tokio::task::spawn_blocking(move || write_below(&base, &components, &contents, mode))
                .await;
        resolve(path, "write", done)
    }

    /// Reads a regular file; `None` when it does not exist.
    pub(crate) async fn read(&self, path: &str) -> Result<HostIo<Option<Vec<u8>>>, BackendError> {
        let Some((base, components)) = self.locate(path) else {
            return Ok(HostIo::UseArchive);
        };
        let components: Vec<String> = components.into_iter().map(str::to_owned).collect();
        let done = tokio::task::spawn_blocking(move || read_below(&base, &components)).await;
        resolve(path, "read", done)
    }

    /// Removes the job directory (symlinks inside are removed, never followed).
    pub(crate) async fn remove(&self) -> Result<(), BackendError> {
        let job_dir = self.job_dir.clone();
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&job_dir)).await;
        match removed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Ok(Err(source)) => Err(BackendError::Io {
                operation: format!("remove job directory {}", self.job_dir.display()),
                source,
            }),
            Err(join) => Err(BackendError::Io {
                operation: format!("remove job directory {}", self.job_dir.display()),
                source: std::io::Error::other(join),
            }),
        }
    }
}

/// A file operation's outcome: `ELOOP`/`ENOTDIR` (a symlink on the way, or a file where a
/// directory should be) hands over to the archive API.
fn resolve<T>(
    path: &str,
    operation: &str,
    done: Result<Result<T, Errno>, tokio::task::JoinError>,
) -> Result<HostIo<T>, BackendError> {
    match done {
        Ok(Ok(value)) => Ok(HostIo::Done(value)),
        Ok(Err(Errno::ELOOP | Errno::ENOTDIR)) => Ok(HostIo::UseArchive),
        Ok(Err(errno)) => Err(BackendError::Io {
            operation: format!("{operation} {path} in the job directory"),
            source: std::io::Error::from(errno),
        }),
        Err(join) => Err(BackendError::Io {
            operation: format!("{operation} {path} in the job directory"),
            source: std::io::Error::other(join),
        }),
    }
}

const DIRECTORY: OFlag = OFlag::O_DIRECTORY
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_RDONLY);

/// Opens the directory holding the last component, walking without following symlinks;
/// creates missing directories when `create`.
fn open_parent(base: &Path, components: &[String], create: bool) -> Result<OwnedFd, Errno> {
    let base = std::fs::File::open(base)
        .map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(Errno::EIO as i32)))?;
    let mut directory: OwnedFd = base.into();
    let parents = components.len().saturating_sub(1);
    for name in components.iter().take(parents) {
        let opened = match openat(directory.as_fd(), name.as_str(), DIRECTORY, Mode::empty()) {
            Err(Errno::ENOENT) if create => {
                match mkdirat(
                    directory.as_fd(),
                    name.as_str(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(errno),
                }
                openat(directory.as_fd(), name.as_str(), DIRECTORY, Mode::empty())?
            }
            other => other?,
        };
        directory = opened;
    }
    Ok(directory)
}

fn write_below(
    base: &Path,
    components: &[String],
    contents: &[u8],
    mode: u32,
) -> Result<(), Errno> {
    let name = components.last().ok_or(Errno::EINVAL)?;
    let directory = open_parent(base, components, true)?;
    // A fresh file: whatever a step left at this name (a link, a fifo) is not written through.
    match unlinkat(directory.as_fd(), name.as_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(errno) => return Err(errno),
    }
    let mode = Mode::from_bits_truncate(mode);
    let file = openat(
        directory.as_fd(),
        name.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        mode,
    )?;
    // The umask may have taken bits away.
    fchmod(file.as_fd(), mode)?;
    let mut file = std::fs::File::from(file);
    file.write_all(contents)
        .map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(Errno::EIO as i32)))
}

fn read_below(base: &Path, components: &[String]) -> Result<Option<Vec<u8>>, Errno> {
    let name = components.last().ok_or(Errno::EINVAL)?;
    let directory = match open_parent(base, components, false) {
        Ok(directory) => directory,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    read_regular_at(&directory, name, u64::MAX)
}

/// Reads at most `limit` bytes of the regular file `name` in `directory` without following a
/// link at the name: `None` when there is none, `EISDIR` for a directory, `EINVAL` for any
/// other kind. Opened non-blocking, so a FIFO a step left at the name cannot hang the runner.
pub(super) fn read_regular_at(
    directory: &OwnedFd,
    name: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, Errno> {
    let file = match openat(
        directory.as_fd(),
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(file) => file,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    let kind = SFlag::from_bits_truncate(fstat(file.as_fd())?.st_mode) & SFlag::S_IFMT;
    if kind == SFlag::S_IFDIR {
        return Err(Errno::EISDIR);
    }
    if kind != SFlag::S_IFREG {
        return Err(Errno::EINVAL);
    }
    let mut contents = Vec::new();
    std::fs::File::from(file)
        .take(limit)
        .read_to_end(&mut contents)
        .map_err(|error| Errno::from_raw(error.raw_os_error().unwrap_or(Errno::EIO as i32)))?;
    Ok(Some(contents))
}

/// Removes the job directories under `root` whose runner is gone; returns their paths.
pub(crate) fn cleanup(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(PREFIX)) else {
            continue;
        };
        let mut parts = rest.splitn(3, '-');
        let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if leftovers::runner_gone(pid, Some(start)) {
            let path = entry.path();
            match std::fs::remove_dir_all(&path) {
                Ok(()) => removed.push(path),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "could not remove a leftover job directory");
                }
            }
        }
    }
    removed
}

fn display(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests;
