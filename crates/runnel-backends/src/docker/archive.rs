//! Files in and out of a container through Docker's archive (tar) API, and `stat` through its
//! HEAD form. No shared file system is assumed, so the same code serves a remote engine.
//!
//! Must not: run processes in the container.

use super::error::DockerError;
use super::is_not_found;
use bollard::Docker;
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::TryStreamExt;

/// What `stat` found at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathKind {
    Missing,
    Directory,
    /// A regular file (or symlink: Docker does not resolve the last element).
    File {
        executable: bool,
    },
}

pub(crate) async fn stat(
    docker: &Docker,
    container: &str,
    path: &str,
) -> Result<PathKind, DockerError> {
    let options = ContainerArchiveInfoOptionsBuilder::new().path(path).build();
    match docker
        .get_container_archive_info(container, Some(options))
        .await
    {
        Ok(info) => {
            // Go's os.FileMode: directory is the top bit, symlink the 28th.
            const MODE_DIR: u32 = 1 << 31;
            if info.file_mode & MODE_DIR != 0 {
                Ok(PathKind::Directory)
            } else {
                Ok(PathKind::File {
                    executable: info.file_mode & 0o111 != 0 || !info.link_target.is_empty(),
                })
            }
        }
        Err(error) if is_not_found(&error) => Ok(PathKind::Missing),
        Err(source) => Err(DockerError::engine("stat in container", path)(source)),
    }
}

/// Writes `contents` at absolute `path`, creating missing parent directories (0755).
pub(crate) async fn write_file(
    docker: &Docker,
    container: &str,
    path: &str,
    contents: &[u8],
    mode: u32,
) -> Result<(), DockerError> {
    let operation = "write file in container";
    let (parent, name) = split_absolute(path).ok_or_else(|| DockerError::NotAbsolute {
        path: path.to_owned(),
    })?;
    // Optimistic: the parent (RUNNER_TEMP and friends) almost always exists, so one request.
    let archive =
        tar_of(&[], name, contents, mode).map_err(|source| io(operation, path, source))?;
    match upload(docker, container, parent, archive).await {
        Ok(()) => return Ok(()),
        Err(error) if is_not_found(&error) => {}
        Err(source) => return Err(DockerError::engine(operation, path)(source)),
    }
    // Walk up to the deepest existing directory and send the missing ones with the file. Only
    // missing directories go in the archive: an entry for an existing one would reset its
    // owner and mode (think /tmp).
    let mut existing = parent;
    let mut missing: Vec<&str> = Vec::new();
    loop {
        let (up, dir_name) = split_absolute(existing).unwrap_or(("/", ""));
        if dir_name.is_empty() {
            break;
        }
        match stat(docker, container, existing).await? {
            PathKind::Directory => break,
            PathKind::Missing => {
                missing.push(dir_name);
                existing = up;
            }
            PathKind::File { .. } => {
                return Err(DockerError::NotADirectory {
                    path: path.to_owned(),
                    existing: existing.to_owned(),
                });
            }
        }
    }
    missing.reverse();
    let relative_name = missing
        .iter()
        .copied()
        .chain(std::iter::once(name))
        .collect::<Vec<_>>()
        .join("/");
    let archive = tar_of(&missing, &relative_name, contents, mode)
        .map_err(|source| io(operation, path, source))?;
    upload(docker, container, existing, archive)
        .await
        .map_err(DockerError::engine(operation, path))
}

/// Reads the regular file at `path`; `None` when nothing is there, an error when it is a
/// directory or a symbolic link.
pub(crate) async fn read_file(
    docker: &Docker,
    container: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, DockerError> {
    let operation = "read file in container";
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let chunks: Result<Vec<Bytes>, _> = docker
        .download_from_container(container, Some(options))
        .try_collect()
        .await;
    let chunks = match chunks {
        Ok(chunks) => chunks,
        Err(error) if is_not_found(&error) => return Ok(None),
        Err(source) => return Err(DockerError::engine(operation, path)(source)),
    };
    let archive = chunks.concat();
    let mut reader = tar::Archive::new(archive.as_slice());
    let entries = reader
        .entries()
        .map_err(|source| io(operation, path, source))?;
    let Some(entry) = entries.into_iter().next() else {
        return Ok(None);
    };
    let mut entry = entry.map_err(|source| io(operation, path, source))?;
    if entry.header().entry_type().is_dir() {
        return Err(DockerError::IsADirectory {
            path: path.to_owned(),
        });
    }
    // Docker does not resolve a final link: the archive holds the link itself.
    if entry.header().entry_type().is_symlink() {
        return Err(DockerError::IsALink {
            path: path.to_owned(),
        });
    }
    let mut contents = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut contents)
        .map_err(|source| io(operation, path, source))?;
    Ok(Some(contents))
}

/// Unpacks `archive` (paths relative to `directory`) into the existing `directory`.
pub(crate) async fn upload_tree(
    docker: &Docker,
    container: &str,
    directory: &str,
    archive: Vec<u8>,
) -> Result<(), DockerError> {
    upload(docker, container, directory, archive)
        .await
        .map_err(DockerError::engine("copy files into container", directory))
}

async fn upload(
    docker: &Docker,
    container: &str,
    directory: &str,
    archive: Vec<u8>,
) -> Result<(), bollard::errors::Error> {
    let options = UploadToContainerOptionsBuilder::new()
        .path(directory)
        .build();
    docker
        .upload_to_container(
            container,
            Some(options),
            bollard::body_full(Bytes::from(archive)),
        )
        .await
}

/// A tar with `directories` (relative, nested in order) and one file.
pub(crate) fn tar_of(
    directories: &[&str],
    file_name: &str,
    contents: &[u8],
    mode: u32,
) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut prefix = String::new();
    for directory in directories {
        prefix.push_str(directory);
        prefix.push('/');
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(now());
        builder.append_data(&mut header, &prefix, std::io::empty())?;
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_size(contents.len() as u64);
    header.set_mtime(now());
    builder.append_data(&mut header, file_name, contents)?;
    builder.into_inner()
}

/// A tar of empty directories (relative paths, parents first), for laying out `/__w`. They
/// are world-writable with the sticky bit, like /tmp: `--user` may run steps as anyone.
pub(crate) fn tar_of_directories(directories: &[&str]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for directory in directories {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o1777);
        header.set_size(0);
        header.set_mtime(now());
        builder.append_data(&mut header, directory, std::io::empty())?;
    }
    builder.into_inner()
}

pub(crate) async fn upload_directories(
    docker: &Docker,
    container: &str,
    directories: &[&str],
) -> Result<(), DockerError> {
    let operation = "create directories in container";
    let archive = tar_of_directories(directories)
        .map_err(|source| io(operation, &directories.join(" "), source))?;
    upload(docker, container, "/", archive)
        .await
        .map_err(DockerError::engine(operation, &directories.join(" ")))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// `/a/b/c` → (`/a/b`, `c`); `/c` → (`/`, `c`); `None` for relative paths or a trailing `/`.
fn split_absolute(path: &str) -> Option<(&str, &str)> {
    let trimmed = path.strip_prefix('/')?;
    match trimmed.rsplit_once('/') {
        Some((parent, name)) if !name.is_empty() => Some((path.get(..parent.len() + 1)?, name)),
        None if !trimmed.is_empty() => Some(("/", trimmed)),
        _ => None,
    }
}

fn io(operation: &'static str, path: &str, source: std::io::Error) -> DockerError {
    DockerError::Io {
        operation,
        subject: path.to_owned(),
        source,
    }
}
