//! The job's `container:` beyond its image: what its `env:`, `options:`, `ports:`,
//! `volumes:` and `credentials:` make of the pod's `job` container.
//!
//! As for services (`services`), the options that have a meaning in a pod are applied —
//! `-e`/`--env` as env, `--cpus`/`--memory`/`--memory-reservation` as resources, `--user`,
//! `--read-only`, `--cap-drop` and `no-new-privileges` as the security context — and the
//! others are refused by name, so a job never runs without what it asked for. Resources from
//! the runner's config win: the workflow's fill only what the config leaves unset (an operator's
//! limit is not the workflow's to raise). `volumes:` and `ports:` have no meaning in a pod
//! (the workspace is the pod's; nothing is published) and are refused; `credentials:` are
//! refused unless the config names image pull secrets, which the node pulls with.
//!
//! Must not: create pods (`pod` does); talk to the API.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements, SecurityContext};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use runnel_engine::backend::ContainerSpec;

use super::error::KubeError;
use super::services::{container_env, refuse_unmapped, resources, security_context};
use crate::docker::options::{self, ContainerRole};

/// What the pod's `job` container gets from the job's `container:`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct JobContainer {
    pub(crate) env: Vec<EnvVar>,
    /// From `options:` only; [`JobContainer::resources_under`] merges the config's.
    resources: Option<ResourceRequirements>,
    pub(crate) security_context: Option<SecurityContext>,
}

/// A job container the pod cannot run as written (becomes [`KubeError::Unsupported`]).
#[derive(Debug, thiserror::Error)]
#[error("the job's container ({image}): {problem}")]
pub(crate) struct Refused {
    image: String,
    problem: String,
}

impl From<Refused> for KubeError {
    fn from(refused: Refused) -> KubeError {
        KubeError::Unsupported(refused.to_string())
    }
}

/// Plans the job container of `container`, or says what a pod cannot do as written.
pub(crate) fn plan(
    container: &ContainerSpec,
    pull_secrets_configured: bool,
) -> Result<JobContainer, Refused> {
    let refuse = |problem: String| Refused {
        image: container.image.clone(),
        problem,
    };
    if !container.volumes.is_empty() {
        return Err(refuse(
            "`volumes:` are not available on the kubernetes backend (the workspace is the \
             pod's own volume)"
                .to_owned(),
        ));
    }
    if !container.ports.is_empty() {
        return Err(refuse(
            "`ports:` are not available on the kubernetes backend (a job pod publishes no \
             ports; services answer on localhost)"
                .to_owned(),
        ));
    }
    if container.credentials.is_some() && !pull_secrets_configured {
        return Err(refuse(
            "`credentials:` are not used on the kubernetes backend: the node pulls with the \
             pod's image pull secrets (kubernetes.image_pull_secrets in the runner's config)"
                .to_owned(),
        ));
    }
    let checked = options::check_options(&container.options, ContainerRole::Job, false)
        .map_err(|error| refuse(error.to_string()))?;
    refuse_unmapped(&checked).map_err(refuse)?;
    let mut unused = Vec::new();
    if checked.workdir.is_some() {
        unused.push("`--workdir` (steps run in the workspace)");
    }
    if checked.health.is_some() {
        unused.push("`--health-*` (the job container is not waited for by health)");
    }
    if !unused.is_empty() {
        return Err(refuse(format!(
            "not available for the job container on the kubernetes backend: {}",
            unused.join(", ")
        )));
    }
    let env = container_env(&container.env, &checked.env);
    Ok(JobContainer {
        env,
        resources: resources(&checked),
        security_context: security_context(&checked).map_err(refuse)?,
    })
}

impl JobContainer {
    /// The container's resources: `config`'s (the operator's), with the workflow's filling
    /// only the names the config leaves unset.
    pub(crate) fn resources_under(
        &self,
        config: Option<ResourceRequirements>,
    ) -> Option<ResourceRequirements> {
        let Some(asked) = &self.resources else {
            return config;
        };
        let mut merged = config.unwrap_or_default();
        let fill = |into: &mut Option<BTreeMap<String, Quantity>>,
                    from: &Option<BTreeMap<String, Quantity>>| {
            if let Some(from) = from {
                let into = into.get_or_insert_with(BTreeMap::new);
                for (name, quantity) in from {
                    into.entry(name.clone()).or_insert_with(|| quantity.clone());
                }
            }
        };
        fill(&mut merged.limits, &asked.limits);
        fill(&mut merged.requests, &asked.requests);
        Some(merged)
    }
}

#[cfg(test)]
mod tests;
