//! Which backend runs a task: the job's `runs-on` matched against the runner's labels, and the
//! label's kind (`host` → the host backend, `docker://image` → the Docker backend with that
//! image as the job container when the job names none).
//!
//! Owns: [`Backends`] (what the caller plugged in), the matching, and a thin wrapper backend
//! that adds the label's image and the config's `runner.envs` to every job. Must not: create
//! containers or processes itself; the wrapped backends do.

use std::collections::BTreeMap;
use std::sync::Arc;

use runnel_config::{Label, LabelKind};
use runnel_engine::backend::{
    Backend, BackendError, ContainerSpec, EnvironmentInfo, EnvironmentPaths, ExecExit, ExecOutput,
    ExecRequest, JobEnvironment, JobSpec,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The backends the daemon may use.
#[derive(Clone)]
pub struct Backends {
    /// Runs `host` labels.
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
    envs: &BTreeMap<String, String>,
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
        LabelKind::Host => (backends.host.clone(), None),
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
    Ok(Arc::new(LabelBackend {
        inner,
        image,
        envs: envs.clone(),
    }))
}

/// A backend that picks, for each job it prepares, the backend its `runs-on` labels select:
/// for a job calling a reusable workflow, whose called jobs each have their own `runs-on`.
pub(crate) fn select_per_job(
    labels: &[Label],
    backends: &Backends,
    envs: &BTreeMap<String, String>,
) -> Arc<dyn Backend> {
    Arc::new(PerJobBackend {
        labels: labels.to_vec(),
        backends: backends.clone(),
        envs: envs.clone(),
    })
}

struct PerJobBackend {
    labels: Vec<Label>,
    backends: Backends,
    envs: BTreeMap<String, String>,
}

#[async_trait::async_trait]
impl Backend for PerJobBackend {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        let backend =
            select(&spec.labels, &self.labels, &self.backends, &self.envs).map_err(|message| {
                BackendError::Failed {
                    operation: format!("choose a backend for job `{}`", spec.job_key),
                    message,
                }
            })?;
        backend.prepare(spec, cancel).await
    }
}

/// A backend with the label's image and the config's variables added.
struct LabelBackend {
    inner: Arc<dyn Backend>,
    image: Option<String>,
    envs: BTreeMap<String, String>,
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
        let inner = self.inner.prepare(&spec, cancel).await?;
        if self.envs.is_empty() {
            return Ok(inner);
        }
        Ok(Box::new(EnvOverlay {
            inner,
            envs: self.envs.clone(),
        }))
    }
}

/// An environment whose processes start with the config's `runner.envs` (the workflow's
/// `env` still wins: the engine adds it on top of `default_env`).
struct EnvOverlay {
    inner: Box<dyn JobEnvironment>,
    envs: BTreeMap<String, String>,
}

#[async_trait::async_trait]
impl JobEnvironment for EnvOverlay {
    fn paths(&self) -> &EnvironmentPaths {
        self.inner.paths()
    }

    fn info(&self) -> &EnvironmentInfo {
        self.inner.info()
    }

    fn default_env(&self) -> BTreeMap<String, String> {
        let mut env = self.inner.default_env();
        env.extend(self.envs.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        output: mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        self.inner.exec(request, output, cancel).await
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        self.inner.write_file(path, contents, executable).await
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.inner.read_file(path).await
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        self.inner.teardown().await
    }

    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        self.inner.find_program(program, path).await
    }
}
