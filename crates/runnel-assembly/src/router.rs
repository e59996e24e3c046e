//! Where a job runs, from its `runs-on`: the first value that names one of the runner's labels
//! (case-insensitively) decides, and the label's kind picks the backend — `host` runs on this
//! machine (its `services:` as containers publishing on 127.0.0.1, a `container:` job in
//! Docker, as GitHub runs container jobs on its VMs), `docker://image` in a container of that
//! image unless the job names its own `container:`, `vm://image` in a microVM booted from that
//! VM image. A `runs-on` naming no label goes to the fallback (`runnel run`: this machine, as
//! act's `-self-hosted`; the daemon: a container of `runner.default_image`), or fails the job
//! saying so.
//!
//! Owns: the label → backend decision and its errors. A new kind of label is one arm in
//! [`Router::prepare`]. Must not: parse label syntax (`runnel_config` does) or create
//! containers or processes itself; the backends do.

use std::sync::Arc;

use runnel_backends::vm::VmBackend;
use runnel_config::{KNOWN_SCHEMES, Label, LabelKind};
use runnel_engine::backend::{Backend, BackendError, ContainerSpec, JobEnvironment, JobSpec};
use tokio_util::sync::CancellationToken;

/// The backends a runner has, one per kind of label.
#[derive(Clone)]
pub struct Backends {
    /// Runs `host` labels (and their jobs' services, or says why it cannot).
    pub host: Arc<dyn Backend>,
    /// Runs `docker://` labels and `container:` jobs; `Err` says why there is none (so a
    /// Docker job fails with the reason instead of running somewhere else).
    pub docker: Result<Arc<dyn Backend>, String>,
    /// Runs `vm://` labels; made only when a label names one.
    pub vm: Option<Arc<VmBackend>>,
    /// Runs `kubernetes://` labels; `Err` says why there is none.
    pub kubernetes: Result<Arc<dyn Backend>, String>,
}

/// A backend that hands each job to the backend its labels select.
#[derive(Clone)]
pub struct Router {
    labels: Vec<Label>,
    fallback: Option<LabelKind>,
    backends: Backends,
}

impl Router {
    /// `labels` are tried in order against a job's `runs-on`; a job none of whose values is
    /// one of them runs as `fallback` says, or fails when there is none.
    pub fn new(labels: Vec<Label>, fallback: Option<LabelKind>, backends: Backends) -> Router {
        Router {
            labels,
            fallback,
            backends,
        }
    }

    /// The same backends with other labels (a reloaded config).
    pub fn with_labels(&self, labels: Vec<Label>) -> Router {
        Router {
            labels,
            ..self.clone()
        }
    }

    /// The label a job with this `runs-on` runs on (its name, and where it runs).
    pub fn label_for<'a>(
        &'a self,
        runs_on: &'a [String],
    ) -> Result<(&'a str, &'a LabelKind), String> {
        let chosen = runs_on.iter().find_map(|wanted| {
            self.labels
                .iter()
                .find(|label| label.name.eq_ignore_ascii_case(wanted))
        });
        match (chosen, &self.fallback) {
            (Some(label), _) => Ok((label.name.as_str(), &label.kind)),
            (None, Some(fallback)) => Ok((runs_on.first().map_or("", String::as_str), fallback)),
            (None, None) => {
                let names: Vec<&str> = self.labels.iter().map(|l| l.name.as_str()).collect();
                Err(format!(
                    "no label of this runner ({}) matches runs-on ({}), and runner.default_image \
                     is not set (set it to run such jobs in a container of that image, as the \
                     Gitea runner v3.3 does)",
                    names.join(", "),
                    runs_on.join(", ")
                ))
            }
        }
    }

    /// Says, before a job starts, why it cannot run here: no label matches, or its label
    /// needs Docker and there is none.
    pub fn check(&self, runs_on: &[String]) -> Result<(), String> {
        match self.label_for(runs_on)? {
            (name, LabelKind::Docker { image }) => match &self.backends.docker {
                Ok(_) => Ok(()),
                Err(reason) => Err(docker_label_unavailable(name, image, reason)),
            },
            (name, LabelKind::Kubernetes { image }) => match &self.backends.kubernetes {
                Ok(_) => Ok(()),
                Err(reason) => Err(kubernetes_label_unavailable(name, image, reason)),
            },
            (_, LabelKind::Host) => Ok(()),
            (name, LabelKind::Vm { image }) => match &self.backends.vm {
                Some(_) => Ok(()),
                None => Err(vm_label_unavailable(name, image)),
            },
            (name, LabelKind::Unsupported { scheme, .. }) => Err(unsupported(name, scheme)),
        }
    }

    fn docker(&self) -> Result<&Arc<dyn Backend>, &str> {
        self.backends.docker.as_ref().map_err(String::as_str)
    }
}

fn unsupported(label: &str, scheme: &str) -> String {
    format!(
        "label `{label}` has the scheme `{scheme}`, which runnel does not run (a scheme is what \
         follows a label's first `:`; runnel's: {KNOWN_SCHEMES}); the job is not run on this machine instead, which the Gitea runner \
         v3.3 would do: give the label a scheme above in runner.labels"
    )
}

fn vm_label_unavailable(label: &str, image: &str) -> String {
    format!(
        "label `{label}` runs jobs in the VM image `{image}`, but this runner has no vm backend"
    )
}

fn kubernetes_label_unavailable(label: &str, image: &str, reason: &str) -> String {
    format!(
        "label `{label}` runs jobs in pods of the image `{image}`, but no Kubernetes cluster is \
         available to this runner: {reason}"
    )
}

fn docker_label_unavailable(label: &str, image: &str, reason: &str) -> String {
    format!(
        "label `{label}` runs jobs in the Docker image `{image}`, but Docker is not available \
         to this runner: {reason}"
    )
}

#[async_trait::async_trait]
impl Backend for Router {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        let (label, kind) =
            self.label_for(&spec.labels)
                .map_err(|message| BackendError::Failed {
                    operation: format!("choose a backend for job `{}`", spec.job_key),
                    message,
                })?;
        match kind {
            LabelKind::Unsupported { scheme, .. } => Err(BackendError::Failed {
                operation: format!("choose a backend for job `{}`", spec.job_key),
                message: unsupported(label, scheme),
            }),
            LabelKind::Vm { image } => match &self.backends.vm {
                Some(vm) => vm.prepare_image(label, image, spec, cancel).await,
                None => Err(BackendError::Failed {
                    operation: format!("choose a backend for job `{}`", spec.job_key),
                    message: vm_label_unavailable(label, image),
                }),
            },
            LabelKind::Docker { image } => {
                let docker = self.docker().map_err(|reason| BackendError::Failed {
                    operation: format!(
                        "run job `{}` in image {image} (runs-on: {})",
                        spec.job_key,
                        spec.labels.join(", ")
                    ),
                    message: docker_label_unavailable(label, image, reason),
                })?;
                let mut spec = spec.clone();
                // `container:` wins over the label's image, as on GitHub and act_runner.
                if spec.image.is_none() {
                    spec.image = Some(ContainerSpec {
                        image: image.clone(),
                        ..ContainerSpec::default()
                    });
                }
                docker.prepare(&spec, cancel).await
            }
            LabelKind::Kubernetes { image } => {
                let kubernetes =
                    self.backends
                        .kubernetes
                        .as_ref()
                        .map_err(|reason| BackendError::Failed {
                            operation: format!(
                                "run job `{}` in a pod of image {image} (runs-on: {})",
                                spec.job_key,
                                spec.labels.join(", ")
                            ),
                            message: kubernetes_label_unavailable(label, image, reason),
                        })?;
                let mut spec = spec.clone();
                // `container:` wins over the label's image, as for Docker labels.
                if spec.image.is_none() {
                    spec.image = Some(ContainerSpec {
                        image: image.clone(),
                        ..ContainerSpec::default()
                    });
                }
                kubernetes.prepare(&spec, cancel).await
            }
            // A `container:` job on a host label runs in that container, as GitHub runs
            // container jobs on its VMs.
            LabelKind::Host => match &spec.image {
                Some(container) => {
                    let docker = self.docker().map_err(|reason| BackendError::Failed {
                        operation: format!("run job `{}` in its `container:`", spec.job_key),
                        message: format!(
                            "label `{label}` runs on this machine, and the job's container `{}` \
                             needs Docker, which is not available to this runner: {reason}",
                            container.image
                        ),
                    })?;
                    docker.prepare(spec, cancel).await
                }
                // Services of a job on this machine run as containers publishing their ports
                // on 127.0.0.1, as on a GitHub VM: the host backend's to run or refuse.
                None => self.backends.host.prepare(spec, cancel).await,
            },
        }
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
            spec: &JobSpec,
            _cancel: &CancellationToken,
        ) -> Result<Box<dyn JobEnvironment>, BackendError> {
            Err(BackendError::Failed {
                operation: "prepare".to_owned(),
                message: format!(
                    "{} image={}",
                    self.0,
                    spec.image.as_ref().map_or("-", |c| c.image.as_str())
                ),
            })
        }
    }

    fn spec(image: Option<&str>, runs_on: &str) -> JobSpec {
        JobSpec {
            job_key: "build".to_owned(),
            image: image.map(|image| ContainerSpec {
                image: image.to_owned(),
                ..ContainerSpec::default()
            }),
            services: Vec::new(),
            workspace_source: None,
            labels: vec![runs_on.to_owned()],
        }
    }

    fn router(docker: Result<Arc<dyn Backend>, String>, fallback: Option<LabelKind>) -> Router {
        let labels = vec![
            Label {
                name: "linux".to_owned(),
                kind: LabelKind::Host,
            },
            Label {
                name: "debian".to_owned(),
                kind: LabelKind::Docker {
                    image: "debian:bookworm".to_owned(),
                },
            },
            Label {
                name: "pod".to_owned(),
                kind: LabelKind::Kubernetes {
                    image: "debian:bookworm".to_owned(),
                },
            },
        ];
        let backends = Backends {
            host: Arc::new(Named("host")),
            docker,
            vm: None,
            kubernetes: Err("no kubeconfig".to_owned()),
        };
        Router::new(labels, fallback, backends)
    }

    async fn reached(router: &Router, image: Option<&str>, runs_on: &str) -> String {
        match router
            .prepare(&spec(image, runs_on), &CancellationToken::new())
            .await
        {
            Ok(_) => panic!("the fakes refuse every job"),
            Err(error) => error.to_string(),
        }
    }

    fn docker() -> Result<Arc<dyn Backend>, String> {
        Ok(Arc::new(Named("docker")))
    }

    #[tokio::test]
    async fn a_container_job_on_a_host_label_runs_in_docker() {
        let with_docker = router(docker(), None);
        assert!(reached(&with_docker, None, "linux").await.contains("host"));
        assert!(
            reached(&with_docker, Some("debian"), "linux")
                .await
                .contains("docker")
        );
        let missing = reached(
            &router(Err("no engine".to_owned()), None),
            Some("debian"),
            "linux",
        )
        .await;
        for expected in ["`build`", "`linux`", "debian", "no engine"] {
            assert!(missing.contains(expected), "{expected:?} in {missing}");
        }
    }

    #[tokio::test]
    async fn a_kubernetes_label_runs_on_its_backend_or_says_why_there_is_none() {
        let mut with_cluster = router(docker(), None);
        with_cluster.backends.kubernetes = Ok(Arc::new(Named("kubernetes")));
        assert!(
            reached(&with_cluster, None, "pod")
                .await
                .contains("kubernetes")
        );
        assert!(with_cluster.check(&["pod".to_owned()]).is_ok());
        let without = router(docker(), None);
        let missing = reached(&without, None, "pod").await;
        for expected in ["`build`", "`pod`", "debian:bookworm", "no kubeconfig"] {
            assert!(missing.contains(expected), "{expected:?} in {missing}");
        }
        let refused = without
            .check(&["pod".to_owned()])
            .expect_err("no cluster, no kubernetes label");
        assert!(refused.contains("no kubeconfig"), "{refused}");
    }

    #[tokio::test]
    async fn labels_match_case_insensitively_and_unmatched_jobs_take_the_fallback() {
        let with_docker = router(docker(), None);
        assert!(
            reached(&with_docker, None, "Debian")
                .await
                .contains("docker")
        );
        let unmatched = reached(&with_docker, None, "windows").await;
        assert!(
            unmatched
                .contains("no label of this runner (linux, debian, pod) matches runs-on (windows)"),
            "{unmatched}"
        );
        assert!(with_docker.check(&["windows".to_owned()]).is_err());
        let local = router(docker(), Some(LabelKind::Host));
        assert!(reached(&local, None, "windows").await.contains("host"));
    }

    #[tokio::test]
    async fn a_docker_label_without_docker_says_so_before_and_at_prepare() {
        let without = router(Err("no engine".to_owned()), None);
        let before = without
            .check(&["debian".to_owned()])
            .expect_err("no Docker");
        let at = reached(&without, None, "debian").await;
        for message in [before, at] {
            assert!(
                message.contains(
                    "label `debian` runs jobs in the Docker image `debian:bookworm`, but Docker \
                     is not available to this runner: no engine"
                ),
                "{message}"
            );
        }
        assert!(without.check(&["linux".to_owned()]).is_ok());
    }

    #[tokio::test]
    async fn a_label_of_an_unknown_scheme_fails_its_jobs_and_never_runs_them_here() {
        let mut with_pool = router(docker(), None);
        let pool = runnel_config::Label::parse("pool:e57e18d4-1").expect("a label");
        assert_eq!(pool.name, "pool:e57e18d4-1", "the whole string, as v3.3");
        with_pool.labels.push(pool);
        let runs_on = ["pool:e57e18d4-1".to_owned()];
        let before = with_pool.check(&runs_on).expect_err("unknown scheme");
        let at = reached(&with_pool, None, "pool:e57e18d4-1").await;
        for message in [before, at] {
            for expected in ["`pool:e57e18d4-1`", "`e57e18d4-1`", KNOWN_SCHEMES] {
                assert!(message.contains(expected), "{expected:?} in {message}");
            }
            assert!(!message.contains("host image="), "{message}");
        }
        // The bare prefix is not a label of this runner.
        assert!(with_pool.check(&["pool".to_owned()]).is_err());
    }

    #[tokio::test]
    async fn an_unmatched_job_runs_in_the_default_image_when_the_daemon_has_one() {
        let default_image = LabelKind::Docker {
            image: "docker.gitea.com/runner-images:ubuntu-latest".to_owned(),
        };
        let with = router(docker(), Some(default_image.clone()));
        assert_eq!(
            reached(&with, None, "windows").await,
            "prepare: docker image=docker.gitea.com/runner-images:ubuntu-latest"
        );
        // The job's own `container:` still wins.
        assert!(
            reached(&with, Some("alpine"), "windows")
                .await
                .ends_with("docker image=alpine")
        );
        let without_docker = router(Err("no engine".to_owned()), Some(default_image));
        let refused = reached(&without_docker, None, "windows").await;
        assert!(
            refused.contains("runner-images:ubuntu-latest") && refused.contains("no engine"),
            "{refused}"
        );
        assert!(!refused.contains("host image="), "{refused}");
        let unset = reached(&router(docker(), None), None, "windows").await;
        assert!(unset.contains("runner.default_image is not set"), "{unset}");
    }
}
