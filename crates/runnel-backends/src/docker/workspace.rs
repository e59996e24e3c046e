//! Where the workspace is inside a job container: GitHub's `/__w/workspace`, or, when the
//! runner's config names a parent (act_runner's `container.workdir_parent`), `/<parent>/workspace`.
//! A workspace outside `/__w` is a mount of its own, so step containers can share it: the job
//! directory's `workspace` (bind-mounted a second time), or a volume when the job has no job
//! directory. A bind-mounted source tree (`runnel run`) is mounted there instead.
//!
//! Must not: create anything; `pod` puts the mount into the job container's create request.

use std::collections::HashMap;

use bollard::models::{Mount, MountType, MountVolumeOptions};

use super::DockerBackendConfig;
use super::workdir::HostWorkDir;

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
