//! Before the first step: the [`JobSpec`] handed to the backend (job container and services
//! evaluated from the workflow) and the event payload file (`GITHUB_EVENT_PATH`).
//!
//! Also: hands the job the runner's grants ([`crate::grants`]) once its environment exists.
//!
//! Must not: start anything; the backend does.

use runnel_workflow::{Container, Credentials, Job};

use super::JobState;
use super::error::{ExprError, JobError};
use crate::backend::{ContainerSpec, JobEnvironment, JobSpec, ServiceSpec};
use crate::contexts;
use crate::grants::{GrantRequest, with_grant};
use crate::sink::RunnerLevel;

/// The backend's view of the job: image, services, workspace.
pub(super) fn job_spec(job_state: &JobState<'_>, job: &Job) -> Result<JobSpec, ExprError> {
    let image = match &job.container {
        Some(container) => Some(container_spec(job_state, "container", container)?),
        None => None,
    };
    let mut services = Vec::new();
    for (id, service) in &job.services {
        let key = format!("services.{id}");
        let container = container_spec(job_state, &key, service)?;
        let optional = |name: &str, template: &Option<runnel_workflow::TemplateString>| {
            template
                .as_ref()
                .map(|template| {
                    job_state.expressions.evaluate_string(
                        &job_state.expressions.contexts,
                        &format!("{key}.{name}"),
                        template,
                    )
                })
                .transpose()
                .map(|value| value.filter(|value| !value.is_empty()))
        };
        let entrypoint = optional("entrypoint", &service.entrypoint)?;
        let command = optional("command", &service.command)?;
        // GitHub skips a service whose image evaluates to an empty string.
        if !container.image.is_empty() {
            services.push(ServiceSpec {
                id: id.clone(),
                container,
                entrypoint,
                command,
            });
        }
    }
    Ok(JobSpec {
        job_key: job_state.request.key.clone(),
        image,
        services,
        workspace_source: job_state.request.options.workspace_source.clone(),
        labels: job_state.request.instance.runs_on.clone(),
    })
}

fn container_spec(
    job_state: &JobState<'_>,
    key: &str,
    container: &Container,
) -> Result<ContainerSpec, ExprError> {
    let contexts = &job_state.expressions.contexts;
    let string = |name: &str, template| {
        job_state
            .expressions
            .evaluate_string(contexts, &format!("{key}.{name}"), template)
    };
    let mut env = std::collections::BTreeMap::new();
    env.extend(
        job_state
            .expressions
            .evaluate_map(contexts, &container.env)?,
    );
    let ports = container
        .ports
        .iter()
        .map(|port| string("ports", port))
        .collect::<Result<Vec<_>, _>>()?;
    let volumes = container
        .volumes
        .iter()
        .map(|volume| string("volumes", volume))
        .collect::<Result<Vec<_>, _>>()?;
    let options = match &container.options {
        // One entry, as written: backends split it as a shell would, so a quoted
        // `--health-cmd "pg_isready -U postgres"` stays one value.
        Some(options) => {
            let text = string("options", options)?;
            if text.trim().is_empty() {
                Vec::new()
            } else {
                vec![text]
            }
        }
        None => Vec::new(),
    };
    let credentials = match &container.credentials {
        // Computed keys: the whole mapping evaluated, then read as GitHub reads it.
        Some(Credentials {
            computed: Some(map),
            ..
        }) => {
            let mut values = job_state.expressions.evaluate_map(contexts, map)?;
            if let Some(unknown) = values
                .keys()
                .find(|name| !matches!(name.as_str(), "username" | "password"))
            {
                return Err(ExprError::UnexpectedKey {
                    place: "credentials",
                    key: unknown.clone(),
                });
            }
            let username = values.shift_remove("username").unwrap_or_default();
            let password = values.shift_remove("password").unwrap_or_default();
            if !password.is_empty() {
                job_state.log.masker.add(&password);
            }
            Some((username, password))
        }
        Some(credentials) => {
            let username = match &credentials.username {
                Some(t) => string("credentials.username", t)?,
                None => String::new(),
            };
            let password = match &credentials.password {
                Some(t) => string("credentials.password", t)?,
                None => String::new(),
            };
            if !password.is_empty() {
                job_state.log.masker.add(&password);
            }
            Some((username, password))
        }
        None => None,
    };
    Ok(ContainerSpec {
        image: string("image", &container.image)?,
        env,
        ports,
        volumes,
        options,
        credentials,
    })
}

/// Writes `github.event` as JSON where `GITHUB_EVENT_PATH` points.
pub(super) async fn write_event_file(
    job_state: &JobState<'_>,
    environment: &dyn JobEnvironment,
) -> Result<(), JobError> {
    let payload = match job_state.expressions.contexts.get("github") {
        Some(runnel_expr::Value::Object(github)) => github
            .get("event")
            .map(runnel_expr::Value::to_json)
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new())),
        _ => serde_json::Value::Object(serde_json::Map::new()),
    };
    let text = serde_json::to_string_pretty(&payload).map_err(JobError::EncodeEvent)?;
    let path = contexts::event_path(environment.paths());
    environment
        .write_file(&path, text.as_bytes(), false)
        .await
        .map_err(JobError::WriteEvent)
}

/// Wraps `environment` so every process of the job gets the runner's grants (cache,
/// artifacts) when the caller plugged them in; their secrets are masked from here on. A
/// service that cannot serve the job is a warning, not a failure.
pub(super) async fn attach_grants(
    job_state: &JobState<'_>,
    environment: Box<dyn JobEnvironment>,
    timeout: std::time::Duration,
) -> Box<dyn JobEnvironment> {
    let Some(grants) = job_state.request.options.grants.clone() else {
        return environment;
    };
    // `github.<path...>` as text; empty when absent.
    let github = |path: &[&str]| {
        let mut value = job_state.expressions.contexts.get("github");
        for name in path {
            value = match value {
                Some(runnel_expr::Value::Object(object)) => object.get(name),
                _ => None,
            };
        }
        value
            .map(runnel_expr::Value::to_display_string)
            .unwrap_or_default()
    };
    let request = GrantRequest {
        job_key: job_state.request.key.clone(),
        repository: github(&["repository"]),
        run_id: github(&["run_id"]),
        in_container: environment.info().container_id.is_some(),
        network: environment.info().network.clone(),
        host_loopback: environment.host_loopback(),
        server_origin: environment.server_origin(),
        host_route: environment.host_route(),
        // The runner's job timeout caps `timeout-minutes` (the daemon kills the job then).
        timeout: timeout.min(job_state.request.options.default_job_timeout),
        git_ref: github(&["ref"]),
        base_ref: github(&["base_ref"]),
        default_branch: github(&["event", "repository", "default_branch"]),
    };
    match grants.start_job(&request).await {
        Ok(grant) => {
            for secret in &grant.secrets {
                job_state.log.masker.add(secret);
            }
            for warning in &grant.warnings {
                job_state.log.runner(None, RunnerLevel::Warning, warning);
            }
            with_grant(environment, grants, grant)
        }
        Err(error) => {
            job_state.log.runner(
                None,
                RunnerLevel::Warning,
                &format!(
                    "the runner's cache and artifact services are unavailable to this job: {}",
                    crate::with_causes(&*error)
                ),
            );
            environment
        }
    }
}
