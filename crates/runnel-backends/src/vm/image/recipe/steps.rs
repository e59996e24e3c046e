//! The recipe's primitives: run one command, or make, copy, write or remove files, with an
//! error naming the recipe step and what failed. Hashed into image ids with recipe.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::super::ImageError;
use super::mounted_under;

/// Runs `command`; an error names `what` the recipe was doing, the command and the end of
/// what it said.
pub(super) fn step(what: &str, command: &mut Command) -> Result<(), ImageError> {
    let shown = describe(command);
    tracing::debug!(command = %shown, "{what}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ImageError::Step {
            step: what.to_owned(),
            command: shown.clone(),
            detail: format!("cannot start it: {source}"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(ImageError::Step {
        step: what.to_owned(),
        command: shown,
        detail: format!(
            "{}\n{}",
            output.status,
            tail(&output.stderr, &output.stdout)
        ),
    })
}

/// Waits for a spawned stage of a pipeline.
pub(super) fn finish(
    what: &str,
    shown: &str,
    child: std::process::Child,
) -> Result<(), ImageError> {
    let output = child
        .wait_with_output()
        .map_err(|source| ImageError::Step {
            step: what.to_owned(),
            command: shown.to_owned(),
            detail: source.to_string(),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ImageError::Step {
            step: what.to_owned(),
            command: shown.to_owned(),
            detail: format!("{}\n{}", output.status, tail(&output.stderr, &[])),
        })
    }
}

pub(super) fn spawn_error(what: &str, program: &str) -> impl FnOnce(std::io::Error) -> ImageError {
    let (what, program) = (what.to_owned(), program.to_owned());
    move |source| ImageError::Step {
        step: what,
        command: program,
        detail: format!("cannot start it: {source}"),
    }
}

/// The last lines a failed command wrote (stderr, else stdout).
pub(super) fn tail(stderr: &[u8], stdout: &[u8]) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    };
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub(super) fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn io_step(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = what.to_owned();
    let path = path.display().to_string();
    move |source| ImageError::Io {
        what: format!("{what} ({path})"),
        source,
    }
}

pub(super) fn create_dir(path: &Path) -> Result<(), ImageError> {
    std::fs::create_dir_all(path).map_err(io_step("create a directory", path))
}

pub(super) fn copy(from: &Path, to: &Path) -> Result<(), ImageError> {
    if let Some(parent) = to.parent() {
        create_dir(parent)?;
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(io_step(&format!("copy {}", from.display()), to))
}

pub(super) fn write(path: &Path, text: &str) -> Result<(), ImageError> {
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    // A link left by the tree (resolv.conf often is one) is replaced, never followed.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(path).map_err(io_step("replace a link", path))?;
    }
    std::fs::write(path, text).map_err(io_step("write", path))
}

pub(super) fn write_executable(path: &Path, text: &str) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(io_step("make executable", path))
}

pub(super) fn remove_tree(path: &Path) -> Result<(), ImageError> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_dir() => {
            if mounted_under(path) {
                return Err(ImageError::Step {
                    step: format!("remove {}", path.display()),
                    command: "remove_dir_all".to_owned(),
                    detail: "something is still mounted under it".to_owned(),
                });
            }
            std::fs::remove_dir_all(path).map_err(io_step("remove", path))
        }
        Ok(_) => std::fs::remove_file(path).map_err(io_step("remove", path)),
    }
}

/// Removes the files in `dir` whose names end with `suffix` (all, for an empty one).
pub(super) fn remove_matching(dir: &Path, suffix: &str) -> Result<(), ImageError> {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && file_name(&path).ends_with(suffix) {
            std::fs::remove_file(&path).map_err(io_step("remove", &path))?;
        }
    }
    Ok(())
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every path under `dir`, relative (`./…`), parents before children, for cpio.
pub(super) fn list_tree(
    dir: &Path,
    relative: &Path,
    out: &mut Vec<PathBuf>,
) -> Result<(), ImageError> {
    out.push(relative.to_owned());
    let here = dir.join(relative);
    let is_dir = std::fs::symlink_metadata(&here).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return Ok(());
    }
    let mut names: Vec<_> = std::fs::read_dir(&here)
        .map_err(io_step("list", &here))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        list_tree(dir, &relative.join(name), out)?;
    }
    Ok(())
}
