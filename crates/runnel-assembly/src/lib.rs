//! One job assembly: configuration (`config.yaml`, or `runnel run`'s flags mapped onto the same
//! [`Config`]) turned into what every job of a runner gets — the backend its labels select
//! ([`router`]), the runner's grants to it (the cache and artifact services, [`grants`]) and the
//! run options they share. `runnel run` and the daemon both call [`Assembly::start`]; they
//! differ in the sink, the action source and the [`Purpose`] below, nothing else.
//!
//! A new backend is one module (in `runnel-backends`), one [`runnel_config::LabelKind`], and one
//! arm in [`router::Router::prepare`] and in [`Assembly::start`].
//!
//! Owns: which backends exist and how they are configured and connected (the one place a
//! Docker backend is made: [`docker`]; a Kubernetes one, from `kubernetes:`, when a label asks),
//! leftovers of dead runners removed at start, the cache service's life. Must not: print (it logs through `tracing`), talk to Gitea, or run jobs.

pub mod docker;
pub mod grants;
pub mod kubernetes;
pub mod router;

use std::path::PathBuf;
use std::sync::Arc;

use runnel_backends::docker::DockerBackend;
use runnel_backends::host::{HostBackend, HostConfig, HostWithDockerServices, WorkspaceMode};
use runnel_backends::kubernetes::{
    KubernetesBackend, KubernetesConfig, PodToleration, RunnerRegistration,
};
use runnel_backends::vm::{VmBackend, VmConfig, VmNetwork};
use runnel_config::{Config, Label, LabelKind, ToolCacheMode};
use runnel_engine::RunOptions;
use runnel_engine::backend::{Backend, BackendError};

use crate::docker::Patience;
use crate::grants::{CacheService, CacheSettings, CacheStartError};
use crate::router::{Backends, Router};

/// What a runner runs jobs for; the only way `run` and the daemon differ here.
#[derive(Debug, Clone)]
pub enum Purpose {
    /// `runnel run` (act's use): over a working tree, jobs whose labels name no `-P` mapping
    /// run on this machine, Docker jobs work on a copy of the tree (or the tree with `--bind`),
    /// the cache service also serves artifacts, a missing Docker engine is said when a job
    /// needs it.
    Local(LocalRun),
    /// `runnel daemon`: jobs from Gitea, the host backend on copies in `host.workdir_parent`,
    /// the runner's own credentials withheld from steps, a `runs-on` naming none of the
    /// labels runs in a container of `runner.default_image` (as the Gitea runner v3.3), or
    /// fails the job when that is not set (never on this machine).
    Daemon,
}

/// A local run's own settings (those `config.yaml` has no key for).
#[derive(Debug, Clone)]
pub struct LocalRun {
    /// The tree the run is over (`GITHUB_WORKSPACE`'s source).
    pub workspace: PathBuf,
    /// `--bind`: Docker jobs mount the tree instead of working on a copy.
    pub bind_workspace: bool,
    /// `--no-skip-checkout`: `actions/checkout` of the run's own repository runs for real. It
    /// empties the workspace before fetching into it, so host jobs then work on a copy of the
    /// tree instead of the tree itself (as act's host mode always does).
    pub real_checkout: bool,
    /// Where jobs whose `runs-on` names none of the labels run: this machine for `runnel run`
    /// (act's default for unmapped labels), `exec`'s `--image` (every job, as the Gitea
    /// runner's `exec` runs them all in one image).
    pub unmatched: LabelKind,
    /// The platform (`os/arch[/variant]`) job, service and action containers are created,
    /// pulled and built for (act's `--container-architecture`); `None`: the engine's own.
    pub container_platform: Option<String>,
}

/// Why a runner cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AssemblyError {
    #[error("container.require_docker is set and Docker is not available: {0}")]
    DockerRequired(String),
    #[error("starting the cache server in {dir}")]
    Cache {
        dir: PathBuf,
        #[source]
        source: CacheStartError,
    },
}

/// What the jobs of one runner (or one `runnel run`) share.
pub struct Assembly {
    router: Router,
    /// The Docker backend, to wait for its background removals ([`Assembly::finish`]).
    docker: Option<Arc<DockerBackend>>,
    cache: Option<Arc<CacheService>>,
    /// What every job's options start from.
    options: RunOptions,
}

impl Assembly {
    /// Makes the backends `config` asks for (removing what dead runners left in them) and
    /// starts the cache service. The daemon's labels are `runner.labels`, else the `.runner`
    /// file's; a local run's are its `-P` mappings, put in `runner.labels` by the caller.
    pub async fn start(config: &Config, purpose: Purpose) -> Result<Assembly, AssemblyError> {
        let labels = labels_of(config, &purpose);
        let host = host_backend(config, &purpose);
        // Process groups and job directories of a runnel killed mid-job would otherwise stay.
        host.cleanup_leftovers();
        let wants_docker = config.container.require_docker
            || labels
                .iter()
                .any(|l| matches!(l.kind, LabelKind::Docker { .. }))
            || matches!(
                &purpose,
                Purpose::Local(LocalRun {
                    unmatched: LabelKind::Docker { .. },
                    ..
                })
            );
        let patience = match purpose {
            Purpose::Local(_) => Patience::Once,
            Purpose::Daemon => Patience::for_daemon(config, wants_docker),
        };
        let docker_config = docker::docker_config(config, &purpose);
        let wants_kubernetes = labels
            .iter()
            .any(|l| matches!(l.kind, LabelKind::Kubernetes { .. }))
            || matches!(
                &purpose,
                Purpose::Local(LocalRun {
                    unmatched: LabelKind::Kubernetes { .. },
                    ..
                })
            );
        // Connecting to Docker (a few round trips to the engine) overlaps starting the cache.
        let (docker, kubernetes, cache) = tokio::join!(
            connect_docker(docker_config, patience, wants_docker, &purpose),
            connect_kubernetes(config, wants_kubernetes, &purpose),
            start_cache(config, &purpose)
        );
        if config.container.require_docker
            && let Err(reason) = &docker
        {
            return Err(AssemblyError::DockerRequired(reason.clone()));
        }
        let cache = cache?;
        // After the cache: the VM's restricted network forwards to its port.
        let vm = vm_backend(config, &labels, &purpose, cache.as_ref());
        let backends = Backends {
            // Host jobs' `services:` run as containers publishing on 127.0.0.1 when Docker
            // answers; otherwise such a job fails saying so.
            host: Arc::new(HostWithDockerServices::new(host, docker.clone())),
            docker: docker.clone().map(|docker| docker as Arc<dyn Backend>),
            vm,
            kubernetes,
        };
        let fallback = match &purpose {
            Purpose::Local(local) => Some(local.unmatched.clone()),
            Purpose::Daemon => unmatched_for_daemon(config),
        };
        let options = base_options(config, &purpose, cache.as_ref());
        Ok(Assembly {
            router: Router::new(labels, fallback, backends),
            docker: docker.ok(),
            cache,
            options,
        })
    }

    /// An assembly of backends made elsewhere (tests plug in fakes).
    pub fn from_backends(
        labels: Vec<Label>,
        backends: Backends,
        cache: Option<Arc<CacheService>>,
        options: RunOptions,
    ) -> Assembly {
        Assembly {
            router: Router::new(labels, None, backends),
            docker: None,
            cache,
            options,
        }
    }

    /// The backend that routes each job by its labels.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The cache service, when `cache.enabled` and it started.
    pub fn cache(&self) -> Option<&Arc<CacheService>> {
        self.cache.as_ref()
    }

    /// The options every job starts from: a local run's workspace, `--env` and grants; one job
    /// at a time for the daemon, which adds each task's (and its reloadable `runner.envs` and
    /// `runner.timeout`).
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// Waits for container removals still running in the background; call before the
    /// process exits.
    pub async fn finish(&self) -> Result<(), BackendError> {
        match &self.docker {
            Some(docker) => docker.finish_teardowns().await,
            None => Ok(()),
        }
    }
}

/// Where the daemon runs a job whose `runs-on` names none of its labels: in a container of
/// `runner.default_image`, as the Gitea runner v3.3 does; nowhere when that is not set (the job
/// fails saying so). Unlike v3.3, never on this machine when Docker is missing: a job goes on
/// the host only through a label the operator wrote.
fn unmatched_for_daemon(config: &Config) -> Option<LabelKind> {
    let image = config.runner.default_image.trim();
    (!image.is_empty()).then(|| LabelKind::Docker {
        image: image.to_owned(),
    })
}

/// The labels jobs are matched against: `runner.labels`, else (daemon) the `.runner` file's,
/// as written at registration.
fn labels_of(config: &Config, purpose: &Purpose) -> Vec<Label> {
    let texts = match purpose {
        Purpose::Daemon if config.runner.labels.is_empty() => {
            runnel_protocol::runner_file::RunnerFile::load(&config.runner.file)
                .map(|file| file.labels)
                .unwrap_or_default()
        }
        _ => config.runner.labels.clone(),
    };
    // The daemon says what is wrong with its labels when it declares them.
    let (labels, _) = runnel_config::parse_labels(&texts);
    let (labels, _) = runnel_config::resolve_labels(labels, &config.runner.default_image);
    labels
}

fn host_backend(config: &Config, purpose: &Purpose) -> HostBackend {
    match purpose {
        Purpose::Local(local) => HostBackend::new(HostConfig {
            workspace: if local.real_checkout {
                WorkspaceMode::Copy
            } else {
                WorkspaceMode::InPlace
            },
            shared_tool_cache: config.runner.tool_cache_mode == ToolCacheMode::Shared,
            ..HostConfig::default()
        }),
        Purpose::Daemon => HostBackend::new(HostConfig {
            root: config.host.effective_workdir_parent(),
            workspace: WorkspaceMode::Copy,
            withhold_runner_env: true,
            shared_tool_cache: config.runner.tool_cache_mode == ToolCacheMode::Shared,
            ..HostConfig::default()
        }),
    }
}

/// The vm backend, when a label (or a local run's fallback) names a `vm://` image: its
/// settings from `config.yaml`'s `vm:` section, section-wide and per label, with the
/// `RUNNEL_VM_*` environment variables over both ([`VmConfig::apply_env`]; images to preload
/// come from the engine `container.docker_host` names), the VMs and job directories of dead
/// runners removed. On the restricted network the guest's forwards go to the built-in cache
/// server, on this machine's loopback (also when `cache.host` makes it listen on every
/// interface; with no built-in server there is no such forward), and for the daemon to the
/// Gitea server of `.runner`'s address.
fn vm_backend(
    config: &runnel_config::Config,
    labels: &[Label],
    purpose: &Purpose,
    cache: Option<&Arc<CacheService>>,
) -> Option<Arc<VmBackend>> {
    let wanted = labels
        .iter()
        .any(|l| matches!(l.kind, LabelKind::Vm { .. }))
        || matches!(
            purpose,
            Purpose::Local(LocalRun {
                unmatched: LabelKind::Vm { .. },
                ..
            })
        );
    if !wanted {
        return None;
    }
    let forwards = VmForwards {
        cache: cache
            .and_then(|cache| cache.local_addr())
            .map(forward_target),
        server: match purpose {
            Purpose::Daemon => server_forward(config),
            Purpose::Local(_) => None,
        },
    };
    let (vm_config, per_label) = vm_configs(config, labels, forwards);
    let restricted = std::iter::once(&vm_config)
        .chain(per_label.values())
        .any(|vm| vm.network == VmNetwork::Restricted);
    if restricted && cache.is_some() && !config.cache.external_server.trim().is_empty() {
        tracing::warn!(
            external_server = config.cache.external_server.trim(),
            "VM jobs cannot reach cache.external_server on the restricted VM network (only the \
             built-in cache server is forwarded); set vm.network: nat to reach it"
        );
    }
    let vm = VmBackend::with_labels(vm_config, per_label);
    vm.cleanup_leftovers();
    Some(Arc::new(vm))
}

/// Where a restricted guest's forwards go.
struct VmForwards {
    cache: Option<std::net::SocketAddr>,
    server: Option<runnel_backends::vm::forward::ServerForward>,
}

/// The vm backend's settings: `vm:`'s section-wide ones, and those of each vm label that has
/// an entry in `vm.labels`, each with the `RUNNEL_VM_*` variables over it.
fn vm_configs(
    config: &runnel_config::Config,
    labels: &[Label],
    forwards: VmForwards,
) -> (VmConfig, std::collections::BTreeMap<String, VmConfig>) {
    let mut base = VmConfig::defaults();
    if let Some(images) = &config.vm.images {
        base.images = images.clone();
    }
    if let runnel_config::DockerHostUse::Url(url) = config.container.docker_host_use() {
        base.docker_host = Some(url);
    }
    base.share = match config.vm.share {
        runnel_config::VmShareMode::Auto => runnel_backends::vm::VmShare::Auto,
        runnel_config::VmShareMode::Virtiofs => runnel_backends::vm::VmShare::Virtiofs,
        runnel_config::VmShareMode::NineP => runnel_backends::vm::VmShare::NineP,
    };
    base.virtiofsd = config.vm.virtiofsd.clone();
    base.cache_forward = forwards.cache;
    base.server_forward = forwards.server;
    let configure = |settings: &runnel_config::VmSettings| {
        let mut vm = base.clone();
        apply_vm_settings(&mut vm, settings);
        vm.apply_env();
        vm
    };
    let vm_config = configure(&config.vm.settings);
    let mut per_label = std::collections::BTreeMap::new();
    for name in config.vm.labels.keys() {
        if !labels
            .iter()
            .any(|l| l.name.eq_ignore_ascii_case(name) && matches!(l.kind, LabelKind::Vm { .. }))
        {
            tracing::warn!(
                label = %name,
                "vm.labels.{name}: this runner has no vm label of that name; its settings are unused"
            );
            continue;
        }
        per_label.insert(name.clone(), configure(&config.vm.settings_for(name)));
    }
    (vm_config, per_label)
}

/// `vm:`'s settings onto the backend's.
fn apply_vm_settings(vm: &mut VmConfig, settings: &runnel_config::VmSettings) {
    vm.cpus = settings.cpus;
    vm.memory_mib = u32::try_from(settings.memory >> 20).unwrap_or(u32::MAX);
    vm.disk_size = settings.disk_size;
    vm.boot_timeout = settings.boot_timeout;
    vm.network = match settings.network {
        runnel_config::VmNetworkMode::Restricted => VmNetwork::Restricted,
        runnel_config::VmNetworkMode::Nat => VmNetwork::Nat,
    };
    vm.preload = settings.preload_images.clone();
}

/// The Gitea server a daemon's VM jobs reach through their second forward: the address the
/// runner is registered with (`.runner`), which this machine reaches. `None` (warned) when the
/// file cannot be read or its address is not an `http(s)` URL: VM jobs then reach no Gitea.
fn server_forward(config: &Config) -> Option<runnel_backends::vm::forward::ServerForward> {
    let file = match runnel_protocol::runner_file::RunnerFile::load(&config.runner.file) {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(
                file = %config.runner.file.display(),
                error = %error,
                "VM jobs get no forward to Gitea: the runner file cannot be read"
            );
            return None;
        }
    };
    let server = runnel_backends::vm::forward::ServerForward::from_url(&file.address);
    if server.is_none() {
        tracing::warn!(
            address = file.address,
            "VM jobs get no forward to Gitea: the runner's address is not an http(s) URL"
        );
    }
    server
}

/// Where a VM's forward reaches the built-in cache server bound at `addr`: on the loopback
/// (also when `cache.host` has it listen on every interface).
fn forward_target(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

/// The Docker backend, after removing what runners that died left there; or why there is none
/// (said when a job needs it).
async fn connect_docker(
    docker_config: runnel_backends::docker::DockerBackendConfig,
    patience: Patience,
    wanted: bool,
    purpose: &Purpose,
) -> Result<Arc<DockerBackend>, String> {
    let docker = match docker::connect(docker_config, patience).await {
        Ok(docker) => docker,
        Err(error) => {
            let error = match purpose {
                Purpose::Local(_) => format!(
                    "{error} (start dockerd, or run the job's label on this machine with -P \
                     LABEL=-self-hosted)"
                ),
                Purpose::Daemon if wanted => {
                    tracing::warn!(%error, "Docker is not available; jobs with docker:// labels will fail");
                    error
                }
                Purpose::Daemon => {
                    tracing::info!(%error, "Docker is not available; host jobs with services: will fail");
                    error
                }
            };
            return Err(error);
        }
    };
    // Containers, networks and volumes of a runnel killed mid-job (its pid is gone) would
    // otherwise stay forever.
    match docker.cleanup_leftovers().await {
        Ok(report) => {
            for name in report
                .containers
                .iter()
                .chain(&report.networks)
                .chain(&report.volumes)
            {
                tracing::info!(name, "removed a leftover of a dead runner");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot remove leftovers of dead runners"),
    }
    Ok(Arc::new(docker))
}

/// The Kubernetes backend when a label asks for it, after deleting the pods that earlier runs
/// of this runner left (its `.runner` registration for the daemon, this host for a local run);
/// or why there is none (said when a job needs it).
async fn connect_kubernetes(
    config: &Config,
    wanted: bool,
    purpose: &Purpose,
) -> Result<Arc<dyn Backend>, String> {
    if !wanted {
        return Err("no `kubernetes://` label".to_owned());
    }
    let registration = match purpose {
        Purpose::Daemon => runnel_protocol::runner_file::RunnerFile::load(&config.runner.file)
            .map_err(|error| {
                tracing::warn!(%error, "no registration to label job pods with; they are this host's")
            })
            .ok()
            .map(|file| RunnerRegistration {
                id: file.id,
                address: file.address,
            }),
        Purpose::Local(_) => None,
    };
    let unapplied = container_keys_not_applied_to_pods(&config.container);
    if !unapplied.is_empty() {
        tracing::warn!(
            keys = ?unapplied,
            "these container: keys are not applied to kubernetes:// jobs; their pods are shaped \
             by the kubernetes: section only"
        );
    }
    let section = &config.kubernetes;
    let mut settings = KubernetesConfig {
        kubeconfig: section.kubeconfig.clone(),
        context: section.context.clone(),
        in_cluster: section.in_cluster,
        namespace_override: section.namespace.clone(),
        pull_policy: section.pull_policy.clone(),
        requests: section.resources.requests.clone(),
        limits: section.resources.limits.clone(),
        node_selector: section.node_selector.clone(),
        tolerations: section
            .tolerations
            .iter()
            .map(|t| PodToleration {
                key: t.key.clone(),
                operator: t.operator.clone(),
                value: t.value.clone(),
                effect: t.effect.clone(),
                toleration_seconds: t.toleration_seconds,
            })
            .collect(),
        image_pull_secrets: section.image_pull_secrets.clone(),
        service_account: section.service_account.clone(),
        automount_service_account_token: section.automount_service_account_token,
        registration,
        ..KubernetesConfig::default()
    };
    if let Some(timeout) = section.pod_start_timeout {
        settings.pod_start_timeout = timeout;
    }
    let backend = KubernetesBackend::connect(settings).await.map_err(|error| {
        tracing::warn!(%error, "Kubernetes is not available; jobs with kubernetes:// labels will fail");
        error.to_string()
    })?;
    match backend.cleanup_leftovers().await {
        Ok(removed) => {
            for name in removed {
                tracing::info!(
                    pod = name,
                    "removed a job pod left by an earlier run of this runner"
                );
            }
        }
        Err(error) => {
            tracing::warn!(%error, namespace = backend.namespace(), "cannot remove pods of dead runners")
        }
    }
    Ok(Arc::new(backend))
}

/// The `container:` keys an operator may expect on every job container that a job pod does not
/// get (said once at start, so a private CA or a forced option is not silently missing).
fn container_keys_not_applied_to_pods(
    container: &runnel_config::ContainerSection,
) -> Vec<&'static str> {
    [
        ("container.options", !container.options.trim().is_empty()),
        ("container.ca_bundle", container.ca_bundle.is_some()),
        ("container.privileged", container.privileged),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect()
}

/// The cache service: `None` when disabled. A daemon whose cache cannot start runs its jobs
/// without one (logged, as with the peer); a local run stops, since its user asked for it.
async fn start_cache(
    config: &Config,
    purpose: &Purpose,
) -> Result<Option<Arc<CacheService>>, AssemblyError> {
    let Some(mut settings) = CacheSettings::from_config(config) else {
        return Ok(None);
    };
    settings.serve_artifacts = matches!(purpose, Purpose::Local(_));
    match CacheService::start(&settings).await {
        Ok(cache) => {
            tracing::info!(cache = ?cache, dir = %settings.dir.display(), "cache service ready");
            Ok(Some(cache))
        }
        Err(source) if matches!(purpose, Purpose::Local(_)) => Err(AssemblyError::Cache {
            dir: settings.dir,
            source,
        }),
        Err(error) => {
            tracing::warn!(error = %error, cause = grants::error_chain(&error), "the cache service did not start; jobs run without a cache");
            Ok(None)
        }
    }
}

/// What every job's options start from.
fn base_options(
    config: &Config,
    purpose: &Purpose,
    cache: Option<&Arc<CacheService>>,
) -> RunOptions {
    match purpose {
        Purpose::Local(local) => {
            let mut options = RunOptions::local(Some(local.workspace.clone()));
            options.grants = cache.map(|cache| {
                Arc::new(grants::LocalGrants::new(cache.clone()))
                    as Arc<dyn runnel_engine::RunnerGrants>
            });
            options.env = config.runner.job_envs();
            options.patch_actions = config.runner.patch_actions;
            options
        }
        // `runner.envs` and `runner.timeout` can change on SIGHUP: the daemon sets them per task
        // from its live settings, not from here.
        Purpose::Daemon => {
            let mut options = RunOptions::local(None);
            options.max_parallel_jobs = 1;
            options.patch_actions = config.runner.patch_actions;
            options
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `container:` keys a job pod does not get are named (and only those set).
    #[test]
    fn container_keys_a_pod_does_not_get_are_named() {
        let mut config = Config::default();
        assert!(container_keys_not_applied_to_pods(&config.container).is_empty());
        config.container.options = "--add-host a:1.2.3.4".to_owned();
        config.container.ca_bundle = Some(std::path::PathBuf::from("/etc/ca.pem"));
        assert_eq!(
            container_keys_not_applied_to_pods(&config.container),
            ["container.options", "container.ca_bundle"]
        );
    }

    /// `runner.patch_actions` reaches every job's options, in both purposes.
    #[test]
    fn patch_actions_follows_the_config() {
        let mut config = Config::default();
        assert!(base_options(&config, &Purpose::Daemon, None).patch_actions);
        config.runner.patch_actions = false;
        assert!(!base_options(&config, &Purpose::Daemon, None).patch_actions);
        let local = Purpose::Local(LocalRun {
            workspace: std::env::temp_dir(),
            bind_workspace: false,
            real_checkout: false,
            unmatched: LabelKind::Host,
            container_platform: None,
        });
        assert!(!base_options(&config, &local, None).patch_actions);
    }

    #[test]
    fn a_vm_forward_goes_to_the_cache_server_on_the_loopback() {
        let addr = |text: &str| text.parse::<std::net::SocketAddr>().expect("addr");
        assert_eq!(forward_target(addr("0.0.0.0:4100")), addr("127.0.0.1:4100"));
        assert_eq!(
            forward_target(addr("127.0.0.1:4100")),
            addr("127.0.0.1:4100")
        );
    }

    /// `vm:` reaches the backend: the section's settings for every vm label, a label's own
    /// entry over them (matched ignoring case), none for an entry naming no vm label.
    #[test]
    fn the_vm_section_and_its_labels_become_the_backends_settings() {
        let env_set = [
            "RUNNEL_VM_IMAGES",
            "RUNNEL_VM_CPUS",
            "RUNNEL_VM_MEMORY_MIB",
            "RUNNEL_VM_BOOT_TIMEOUT",
            "RUNNEL_VM_PRELOAD_IMAGES",
            "RUNNEL_VM_NETWORK",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        if env_set {
            eprintln!("note: skipped: RUNNEL_VM_* variables are set and would override the file");
            return;
        }
        let loaded = Config::parse(
            "config.yaml",
            "vm:\n  images: /images\n  memory: 2GiB\n  network: nat\n  labels:\n    \
             Big: {cpus: 4, disk_size: 10GiB, network: restricted}\n    docker: {cpus: 8}\n",
        )
        .expect("config");
        let (labels, errors) = runnel_config::parse_labels(&[
            "small:vm://debian-bookworm".to_owned(),
            "big:vm://debian-bookworm".to_owned(),
            "docker:docker://node:20".to_owned(),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let forward = "127.0.0.1:4100".parse().ok();
        let forwards = VmForwards {
            cache: forward,
            server: None,
        };
        let (base, per_label) = vm_configs(&loaded.config, &labels, forwards);
        assert_eq!(base.images, std::path::Path::new("/images"));
        assert_eq!((base.cpus, base.memory_mib), (1, 2048));
        assert_eq!(base.network, VmNetwork::Nat);
        assert_eq!(base.disk_size, None);
        assert_eq!(base.cache_forward, forward);
        assert_eq!(per_label.keys().collect::<Vec<_>>(), ["Big"]);
        let big = &per_label["Big"];
        assert_eq!((big.cpus, big.memory_mib), (4, 2048));
        assert_eq!(big.disk_size, Some(10 << 30));
        assert_eq!(big.network, VmNetwork::Restricted);
        assert_eq!(big.images, base.images);
        let backend = VmBackend::with_labels(base, per_label);
        assert_eq!(backend.settings_for("big").cpus, 4);
        assert_eq!(backend.settings_for("small").cpus, 1);
    }

    #[test]
    fn the_daemon_runs_unmatched_jobs_in_the_default_image_or_nowhere() {
        let mut config = Config::default();
        assert_eq!(unmatched_for_daemon(&config), None, "unset: the job fails");
        config.runner.default_image = " docker.gitea.com/runner-images:ubuntu-latest ".to_owned();
        assert_eq!(
            unmatched_for_daemon(&config),
            Some(LabelKind::Docker {
                image: "docker.gitea.com/runner-images:ubuntu-latest".to_owned()
            })
        );
    }
}
