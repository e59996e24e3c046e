//! Which backend runs a task: the job's `runs-on` matched against the runner's labels, and the
//! label's kind (`host` → the host backend, whose `services:` the caller runs in Docker when it
//! can; a `container:` job on a `host` label → the Docker backend, as GitHub runs container jobs
//! on its VMs; `docker://image` → the Docker backend with that image as the job container when
//! the job names none).
//!
//! Owns: [`Backends`] (what the caller plugged in), the matching, and a thin wrapper backend
//! that adds the label's image to every job (the config's `runner.envs` reach jobs through
//! `RunOptions::env`). Must not: create containers or processes itself; the wrapped backends
//! do.

use std::sync::Arc;

use runnel_config::{Label, LabelKind};
use runnel_engine::backend::{Backend, BackendError, ContainerSpec, JobEnvironment, JobSpec};
use tokio_util::sync::CancellationToken;

/// The backends the daemon may use.
#[derive(Clone)]
pub struct Backends {
    /// Runs `host` labels (and their jobs' services, or says why it cannot).
    pub host: Arc<dyn Backend>,
    /// Runs `docker://` labels; `Err` says why there is none (so a docker job fails with the
    /// reason instead of running somewhere else).
    pub docker: Result<Arc<dyn Backend>, String>,
}

/// Picks the backend for a job: the first `runs-on` value that names one of `labels`.
pub(crate) fn select(
    runs_on: &[String],
    labels: &[Label],
    backends: &Backends,
) -> Result<Arc<dyn Backend>, String> {
    let label = runs_on
        .iter()
        .find_map(|wanted| labels.iter().find(|label| &label.name == wanted))
        .ok_or_else(|| {
            let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
            format!(
                "no label of this runner ({}) matches runs-on ({})",
                names.join(", "),
                runs_on.join(", ")
            )
        })?;
    let (inner, image) = match &label.kind {
        LabelKind::Host => {
            return Ok(Arc::new(HostLabelBackend {
                host: backends.host.clone(),
                docker: backends.docker.clone(),
                label: label.name.clone(),
            }));
        }
        LabelKind::Docker { image } => match &backends.docker {
            Ok(docker) => (docker.clone(), Some(image.clone())),
            Err(reason) => {
                return Err(format!(
                    "label `{}` runs jobs in the Docker image `{image}`, but Docker is not \
                     available to this runner: {reason}",
                    label.name
                ));
            }
        },
    };
    Ok(Arc::new(LabelBackend { inner, image }))
}

/// A backend that picks, for each job it prepares, the backend its `runs-on` labels select:
/// for a job calling a reusable workflow, whose called jobs each have their own `runs-on`.
pub(crate) fn select_per_job(labels: &[Label], backends: &Backends) -> Arc<dyn Backend> {
    Arc::new(PerJobBackend {
        labels: labels.to_vec(),
        backends: backends.clone(),
    })
}

struct PerJobBackend {
    labels: Vec<Label>,
    backends: Backends,
}

#[async_trait::async_trait]
impl Backend for PerJobBackend {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        let backend = select(&spec.labels, &self.labels, &self.backends).map_err(|message| {
            BackendError::Failed {
                operation: format!("choose a backend for job `{}`", spec.job_key),
                message,
            }
        })?;
        backend.prepare(spec, cancel).await
    }
}

/// A `host` label: the host backend, or Docker for a job with `container:`.
struct HostLabelBackend {
    host: Arc<dyn Backend>,
    docker: Result<Arc<dyn Backend>, String>,
    label: String,
}

#[async_trait::async_trait]
impl Backend for HostLabelBackend {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        let inner = match (&spec.image, &self.docker) {
            (None, _) => self.host.clone(),
            (Some(_), Ok(docker)) => docker.clone(),
            (Some(container), Err(reason)) => {
                return Err(BackendError::Failed {
                    operation: format!("run job `{}` in its `container:`", spec.job_key),
                    message: format!(
                        "label `{}` runs on this machine, and the job's container `{}` needs \
                         Docker, which is not available to this runner: {reason}",
                        self.label, container.image
                    ),
                });
            }
        };
        LabelBackend { inner, image: None }
            .prepare(spec, cancel)
            .await
    }
}

/// A backend with the label's image added.
struct LabelBackend {
    inner: Arc<dyn Backend>,
    image: Option<String>,
}

#[async_trait::async_trait]
impl Backend for LabelBackend {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        let mut spec = spec.clone();
        if spec.image.is_none()
            && let Some(image) = &self.image
        {
            spec.image = Some(ContainerSpec {
                image: image.clone(),
                ..ContainerSpec::default()
            });
        }
        self.inner.prepare(&spec, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that refuses every job, saying its name: which one `prepare` reached.
    struct Named(&'static str);

    #[async_trait::async_trait]
    impl Backend for Named {
        async fn prepare(
            &self,
            _spec: &JobSpec,
            _cancel: &CancellationToken,
        ) -> Result<Box<dyn JobEnvironment>, BackendError> {
            Err(BackendError::Failed {
                operation: "prepare".to_owned(),
                message: self.0.to_owned(),
            })
        }
    }

    fn spec(image: Option<&str>) -> JobSpec {
        JobSpec {
            job_key: "build".to_owned(),
            image: image.map(|image| ContainerSpec {
                image: image.to_owned(),
                ..ContainerSpec::default()
            }),
            services: Vec::new(),
            workspace_source: None,
            labels: vec!["linux".to_owned()],
        }
    }

    async fn reached(docker: Result<Arc<dyn Backend>, String>, image: Option<&str>) -> String {
        let backends = Backends {
            host: Arc::new(Named("host")),
            docker,
        };
        let labels = [Label {
            name: "linux".to_owned(),
            kind: LabelKind::Host,
        }];
        let backend = match select(&spec(None).labels, &labels, &backends) {
            Ok(backend) => backend,
            Err(error) => panic!("{error}"),
        };
        match backend
            .prepare(&spec(image), &CancellationToken::new())
            .await
        {
            Ok(_) => panic!("the fakes refuse every job"),
            Err(error) => error.to_string(),
        }
    }

    #[tokio::test]
    async fn a_container_job_on_a_host_label_runs_in_docker() {
        let docker = || Ok(Arc::new(Named("docker")) as Arc<dyn Backend>);
        assert!(reached(docker(), None).await.contains("host"));
        assert!(reached(docker(), Some("debian")).await.contains("docker"));
        let missing = reached(Err("no engine".to_owned()), Some("debian")).await;
        for expected in ["`build`", "`linux`", "debian", "no engine"] {
            assert!(missing.contains(expected), "{expected:?} in {missing}");
        }
    }
}
