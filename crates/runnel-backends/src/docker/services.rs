//! Services of a job: refusing two on one port, and waiting until each is healthy (or running,
//! without a health check), with the service's logs in the error when it is not.
//!
//! Must not: create the job container or the network (`pod` does).

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::error::{DockerError, ServiceProblem};

/// How often a starting service is looked at. Docker runs the health command on its own
/// schedule; this only decides how soon we notice.
const POLL: Duration = Duration::from_millis(100);
pub(crate) const LOG_LINES: &str = "50";

/// Refuses two services listening on one port: in the pod they share one network namespace.
/// `ports` holds, per service id in workflow order, its container ports (`5432/tcp`).
pub(crate) fn check_port_conflicts(ports: &[(String, Vec<String>)]) -> Result<(), DockerError> {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (service, service_ports) in ports {
        for port in service_ports {
            if let Some(first) = owner.insert(port, service)
                && first != service
            {
                return Err(DockerError::PortConflict {
                    first: first.to_owned(),
                    second: service.clone(),
                    port: port.clone(),
                });
            }
        }
    }
    Ok(())
}

/// A started service container to wait for.
pub(crate) struct StartingService<'a> {
    pub(crate) id: &'a str,
    pub(crate) container: &'a str,
}

/// Waits until the service is healthy (when it has a health check) or running (when not).
pub(crate) async fn wait_ready(
    docker: &Docker,
    service: StartingService<'_>,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), DockerError> {
    let started = tokio::time::Instant::now();
    loop {
        let inspect = docker
            .inspect_container(service.container, None)
            .await
            .map_err(DockerError::engine(
                "start services",
                &format!("inspect service `{}`", service.id),
            ))?;
        let state = inspect.state.unwrap_or_default();
        let health = state.health.as_ref().and_then(|health| health.status);
        let exited = matches!(
            state.status,
            Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD)
        );
        if exited {
            let problem = ServiceProblem::Exited {
                code: state.exit_code.unwrap_or(-1),
            };
            return Err(not_ready(docker, &service, problem, None).await);
        }
        match health {
            Some(HealthStatusEnum::HEALTHY) => return Ok(()),
            Some(HealthStatusEnum::UNHEALTHY) => {
                let last_check = state
                    .health
                    .and_then(|health| health.log)
                    .and_then(|log| log.last().and_then(|check| check.output.clone()));
                return Err(
                    not_ready(docker, &service, ServiceProblem::Unhealthy, last_check).await,
                );
            }
            Some(HealthStatusEnum::STARTING) => {}
            // No health check: running is as ready as we can tell.
            _ if state.running == Some(true) => return Ok(()),
            _ => {}
        }
        if started.elapsed() >= timeout {
            let problem = ServiceProblem::TimedOut {
                seconds: timeout.as_secs(),
            };
            return Err(not_ready(docker, &service, problem, None).await);
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled() => {
                return Err(DockerError::ServiceCancelled { service: service.id.to_owned() });
            }
        }
    }
}

async fn not_ready(
    docker: &Docker,
    service: &StartingService<'_>,
    problem: ServiceProblem,
    last_check: Option<String>,
) -> DockerError {
    DockerError::ServiceNotReady {
        service: service.id.to_owned(),
        problem,
        last_check,
        logs: service_logs(docker, service.container).await,
    }
}

/// The tail of a container's log, or a note saying why there is none.
async fn service_logs(docker: &Docker, container: &str) -> String {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(LOG_LINES)
        .build();
    let mut stream = docker.logs(container, Some(options));
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => text.push_str(&String::from_utf8_lossy(&chunk.into_bytes())),
            Err(error) => {
                text.push_str(&format!("(could not read the log: {error})"));
                break;
            }
        }
    }
    if text.trim().is_empty() {
        text = "(empty)".to_owned();
    }
    text
}
