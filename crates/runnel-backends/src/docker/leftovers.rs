//! Labels that tie every Docker object to its job and runner process, and the removal of objects
//! whose runner is gone.
//!
//! A runner is "gone" when no process with its pid exists, or one does but started at another
//! time (the pid was reused): `runnel.pid-start` holds the start time from `/proc/<pid>/stat`.
//! This assumes runners share this machine's pid namespace; objects of runners elsewhere using
//! the same engine would look dead, so a remote engine shared by several hosts needs care.
//!
//! Must not: remove objects without the `runnel.pid` label.

use std::collections::HashMap;

use super::error::DockerError;
use super::is_not_found;
use crate::host::leftovers::process_start_time;
use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};

pub(crate) const LABEL_JOB: &str = "runnel.job";
pub(crate) const LABEL_PID: &str = "runnel.pid";
pub(crate) const LABEL_PID_START: &str = "runnel.pid-start";

/// The labels of this runner process.
#[derive(Debug, Clone)]
pub(crate) struct RunnerLabels {
    pid: u32,
    start: Option<String>,
}

impl RunnerLabels {
    pub(crate) fn of_this_process() -> RunnerLabels {
        let pid = std::process::id();
        RunnerLabels {
            pid,
            start: process_start_time(pid),
        }
    }

    /// Labels for every object of one job.
    pub(crate) fn for_job(&self, job_key: &str) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (LABEL_JOB.to_owned(), job_key.to_owned()),
            (LABEL_PID.to_owned(), self.pid.to_string()),
        ]);
        if let Some(start) = &self.start {
            labels.insert(LABEL_PID_START.to_owned(), start.clone());
        }
        labels
    }
}

/// Whether the runner that labelled an object is still running.
fn runner_alive(labels: &HashMap<String, String>) -> bool {
    let Some(pid) = labels
        .get(LABEL_PID)
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        // Not ours to judge: keep it.
        return true;
    };
    !runner_gone(pid, labels.get(LABEL_PID_START).map(String::as_str))
}

/// Whether runner `pid`, started at `start` (when known), no longer runs.
pub(crate) fn runner_gone(pid: u32, start: Option<&str>) -> bool {
    match (process_start_time(pid), start) {
        (None, _) => true,
        (Some(now), Some(then)) => now != then,
        (Some(_), None) => false,
    }
}

/// This process's pid and start time (`0` when unknown), for names of its objects.
pub(crate) fn this_runner() -> (u32, String) {
    let pid = std::process::id();
    (
        pid,
        process_start_time(pid).unwrap_or_else(|| "0".to_owned()),
    )
}

/// What [`cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftoverReport {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// Job directories on this machine (see `DockerBackendConfig::job_files`).
    pub directories: Vec<std::path::PathBuf>,
}

pub(crate) async fn cleanup(docker: &Docker) -> Result<LeftoverReport, DockerError> {
    let engine = |subject: &str| DockerError::engine("remove leftovers of dead runners", subject);
    let filters = HashMap::from([("label", vec![LABEL_PID])]);
    let mut report = LeftoverReport::default();

    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(engine("list containers"))?;
    for container in containers {
        let (Some(id), Some(labels)) = (container.id, container.labels) else {
            continue;
        };
        if runner_alive(&labels) {
            continue;
        }
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(&id, Some(options)).await {
            Ok(()) => report.containers.push(id),
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(engine(&format!("remove container {id}"))(error)),
        }
    }

    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(engine("list networks"))?;
    for network in networks {
        let (Some(id), Some(name), Some(labels)) = (network.id, network.name, network.labels)
        else {
            continue;
        };
        if runner_alive(&labels) {
            continue;
        }
        // By id: Docker allows two networks with one name, and then refuses the name.
        match docker.remove_network(&id).await {
            Ok(()) => report.networks.push(name),
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(engine(&format!("remove network {name}"))(error)),
        }
    }

    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(engine("list volumes"))?;
    for volume in volumes.volumes.unwrap_or_default() {
        if runner_alive(&volume.labels) {
            continue;
        }
        let options = RemoveVolumeOptionsBuilder::new().force(true).build();
        match docker.remove_volume(&volume.name, Some(options)).await {
            Ok(()) => report.volumes.push(volume.name),
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(engine(&format!("remove volume {}", volume.name))(error)),
        }
    }
    if report != LeftoverReport::default() {
        tracing::info!(
            containers = report.containers.len(),
            networks = report.networks.len(),
            volumes = report.volumes.len(),
            "removed leftovers of dead runners"
        );
    }
    Ok(report)
}
