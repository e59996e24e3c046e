//! The pieces every container body is made of, shared by the job's pod (`pod`), step
//! containers (`step_container`) and a host job's services (`host_services`): the checked
//! `options:` applied to a body, port bindings, volumes, environment and label lists, the
//! container-name form of an id.
//!
//! Must not: create anything (these only fill in `ContainerCreateBody` parts).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions, PortBinding,
};

use super::ca::{self, CaBundle};
use super::options::{self, CheckedOptions, PortMapping};
use super::volumes::{self, VolumeMount, VolumePolicy};

/// The options both kinds of container share; `network` is the job container's.
pub(crate) fn apply_options(
    body: &mut ContainerCreateBody,
    options: &CheckedOptions,
    network: Option<&str>,
) {
    body.healthcheck = options.health.clone();
    body.user = options.user.clone();
    body.working_dir = options.workdir.clone();
    body.stop_signal = options.stop_signal.clone();
    let host = body.host_config.get_or_insert_with(HostConfig::default);
    host.nano_cpus = options.nano_cpus;
    host.cpu_shares = options.cpu_shares;
    host.memory = options.memory;
    host.memory_swap = options.memory_swap;
    host.memory_reservation = options.memory_reservation;
    host.shm_size = options.shm_size;
    host.pids_limit = options.pids_limit;
    host.readonly_rootfs = Some(options.read_only);
    host.privileged = Some(options.privileged);
    if !options.ulimits.is_empty() {
        host.ulimits = Some(options.ulimits.clone());
    }
    if !options.tmpfs.is_empty() {
        host.tmpfs = Some(options.tmpfs.clone());
    }
    if !options.cap_add.is_empty() {
        host.cap_add = Some(options.cap_add.clone());
    }
    if !options.cap_drop.is_empty() {
        host.cap_drop = Some(options.cap_drop.clone());
    }
    if !options.security_opt.is_empty() {
        host.security_opt = Some(options.security_opt.clone());
    }
    if !options.devices.is_empty() {
        host.devices = Some(options.devices.clone());
    }
    // Checked when the options were read, so this cannot fail for a value Docker refuses.
    if let Err(error) = options::docker_run::apply(body, &options.docker_run, network) {
        tracing::warn!(%error, "docker run options left out");
    }
}

/// Docker's port bindings for `ports`, several host bindings per container port allowed.
pub(crate) fn port_bindings(ports: &[PortMapping]) -> HashMap<String, Option<Vec<PortBinding>>> {
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in ports {
        bindings
            .entry(port.container_port.clone())
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(port.host_ip.clone()),
                host_port: Some(port.host_port.clone()),
            });
    }
    bindings
}

pub(crate) fn add_volumes(
    volumes: &[VolumeMount],
    labels: &HashMap<String, String>,
    mounts: &mut Vec<Mount>,
    binds: &mut Vec<String>,
) {
    for volume in volumes {
        match volume {
            VolumeMount::Anonymous { target } => mounts.push(Mount {
                target: Some(target.clone()),
                typ: Some(MountType::VOLUME),
                volume_options: Some(MountVolumeOptions {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            VolumeMount::Bind(spec) => binds.push(spec.clone()),
        }
    }
}

pub(crate) fn env_list(env: &BTreeMap<String, String>, options: &CheckedOptions) -> Vec<String> {
    let mut list: Vec<String> = env
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    list.extend(options.env.iter().cloned());
    list
}

/// `env` with the CA variables in front (so the workflow's own values win), when a CA bundle
/// is configured.
pub(crate) fn with_ca_env(ca: Option<&CaBundle>, env: Vec<String>) -> Vec<String> {
    match ca {
        Some(_) => {
            let mut all = ca::env_entries(&env);
            all.extend(env);
            all
        }
        None => env,
    }
}

pub(crate) fn labels_with(
    labels: &HashMap<String, String>,
    options: &CheckedOptions,
) -> HashMap<String, String> {
    let mut all = options.labels.clone();
    // Ours last: the runner's labels are what cleanup relies on.
    all.extend(
        labels
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    all
}

pub(crate) fn check_volumes(
    specs: &[String],
    policy: &VolumePolicy<'_>,
) -> Result<Vec<VolumeMount>, options::OptionError> {
    specs
        .iter()
        .map(|volume| volumes::check_volume(volume, policy))
        .collect()
}

pub(crate) fn check_ports(ports: &[String]) -> Result<Vec<PortMapping>, options::OptionError> {
    ports.iter().map(|port| options::parse_port(port)).collect()
}

/// Container names allow `[a-zA-Z0-9_.-]`; service ids are close to that already.
pub(crate) fn sanitize(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}
