//! Files of the host backend: job directory names, the workspace copy, and path checks that
//! keep `write_file`/`read_file` inside the job's directories.
//!
//! Must not: follow paths out of the allowed roots (`..` is rejected, not resolved).

use std::path::{Component, Path, PathBuf};

use runnel_engine::backend::BackendError;

/// A job key reduced to characters that are safe in a directory name.
pub(crate) fn sanitize(job_key: &str) -> String {
    let cleaned: String = job_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    if cleaned.is_empty() {
        "job".to_owned()
    } else {
        cleaned
    }
}

/// `path` when it is absolute, has no `..` component and starts with one of `roots`.
pub(crate) fn inside(path: &Path, roots: &[&Path]) -> Option<PathBuf> {
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    roots
        .iter()
        .any(|root| path.starts_with(root))
        .then(|| path.to_path_buf())
}

/// Writes `contents`, creating parent directories; mode 0700 when `executable`, else 0600:
/// scripts and env files hold secret values, and only the runner's user runs the steps.
pub(crate) fn write(path: &Path, contents: &[u8], executable: bool) -> Result<(), BackendError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |operation: &str| {
        let operation = format!("{operation} {}", path.display());
        move |source| BackendError::Io { operation, source }
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("create parent of"))?;
    }
    std::fs::write(path, contents).map_err(io("write"))?;
    let mode = if executable { 0o700 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("chmod"))
}

/// Copies the tree at `source` to `target` (created), keeping symlinks as symlinks.
pub(crate) fn copy_tree(source: &Path, target: &Path) -> Result<(), BackendError> {
    let io = |operation: String| move |source| BackendError::Io { operation, source };
    std::fs::create_dir_all(target).map_err(io(format!("create {}", target.display())))?;
    let entries =
        std::fs::read_dir(source).map_err(io(format!("read directory {}", source.display())))?;
    for entry in entries {
        let entry = entry.map_err(io(format!("read directory {}", source.display())))?;
        let from = entry.path();
        let to = target.join(entry.file_name());
        let file_type = entry
            .file_type()
            .map_err(io(format!("stat {}", from.display())))?;
        if file_type.is_dir() {
            copy_tree(&from, &to)?;
        } else if file_type.is_symlink() {
            let link =
                std::fs::read_link(&from).map_err(io(format!("read link {}", from.display())))?;
            std::os::unix::fs::symlink(&link, &to)
                .map_err(io(format!("create link {}", to.display())))?;
        } else {
            std::fs::copy(&from, &to).map_err(io(format!(
                "copy {} to {}",
                from.display(),
                to.display()
            )))?;
        }
    }
    Ok(())
}
