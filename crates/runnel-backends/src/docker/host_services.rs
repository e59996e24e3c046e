//! Services of a job whose steps run on this machine (the host backend): containers on a
//! network of their own, each known there by its service id, with their `ports:` published
//! on 127.0.0.1, as on a GitHub VM (`localhost:5432` from a step; `job.services.<id>.ports`
//! holds the host ports). Health checks are waited for as in the pod; every object carries
//! the runner's labels, so leftovers of a killed runner are removed at start.
//!
//! Must not: run steps (the host backend does) or touch the job container's pod layout.

use std::collections::{BTreeMap, HashMap};

use bollard::models::NetworkCreateRequest;
use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig};
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use futures_util::future::{join_all, try_join_all};
use runnel_engine::backend::{BackendError, JobSpec};
use tokio_util::sync::CancellationToken;

use super::container;
use super::error::DockerError;
use super::image::{self, ImageRequest, PullLog, PullPolicy};
use super::options;
use super::services::{self, StartingService};
use super::volumes::VolumePolicy;
use super::{DockerBackend, is_not_found};

/// Started services of one host job; [`RunningServices::remove`] must be called.
pub struct RunningServices {
    docker: bollard::Docker,
    containers: Vec<String>,
    network: Option<String>,
    /// service id → (container port → host port), for the `job` context.
    pub ports: BTreeMap<String, BTreeMap<String, String>>,
}

impl DockerBackend {
    /// Starts `spec.services` for a job whose steps run on this machine and waits until they
    /// are ready (healthy, or running without a health check). On error nothing is left.
    pub async fn start_host_services(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<RunningServices, BackendError> {
        let mut running = RunningServices {
            docker: self.docker.clone(),
            containers: Vec::new(),
            network: None,
            ports: BTreeMap::new(),
        };
        match start(self, spec, cancel, &mut running).await {
            Ok(()) => Ok(running),
            Err(error) => {
                if let Err(teardown_error) = running.remove().await {
                    tracing::warn!(%teardown_error, "could not remove half-started services");
                }
                Err(error.into())
            }
        }
    }
}

async fn start(
    backend: &DockerBackend,
    spec: &JobSpec,
    cancel: &CancellationToken,
    running: &mut RunningServices,
) -> Result<(), DockerError> {
    let docker = &backend.docker;
    let config = &backend.config;
    let policy = VolumePolicy::of(config);
    let check = |id: &str, source| DockerError::Refused {
        operation: "start services",
        subject: format!("service `{id}`"),
        source,
    };
    // Everything the workflow wrote is checked before anything is created.
    let mut planned = Vec::new();
    for service in &spec.services {
        let container = &service.container;
        let options = options::service_options(&container.options, config)
            .and_then(|checked| {
                options::with_service_command(
                    checked,
                    service.entrypoint.as_deref(),
                    service.command.as_deref(),
                )
            })
            .map_err(|error| check(&service.id, error))?;
        let volumes = container::check_volumes(&container.volumes, &policy)
            .map_err(|error| check(&service.id, error))?;
        let ports =
            container::check_ports(&container.ports).map_err(|error| check(&service.id, error))?;
        planned.push((service, options, volumes, ports));
    }
    let pull_policy = PullPolicy::of(config);
    try_join_all(planned.iter().map(|(service, ..)| {
        image::ensure_image(
            docker,
            ImageRequest {
                image: &service.container.image,
                credentials: service.container.credentials.as_ref(),
                policy: &pull_policy,
                log: PullLog::Setup,
            },
            cancel,
        )
    }))
    .await?;

    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let sequence = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("runnel-{}-services-{sequence}", std::process::id());
    let labels = backend.labels.for_job(&spec.job_key);
    // A network of its own: services reach each other by id, and no other job's.
    let network = docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".to_owned()),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .map_err(DockerError::engine("create services network", &name))?
        .id;
    running.network = Some(network.clone());

    let mut started = Vec::new();
    for (service, options, volumes, ports) in &planned {
        let container_name = format!("{name}-{}", container::sanitize(&service.id));
        let mut mounts: Vec<_> = backend.ca.iter().map(|ca| ca.mount()).collect();
        let mut binds = Vec::new();
        container::add_volumes(volumes, &labels, &mut mounts, &mut binds);
        let port_bindings = container::port_bindings(ports);
        let exposed_ports: Vec<String> = port_bindings.keys().cloned().collect();
        let mut body = ContainerCreateBody {
            image: Some(service.container.image.clone()),
            env: Some(container::with_ca_env(
                backend.ca.as_ref(),
                container::env_list(&service.container.env, options),
            )),
            labels: Some(container::labels_with(&labels, options)),
            entrypoint: options.entrypoint.clone(),
            cmd: options.cmd.clone(),
            exposed_ports: (!exposed_ports.is_empty()).then_some(exposed_ports),
            host_config: Some(HostConfig {
                network_mode: Some(network.clone()),
                init: options.init,
                mounts: (!mounts.is_empty()).then_some(mounts),
                binds: (!binds.is_empty()).then_some(binds),
                port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.clone(),
                    EndpointSettings {
                        aliases: Some(vec![service.id.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        container::apply_options(&mut body, options, None);
        let what = |source| DockerError::Engine {
            operation: "start services",
            subject: format!("service `{}` ({})", service.id, service.container.image),
            source,
        };
        let id = docker
            .create_container(
                super::create_options(Some(&container_name), config.platform.as_deref()),
                body,
            )
            .await
            .map_err(what)?
            .id;
        running.containers.push(id.clone());
        docker.start_container(&id, None).await.map_err(what)?;
        started.push((service.id.as_str(), id, ports));
    }
    let waits = started.iter().map(|(id, container, _)| {
        services::wait_ready(
            docker,
            StartingService { id, container },
            config.service_start_timeout,
            cancel,
        )
    });
    for result in join_all(waits).await {
        result?;
    }
    for (id, container, ports) in &started {
        let inspect =
            docker
                .inspect_container(container, None)
                .await
                .map_err(DockerError::engine(
                    "start services",
                    &format!("inspect `{id}`"),
                ))?;
        let bound = inspect
            .network_settings
            .and_then(|settings| settings.ports)
            .unwrap_or_default();
        let mut published = BTreeMap::new();
        for port in ports.iter() {
            let host_port = bound
                .get(&port.container_port)
                .and_then(|bindings| bindings.as_ref())
                .and_then(|bindings| bindings.first())
                .and_then(|binding| binding.host_port.clone());
            if let Some(host_port) = host_port {
                let key = port.container_port.trim_end_matches("/tcp").to_owned();
                published.insert(key, host_port);
            }
        }
        running.ports.insert((*id).to_owned(), published);
    }
    Ok(())
}

impl RunningServices {
    /// Removes the containers (with their anonymous volumes) and the network. Safe to call
    /// twice.
    pub async fn remove(&mut self) -> Result<(), BackendError> {
        let containers = std::mem::take(&mut self.containers);
        let docker = &self.docker;
        let removals = containers.iter().map(|id| async move {
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match docker.remove_container(id, Some(options)).await {
                Err(source) if !is_not_found(&source) => Err(DockerError::Engine {
                    operation: "remove service container",
                    subject: id.clone(),
                    source,
                }),
                _ => Ok(()),
            }
        });
        let mut first_error = None;
        for result in join_all(removals).await {
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        if let Some(network) = self.network.take() {
            match docker.remove_network(&network).await {
                Err(source) if !is_not_found(&source) => {
                    first_error.get_or_insert(DockerError::Engine {
                        operation: "remove services network",
                        subject: network,
                        source,
                    });
                }
                _ => {}
            }
        }
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }
}
