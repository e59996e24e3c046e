//! The host backend's refusals: conditions with no underlying error (a job that needs Docker,
//! a path outside the job, a program not on `PATH`), each with the job, path or program it is
//! about. They leave the backend as `BackendError::Backend`. File system errors stay
//! `BackendError::Io`, which already carries its cause.
//!
//! Must not: change a message's words; users and tests know them.

use runnel_engine::backend::BackendError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum HostError {
    #[error("job containers need the Docker backend (the job asks for image `{image}`)")]
    ContainerNeedsDocker { job_key: String, image: String },
    #[error(
        "services need the Docker backend (the job declares service `{service}`): on this \
         machine they run as Docker containers beside the steps"
    )]
    ServicesNeedDocker { job_key: String, service: String },
    /// A host job with services, and no Docker backend to run them.
    #[error(
        "the job's steps run on this machine and its services run as Docker containers, but \
         Docker is not available: {reason}. Start dockerd (or set DOCKER_HOST), or remove \
         `services:` from the job"
    )]
    DockerMissing {
        job_key: String,
        services: Vec<String>,
        /// Why there is no Docker backend, as its caller said.
        reason: String,
    },
    /// `write` or `read` of a path outside the job directory and the workspace.
    #[error("path is outside the job directory and the workspace")]
    OutsideJob { access: &'static str, path: String },
    #[error("empty command line")]
    EmptyCommand,
    #[error("`{program}` was not found on PATH ({path})")]
    NotOnPath { program: String, path: String },
    #[error("the process ended before its id was known")]
    NoProcessId { program: String },
}

impl HostError {
    /// What the backend was doing: the first words of the job's error.
    fn operation(&self) -> String {
        match self {
            HostError::ContainerNeedsDocker { job_key, .. }
            | HostError::ServicesNeedDocker { job_key, .. } => format!("prepare job {job_key}"),
            HostError::DockerMissing {
                job_key, services, ..
            } => format!(
                "start the services of job `{job_key}` ({})",
                services.join(", ")
            ),
            HostError::OutsideJob { access, path } => format!("{access} {path}"),
            HostError::EmptyCommand => "exec".to_owned(),
            HostError::NotOnPath { program, .. } | HostError::NoProcessId { program } => {
                format!("exec {program}")
            }
        }
    }
}

impl From<HostError> for BackendError {
    fn from(error: HostError) -> BackendError {
        BackendError::Backend {
            operation: error.operation(),
            source: Box::new(error),
        }
    }
}

#[cfg(test)]
mod tests;
