//! One job's pod: network, job container, services (the environment over it is `environment`).
//!
//! `prepare` checks everything it can before creating anything (options, volumes, ports, port
//! conflicts, images), then creates objects in order and, on any failure, removes what it made.
//!
//! Must not: interpret workflow semantics beyond the `JobSpec` it is given.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HostConfig, ImageInspect, Mount, MountType, MountVolumeOptions,
    NetworkCreateRequest,
};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use futures_util::future::{join_all, try_join_all};
use runnel_engine::backend::{
    BackendError, ContainerSpec, EnvironmentInfo, EnvironmentPaths, JobEnvironment, JobSpec,
};
use tokio_util::sync::CancellationToken;

use super::agent::{self, Agent};
use super::archive::{self, PathKind};
use super::ca::CaBundle;
use super::container::{
    add_volumes, apply_options, check_ports, check_volumes, env_list, labels_with, port_bindings,
    sanitize, with_ca_env,
};
use super::environment::{Created, DockerEnvironment, PendingTeardowns};
use super::error::DockerError;
use super::image::{self, ImageRequest, PullLog, PullPolicy};
use super::options::{self, CheckedOptions, PortMapping};
use super::services::{self, StartingService};
use super::step_container::StepPolicy;
use super::volumes::{VolumeMount, VolumePolicy};
use super::workdir::HostWorkDir;
use super::{DockerBackendConfig, JobNetwork, create_options, workspace};

/// Paths inside the job container. `/__w` is a per-job volume; the names follow GitHub's
/// container jobs where it has them.
const WORK_ROOT: &str = "/__w";
pub(crate) const WORKSPACE: &str = "/__w/workspace";
const TEMP: &str = "/__w/_temp";
const TOOL_CACHE: &str = "/__w/_tool";
/// Where the shared tool cache volume is mounted (the Gitea runner's path; a fresh volume
/// starts with what the image has there).
const SHARED_TOOL_CACHE: &str = "/opt/hostedtoolcache";
const HOME: &str = "/github/home";
/// The network of `JobNetwork::Shared`.
pub(crate) const SHARED_NETWORK: &str = "runnel-jobs";
/// Pid files of the exec wrapper (see `exec`).
pub(crate) const EXEC_DIR: &str = "/__w/_runnel";

pub(crate) struct PrepareContext<'a> {
    pub(crate) docker: &'a Docker,
    pub(crate) config: &'a DockerBackendConfig,
    pub(crate) labels: HashMap<String, String>,
    /// Unique prefix for this job's object names.
    pub(crate) name: String,
    /// Where job directories go on this machine; `None`: a volume per job.
    pub(crate) host_work_root: Option<&'a Path>,
    /// Set when the engine could not mount a job directory: later jobs use volumes.
    pub(crate) host_dirs_unusable: &'a AtomicBool,
    /// The CA bundle every container trusts, when configured.
    pub(crate) ca: Option<&'a CaBundle>,
    /// Where teardown leaves removals to finish in the background (`Teardown::Background`).
    pub(crate) background_teardowns: Option<PendingTeardowns>,
}

/// A service that passed the checks, ready to create.
struct PlannedService<'a> {
    id: &'a str,
    spec: &'a ContainerSpec,
    options: CheckedOptions,
    volumes: Vec<VolumeMount>,
    ports: Vec<PortMapping>,
}

pub(crate) async fn prepare(
    context: PrepareContext<'_>,
    spec: &JobSpec,
    cancel: &CancellationToken,
) -> Result<DockerEnvironment, BackendError> {
    let Some(job) = &spec.image else {
        return Err(DockerError::NoJobImage {
            job_key: spec.job_key.clone(),
        }
        .into());
    };
    let config = context.config;
    let policy = VolumePolicy::of(config);
    let check = |what: &str, source| DockerError::Refused {
        operation: "prepare Docker job",
        subject: what.to_owned(),
        source,
    };

    // Everything the workflow wrote is checked before anything is created.
    let (job_options, runner_volumes) =
        options::job_options(&job.options, config).map_err(|error| check("container", error))?;
    let mut job_volumes =
        check_volumes(&job.volumes, &policy).map_err(|error| check("container", error))?;
    job_volumes.extend(runner_volumes);
    let mut published = check_ports(&job.ports).map_err(|error| check("container", error))?;
    let mut planned = Vec::new();
    for service in &spec.services {
        let what = format!("service `{}`", service.id);
        let container = &service.container;
        planned.push(PlannedService {
            id: &service.id,
            spec: container,
            options: options::service_options(&container.options, config)
                .and_then(|checked| {
                    options::with_service_command(
                        checked,
                        service.entrypoint.as_deref(),
                        service.command.as_deref(),
                    )
                })
                .map_err(|error| check(&what, error))?,
            volumes: check_volumes(&container.volumes, &policy)
                .map_err(|error| check(&what, error))?,
            ports: check_ports(&container.ports).map_err(|error| check(&what, error))?,
        });
    }

    let pull_policy = PullPolicy::of(config);
    let image_of = async |container: &ContainerSpec| {
        image::ensure_image(
            context.docker,
            ImageRequest {
                image: &container.image,
                credentials: container.credentials.as_ref(),
                policy: &pull_policy,
                log: PullLog::Setup,
            },
            cancel,
        )
        .await
    };
    image_of(job).await?;
    let service_images = try_join_all(planned.iter().map(|service| image_of(service.spec))).await?;
    let listening: Vec<(String, Vec<String>)> = planned
        .iter()
        .zip(&service_images)
        .map(|(service, image)| {
            let mut ports: Vec<String> = service
                .ports
                .iter()
                .map(|port| port.container_port.clone())
                .collect();
            ports.extend(exposed_ports(image));
            ports.sort();
            ports.dedup();
            (service.id.to_owned(), ports)
        })
        .collect();
    services::check_port_conflicts(&listening)?;
    for service in &planned {
        published.extend(service.ports.iter().cloned());
    }

    let environment = DockerEnvironment {
        docker: context.docker.clone(),
        paths: EnvironmentPaths {
            workspace: workspace::path(config),
            temp: TEMP.to_owned(),
            tool_cache: if config.shared_tool_cache {
                SHARED_TOOL_CACHE
            } else {
                TOOL_CACHE
            }
            .to_owned(),
            home: HOME.to_owned(),
        },
        info: EnvironmentInfo::default(),
        default_env: BTreeMap::new(),
        container_id: String::new(),
        container_name: String::new(),
        has_sh: false,
        work_dir: None,
        background_teardowns: context.background_teardowns.clone(),
        next_exec: AtomicU64::new(1),
        created: Mutex::new(Created::default()),
        agent: None,
        steps: StepPolicy::of(config),
        bound_workspace: workspace::bound(spec, config).map(Path::to_path_buf),
    };
    let built = build(
        &context,
        spec,
        JobPlan {
            job,
            options: job_options,
            volumes: job_volumes,
            published,
        },
        &planned,
        environment,
        cancel,
    )
    .await;
    match built {
        Ok(environment) => Ok(environment),
        Err((environment, error)) => {
            if let Err(teardown_error) = environment.teardown().await {
                tracing::warn!(%teardown_error, "could not remove a half-prepared job");
            }
            Err(error)
        }
    }
}

struct JobPlan<'a> {
    job: &'a ContainerSpec,
    options: CheckedOptions,
    volumes: Vec<VolumeMount>,
    published: Vec<PortMapping>,
}

/// Creates the objects; on error hands the environment back so its teardown removes them.
async fn build(
    context: &PrepareContext<'_>,
    spec: &JobSpec,
    plan: JobPlan<'_>,
    planned: &[PlannedService<'_>],
    mut environment: DockerEnvironment,
    cancel: &CancellationToken,
) -> Result<DockerEnvironment, (DockerEnvironment, BackendError)> {
    let docker = context.docker;
    let config = context.config;
    macro_rules! attempt {
        ($result:expr) => {
            match $result {
                Ok(value) => value,
                Err(error) => return Err((environment, error.into())),
            }
        };
    }

    let (network, network_ref) = match &context.config.job_network {
        JobNetwork::Shared => {
            let id = attempt!(shared_network(docker).await);
            (SHARED_NETWORK.to_owned(), id)
        }
        JobNetwork::DefaultBridge => ("bridge".to_owned(), "bridge".to_owned()),
        // By name, not id: `network_mode: host` must say `host`.
        JobNetwork::Existing(name) => {
            attempt!(existing_network(docker, name).await);
            (name.clone(), name.clone())
        }
        JobNetwork::PerJob => {
            let network = context.name.clone();
            let id = attempt!(
                docker
                    .create_network(NetworkCreateRequest {
                        name: network.clone(),
                        driver: Some("bridge".to_owned()),
                        labels: Some(context.labels.clone()),
                        ..Default::default()
                    })
                    .await
                    .map_err(DockerError::engine("create job network", &network))
            )
            .id;
            environment.record(|created| created.network = Some(id.clone()));
            (network, id)
        }
    };
    let job_name = format!("{}-job", context.name);
    // The user's tree (`runnel run`) is copied into the job's workspace unless the
    // config binds it (`--bind`).
    let (bound_source, copied_source) = (
        workspace::bound(spec, config),
        workspace::copied(spec, config),
    );
    let mut work_subdirs = vec!["_temp", "_tool", "_runnel"];
    if bound_source.is_none() {
        work_subdirs.push("workspace");
    }
    if let Some(root) = context.host_work_root {
        let mut work_dir = attempt!(HostWorkDir::create(root, &context.name, &work_subdirs));
        if bound_source.is_some() {
            work_dir.shadow(WORKSPACE);
        }
        if let Some(source) = copied_source {
            attempt!(workspace::copy_to_job_dir(source, &work_dir).await);
        }
        for volume in &plan.volumes {
            work_dir.shadow(volume.target());
        }
        environment.work_dir = Some(work_dir);
    }
    let mut body = job_container_body(
        context,
        spec,
        &plan,
        planned,
        &network_ref,
        environment.work_dir.as_ref(),
    );
    if let Some(work_dir) = &environment.work_dir {
        // Steps start through the exec agent instead of `docker exec` (see `agent`).
        body.entrypoint = Some(agent::entrypoint());
        environment.agent = Agent::prepare(work_dir.work_on_host());
    }
    let created = docker
        .create_container(
            create_options(Some(&job_name), config.platform.as_deref()),
            body,
        )
        .await;
    let created = match created {
        // The engine does not see this machine's files (it runs elsewhere, or this runner runs
        // in a container): this job and the next ones use a volume.
        Err(error) if environment.work_dir.is_some() && is_missing_bind_source(&error) => {
            tracing::info!(%error, "the Docker engine cannot mount job directories of this machine; using volumes");
            context.host_dirs_unusable.store(true, Ordering::Relaxed);
            environment.agent = None;
            if let Some(work_dir) = environment.work_dir.take() {
                attempt!(work_dir.remove().await);
            }
            let body = job_container_body(context, spec, &plan, planned, &network_ref, None);
            docker
                .create_container(
                    create_options(Some(&job_name), config.platform.as_deref()),
                    body,
                )
                .await
        }
        other => other,
    };
    let mut job_id =
        attempt!(created.map_err(DockerError::engine("create job container", &plan.job.image))).id;
    environment.record(|created| created.containers.push(job_id.clone()));
    if environment.work_dir.is_none() {
        // Lay out /__w (and HOME) in one request. Before the start: Docker mounts the file
        // system for archive calls on a created container too, and calls racing the start
        // were measured slower, not faster.
        let mut directories = vec!["github/home/".to_owned()];
        directories.extend(work_subdirs.iter().map(|sub| format!("__w/{sub}/")));
        let directories: Vec<&str> = directories.iter().map(String::as_str).collect();
        attempt!(archive::upload_directories(docker, &job_id, &directories).await);
        if let Some(source) = copied_source {
            attempt!(workspace::copy_to_container(docker, &job_id, config, source).await);
        }
    }
    let started = docker.start_container(&job_id, None).await;
    // Without `--init`, an image without /bin/sh fails the agent's launcher at the start.
    let no_launcher = matches!(&started, Err(error) if agent::is_missing_launcher(error));
    if !(no_launcher && environment.agent.is_some()) {
        attempt!(started.map_err(DockerError::engine("start job container", &plan.job.image)));
    }
    // Archive `stat` of a running container is a millisecond; of a created one it mounts the
    // file system first.
    let (sh, bash, usr_bash) = tokio::join!(
        archive::stat(docker, &job_id, "/bin/sh"),
        archive::stat(docker, &job_id, "/bin/bash"),
        archive::stat(docker, &job_id, "/usr/bin/bash"),
    );
    let is_program = |kind: &PathKind| matches!(kind, PathKind::File { executable: true });
    environment.has_sh = is_program(&attempt!(sh));
    environment.info.has_bash = is_program(&attempt!(bash)) || is_program(&attempt!(usr_bash));
    if environment.agent.is_some() && (no_launcher || !environment.has_sh) {
        // The agent's launcher needs /bin/sh: run the job under `tail`, as without the agent.
        environment.agent = None;
        let body = job_container_body(
            context,
            spec,
            &plan,
            planned,
            &network_ref,
            environment.work_dir.as_ref(),
        );
        job_id = attempt!(agent::replace_container(&environment, &job_id, &job_name, body).await);
    }

    let mut service_containers = Vec::new();
    for service in planned {
        let name = format!("{}-{}", context.name, sanitize(service.id));
        let body = service_container_body(context, service, &job_id);
        let created = attempt!(
            docker
                .create_container(
                    create_options(Some(&name), config.platform.as_deref()),
                    body
                )
                .await
                .map_err(DockerError::engine(
                    "create service container",
                    &service_subject(service)
                ))
        );
        let id = created.id;
        // Services go first in the list: they are removed before the job container they join.
        environment.record(|created| created.containers.insert(0, id.clone()));
        service_containers.push(id.clone());
        attempt!(
            docker
                .start_container(&id, None)
                .await
                .map_err(DockerError::engine(
                    "start service container",
                    &service_subject(service)
                ))
        );
    }
    let waits = planned
        .iter()
        .zip(&service_containers)
        .map(|(service, container)| {
            services::wait_ready(
                docker,
                StartingService {
                    id: service.id,
                    container,
                },
                context.config.service_start_timeout,
                cancel,
            )
        });
    for result in join_all(waits).await {
        attempt!(result);
    }

    let inspect = attempt!(
        docker
            .inspect_container(&job_id, None)
            .await
            .map_err(DockerError::engine("inspect job container", &job_name))
    );
    let bound = inspect
        .network_settings
        .and_then(|settings| settings.ports)
        .unwrap_or_default();
    for service in planned {
        let mut ports = BTreeMap::new();
        for port in &service.ports {
            let host_port = bound
                .get(&port.container_port)
                .and_then(|bindings| bindings.as_ref())
                .and_then(|bindings| bindings.first())
                .and_then(|binding| binding.host_port.clone());
            if let Some(host_port) = host_port {
                let key = port.container_port.trim_end_matches("/tcp").to_owned();
                ports.insert(key, host_port);
            }
        }
        environment
            .info
            .service_ports
            .insert(service.id.to_owned(), ports);
    }
    environment.default_env = inspect
        .config
        .and_then(|config| config.env)
        .unwrap_or_default()
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    if let Some(agent) = environment.agent.as_mut() {
        agent.set_pwd(environment.default_env.get("PWD").cloned());
    }
    environment.info.container_id = Some(job_id.clone());
    environment.info.network = Some(network);
    environment.info.image = Some(plan.job.image.clone());
    environment.container_id = job_id;
    environment.container_name = job_name;
    Ok(environment)
}

/// The id of the shared job network, created on first use. It has no `runnel.pid` label, so
/// leftover cleanup keeps it, like Docker's own `bridge`.
async fn shared_network(docker: &Docker) -> Result<String, DockerError> {
    let operation = "get the shared job network";
    let filters = HashMap::from([
        ("name", vec![SHARED_NETWORK]),
        ("label", vec![SHARED_LABEL]),
    ]);
    let existing = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
        .map_err(DockerError::engine(operation, SHARED_NETWORK))?;
    // The name filter matches substrings; two runners racing may create two: take the oldest.
    let mut matching: Vec<_> = existing
        .into_iter()
        .filter(|network| network.name.as_deref() == Some(SHARED_NETWORK))
        .collect();
    matching.sort_by_key(|network| network.created.as_ref().map(ToString::to_string));
    if let Some(id) = matching.into_iter().find_map(|network| network.id) {
        return Ok(id);
    }
    let created = docker
        .create_network(NetworkCreateRequest {
            name: SHARED_NETWORK.to_owned(),
            driver: Some("bridge".to_owned()),
            // Jobs share the bridge but must not reach each other (or each other's services).
            options: Some(HashMap::from([(
                "com.docker.network.bridge.enable_icc".to_owned(),
                "false".to_owned(),
            )])),
            labels: Some(HashMap::from([(
                SHARED_LABEL.to_owned(),
                "true".to_owned(),
            )])),
            ..Default::default()
        })
        .await
        .map_err(DockerError::engine(
            operation,
            &format!("create {SHARED_NETWORK}"),
        ))?;
    Ok(created.id)
}

const SHARED_LABEL: &str = "runnel.shared";

/// Checks that the configured network exists, so the job fails naming it and the key.
async fn existing_network(docker: &Docker, name: &str) -> Result<(), DockerError> {
    match docker.inspect_network(name, None).await {
        Ok(_) => Ok(()),
        Err(error) if super::is_not_found(&error) => Err(DockerError::NoNetwork {
            name: name.to_owned(),
        }),
        Err(source) => Err(DockerError::engine("join the configured job network", name)(source)),
    }
}

/// How errors about a service's container name it.
fn service_subject(service: &PlannedService<'_>) -> String {
    format!("service `{}` ({})", service.id, service.spec.image)
}

fn job_container_body(
    context: &PrepareContext<'_>,
    spec: &JobSpec,
    plan: &JobPlan<'_>,
    planned: &[PlannedService<'_>],
    network: &str,
    work_dir: Option<&HostWorkDir>,
) -> ContainerCreateBody {
    let mut mounts = match work_dir {
        Some(work_dir) => work_dir
            .mounts()
            .into_iter()
            .map(|(source, target)| Mount {
                target: Some(target.to_owned()),
                source: Some(source),
                typ: Some(MountType::BIND),
                ..Default::default()
            })
            .collect(),
        None => vec![Mount {
            target: Some(WORK_ROOT.to_owned()),
            typ: Some(MountType::VOLUME),
            volume_options: Some(MountVolumeOptions {
                labels: Some(context.labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }],
    };
    if let Some(source) = workspace::bound(spec, context.config) {
        mounts.push(Mount {
            target: Some(workspace::path(context.config)),
            source: Some(source.display().to_string()),
            typ: Some(MountType::BIND),
            ..Default::default()
        });
    } else if let Some(mount) = workspace::mount(context.config, work_dir, &context.labels) {
        mounts.push(mount);
    }
    if let Some(ca) = context.ca {
        mounts.push(ca.mount());
    }
    if context.config.shared_tool_cache {
        mounts.push(Mount {
            target: Some(SHARED_TOOL_CACHE.to_owned()),
            source: Some(super::SHARED_TOOL_CACHE_VOLUME.to_owned()),
            typ: Some(MountType::VOLUME),
            volume_options: Some(MountVolumeOptions {
                labels: Some(HashMap::from([(
                    "runnel.tool-cache".to_owned(),
                    "shared".to_owned(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let mut binds = Vec::new();
    if context.config.mount_docker_socket {
        let socket = &context.config.docker_socket_path;
        binds.push(format!("{socket}:/var/run/docker.sock"));
    }
    add_volumes(&plan.volumes, &context.labels, &mut mounts, &mut binds);

    let mut extra_hosts: Vec<String> = planned
        .iter()
        .map(|service| format!("{}:127.0.0.1", service.id))
        .collect();
    extra_hosts.extend(plan.options.add_hosts.iter().cloned());
    let port_bindings = port_bindings(&plan.published);
    let exposed_ports: Vec<String> = port_bindings.keys().cloned().collect();

    let mut body = ContainerCreateBody {
        image: Some(plan.job.image.clone()),
        // Steps run through `exec`; the container only has to stay up. Docker's init reaps
        // the orphans that steps leave behind.
        entrypoint: Some(vec![
            "tail".to_owned(),
            "-f".to_owned(),
            "/dev/null".to_owned(),
        ]),
        cmd: Some(Vec::new()),
        env: Some(with_ca_env(
            context.ca,
            env_list(&plan.job.env, &plan.options),
        )),
        labels: Some(labels_with(&context.labels, &plan.options)),
        exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
        hostname: plan.options.hostname.clone(),
        host_config: Some(HostConfig {
            network_mode: Some(network.to_owned()),
            init: Some(plan.options.init.unwrap_or(true)),
            mounts: Some(mounts),
            binds: (!binds.is_empty()).then_some(binds),
            extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            ..Default::default()
        }),
        ..Default::default()
    };
    apply_options(&mut body, &plan.options, Some(network));
    body
}

fn service_container_body(
    context: &PrepareContext<'_>,
    service: &PlannedService<'_>,
    job_id: &str,
) -> ContainerCreateBody {
    let mut mounts: Vec<Mount> = context.ca.iter().map(|ca| ca.mount()).collect();
    let mut binds = Vec::new();
    add_volumes(&service.volumes, &context.labels, &mut mounts, &mut binds);
    let mut body = ContainerCreateBody {
        image: Some(service.spec.image.clone()),
        env: Some(with_ca_env(
            context.ca,
            env_list(&service.spec.env, &service.options),
        )),
        labels: Some(labels_with(&context.labels, &service.options)),
        entrypoint: service.options.entrypoint.clone(),
        cmd: service.options.cmd.clone(),
        host_config: Some(HostConfig {
            network_mode: Some(format!("container:{job_id}")),
            init: service.options.init,
            mounts: (!mounts.is_empty()).then_some(mounts),
            binds: (!binds.is_empty()).then_some(binds),
            ..Default::default()
        }),
        ..Default::default()
    };
    apply_options(&mut body, &service.options, None);
    body
}

fn exposed_ports(image: &ImageInspect) -> Vec<String> {
    image
        .config
        .as_ref()
        .and_then(|config| config.exposed_ports.clone())
        .unwrap_or_default()
}

/// Docker refused a bind mount because its source is not on the engine's machine.
fn is_missing_bind_source(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError { status_code: 400, message }
            if message.contains("bind source path does not exist")
    )
}
