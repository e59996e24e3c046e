//! Where the workspace is inside a job container: GitHub's `/__w/workspace`, or, when the
//! runner's config names a parent (act_runner's `container.workdir_parent`), `/<parent>/workspace`.
//! A workspace outside `/__w` is a mount of its own, so step containers can share it: the job
//! directory's `workspace` (bind-mounted a second time), or a volume when the job has no job
//! directory. A job with a source tree (`runnel run`) gets a copy of it there
//! ([`copy_to_job_dir`], or [`copy_to_container`] through the archive API when the engine
//! cannot see this machine's files); with `bind_workspace` (`--bind`) the tree itself is
//! mounted there instead.
//!
//! Must not: create anything but the copy; `pod` puts the mount into the job container's
//! create request.

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use bollard::models::{Mount, MountType, MountVolumeOptions};
use runnel_engine::backend::{BackendError, JobSpec};

use super::workdir::HostWorkDir;
use super::{DockerBackendConfig, archive};
use crate::tree_copy::{self, CopyStats};

/// GitHub's layout, under the job directory's `/__w` mount.
pub(crate) const DEFAULT: &str = "/__w/workspace";

/// The workspace path inside job containers for `config`.
pub(crate) fn path(config: &DockerBackendConfig) -> String {
    match parent(config) {
        Some(parent) => format!("/{parent}/workspace"),
        None => DEFAULT.to_owned(),
    }
}

/// The `workspace_parent`, without slashes around it, when it moves the workspace.
fn parent(config: &DockerBackendConfig) -> Option<&str> {
    let parent = config.workspace_parent.as_deref()?.trim().trim_matches('/');
    (!parent.is_empty() && parent != "__w").then_some(parent)
}

/// The extra mount a moved workspace needs when no source tree is mounted there: the job
/// directory's `workspace` (which `/__w` shows too), or a labelled anonymous volume.
pub(crate) fn mount(
    config: &DockerBackendConfig,
    work_dir: Option<&HostWorkDir>,
    labels: &HashMap<String, String>,
) -> Option<Mount> {
    let target = Some(path(config)).filter(|_| parent(config).is_some())?;
    Some(match work_dir {
        Some(work_dir) => {
            let [(work_root, _), _] = work_dir.mounts();
            Mount {
                target: Some(target),
                source: Some(format!("{work_root}/workspace")),
                typ: Some(MountType::BIND),
                ..Default::default()
            }
        }
        None => Mount {
            target: Some(target),
            typ: Some(MountType::VOLUME),
            volume_options: Some(MountVolumeOptions {
                labels: Some(labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
    })
}

/// The source tree a job's workspace is, mounted (`--bind`), if any.
pub(crate) fn bound<'s>(spec: &'s JobSpec, config: &DockerBackendConfig) -> Option<&'s Path> {
    spec.workspace_source
        .as_deref()
        .filter(|_| config.bind_workspace)
}

/// The source tree copied into a job's workspace (`runnel run` without `--bind`), if any.
pub(crate) fn copied<'s>(spec: &'s JobSpec, config: &DockerBackendConfig) -> Option<&'s Path> {
    spec.workspace_source
        .as_deref()
        .filter(|_| !config.bind_workspace)
}

/// Copies the working tree at `source` into the job directory's `workspace`.
pub(crate) async fn copy_to_job_dir(
    source: &Path,
    work_dir: &HostWorkDir,
) -> Result<(), BackendError> {
    let target = work_dir.work_on_host().join("workspace");
    let source = source.to_path_buf();
    let copied = tokio::task::spawn_blocking(move || tree_copy::copy_tree(&source, &target)).await;
    let stats = copied.unwrap_or_else(|join| Err(joined("copy the working tree", join)))?;
    log_copy(&stats);
    Ok(())
}

/// Copies the working tree at `source` into the created job container's workspace through
/// Docker's archive API (one tar in memory).
pub(crate) async fn copy_to_container(
    docker: &Docker,
    container: &str,
    config: &DockerBackendConfig,
    source: &Path,
) -> Result<(), BackendError> {
    let source = source.to_path_buf();
    let packed = tokio::task::spawn_blocking(move || tree_copy::tar_tree(&source)).await;
    let (tar, stats) = packed.unwrap_or_else(|join| Err(joined("pack the working tree", join)))?;
    archive::upload_tree(docker, container, &path(config), tar).await?;
    log_copy(&stats);
    Ok(())
}

fn joined(operation: &str, join: tokio::task::JoinError) -> BackendError {
    BackendError::Io {
        operation: operation.to_owned(),
        source: std::io::Error::other(join),
    }
}

/// Says in the job's log that the job works on a copy, and how to work in the tree instead.
fn log_copy(stats: &CopyStats) {
    runnel_engine::backend::setup_log(&format!(
        "Copied the working tree into the job's workspace ({}); `--bind` mounts it instead",
        stats.describe()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_moves_the_workspace() {
        for (parent, expected) in [
            (None, "/__w/workspace"),
            (Some(""), "/__w/workspace"),
            (Some("/"), "/__w/workspace"),
            (Some("__w"), "/__w/workspace"),
            (Some("ci"), "/ci/workspace"),
            (Some("/srv/ci/"), "/srv/ci/workspace"),
        ] {
            let config = DockerBackendConfig {
                workspace_parent: parent.map(str::to_owned),
                ..DockerBackendConfig::safe_defaults()
            };
            assert_eq!(path(&config), expected, "{parent:?}");
            let volume = mount(&config, None, &HashMap::new());
            assert_eq!(
                volume.and_then(|mount| mount.target).as_deref(),
                (expected != DEFAULT).then_some(expected),
                "{parent:?}"
            );
        }
    }
}
