//! The Kubernetes backend's errors: each names the API verb and resource, or the pod and what
//! kept it from running, and keeps the client's error as its source.
//!
//! Must not: decide what to do about an error; `pod`, `exec` and `leftovers` do.

use std::time::Duration;

use runnel_engine::backend::BackendError;

/// What went wrong talking to the cluster or running a job's pod.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No client configuration (kubeconfig or in-cluster) could be loaded.
    #[error("cannot load the Kubernetes client configuration from {from}: {source}")]
    Config {
        from: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No source of a client configuration applies (`client`'s order).
    #[error(
        "no Kubernetes client configuration: `kubernetes.kubeconfig` is not set in config.yaml, \
         KUBECONFIG is not set, ~/.kube/config does not exist, and the runner is not in a pod \
         (KUBERNETES_SERVICE_HOST is not set); name a kubeconfig or run the runner in the cluster"
    )]
    NoConfig,
    /// RBAC (or another authorizer) refused a call.
    #[error(
        "the cluster refused to {verb} {resource} in namespace `{namespace}`: {message} (the \
         runner's account needs `{verb}` on `{resource}` there)"
    )]
    Forbidden {
        /// The verb and resource the authorizer names in its refusal (a WebSocket exec is
        /// authorised as `get`), else the call's.
        verb: String,
        resource: String,
        namespace: String,
        message: String,
        #[source]
        source: kube::Error,
    },
    /// Any other failed API call.
    #[error("{verb} {resource} in namespace `{namespace}`: {source}")]
    Api {
        verb: &'static str,
        resource: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    /// The scheduler placed the pod nowhere within the start timeout.
    #[error("pod `{pod}` cannot be scheduled within {waited:?}: {reason}")]
    Unschedulable {
        pod: String,
        waited: Duration,
        reason: String,
    },
    /// The job image cannot be pulled or is not on the node.
    #[error("pod `{pod}`: image `{image}` cannot be used ({reason}): {message}")]
    Image {
        pod: String,
        image: String,
        reason: String,
        message: String,
    },
    /// The pod did not reach `Running` in time for another reason.
    #[error("pod `{pod}` did not start within {waited:?}: {last}")]
    StartTimeout {
        pod: String,
        waited: Duration,
        last: String,
    },
    /// The pod ended, or its container did, before or while the job ran (evicted, node lost,
    /// deleted by someone else).
    #[error("pod `{pod}` is no longer running: {reason}")]
    PodGone { pod: String, reason: String },
    /// An exec stream broke.
    #[error("exec in pod `{pod}`: {source}")]
    ExecStream {
        pod: String,
        #[source]
        source: std::io::Error,
    },
    /// The exec ended without an exit code the API could name.
    #[error("exec in pod `{pod}`: {message}")]
    Exec { pod: String, message: String },
    /// A file the engine reads or writes could not be moved.
    #[error("{operation} `{path}` in pod `{pod}`: {message}")]
    File {
        operation: &'static str,
        path: String,
        pod: String,
        message: String,
    },
    /// A service the workflow asks for cannot be a container of the pod as written.
    #[error("service `{service}`: {problem}")]
    Service { service: String, problem: String },
    /// A service did not become ready: it exited, failed its health check, or took too long.
    #[error("pod `{pod}`: service `{service}` ({image}) {problem}\nlast lines of its log:\n{logs}")]
    ServiceNotReady {
        pod: String,
        service: String,
        image: String,
        problem: String,
        logs: String,
    },
    /// A step container (an ephemeral container of the pod) could not run its program.
    #[error("pod `{pod}`: step container `{container}` ({image}) {problem}")]
    StepContainer {
        pod: String,
        container: String,
        image: String,
        problem: String,
    },
    /// The job asks for something this backend does not do yet.
    #[error("{0}")]
    Unsupported(String),
}

/// The verb of an RBAC refusal: `… cannot get resource "pods/exec" …`.
fn refused_verb(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once(" cannot ")?;
    let (verb, _) = rest.split_once(" resource \"")?;
    (!verb.is_empty() && verb.chars().all(|c| c.is_ascii_lowercase())).then_some(verb)
}

/// The resource of an RBAC refusal: `… cannot get resource "pods/exec" …`.
fn refused_resource(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once(" cannot ")?;
    let (_, rest) = rest.split_once(" resource \"")?;
    let (resource, _) = rest.split_once('"')?;
    (!resource.is_empty()).then_some(resource)
}

impl KubeError {
    /// An API error, as `Forbidden` when the authorizer refused it.
    pub(crate) fn api(
        verb: &'static str,
        resource: &'static str,
        namespace: &str,
    ) -> impl FnOnce(kube::Error) -> KubeError {
        let namespace = namespace.to_owned();
        move |source| match &source {
            kube::Error::Api(status) if status.is_forbidden() => KubeError::Forbidden {
                verb: refused_verb(&status.message).unwrap_or(verb).to_owned(),
                resource: refused_resource(&status.message)
                    .unwrap_or(resource)
                    .to_owned(),
                namespace,
                message: status.message.clone(),
                source,
            },
            _ => KubeError::Api {
                verb,
                resource,
                namespace,
                source,
            },
        }
    }

    /// The API answered 404.
    pub(crate) fn is_not_found(error: &kube::Error) -> bool {
        matches!(error, kube::Error::Api(status) if status.is_not_found())
    }

    /// As a [`BackendError`] for the operation `operation`, this error kept as its source.
    pub(crate) fn into_backend(self, operation: &str) -> BackendError {
        BackendError::Backend {
            operation: operation.to_owned(),
            source: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_verb_the_authorizer_checked() {
        let message = "pods \"runnel-7-1-zjwcl\" is forbidden: User \"system:serviceaccount:ci:runnel\" \
                       cannot get resource \"pods/exec\" in API group \"\" in the namespace \"jobs\"";
        assert_eq!(refused_verb(message), Some("get"));
        assert_eq!(refused_resource(message), Some("pods/exec"));
        assert_eq!(refused_verb("forbidden: something else"), None);
        assert_eq!(refused_resource("forbidden: something else"), None);
    }
}
