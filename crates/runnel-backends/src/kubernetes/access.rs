//! What the runner's account may do on its cluster, asked of the cluster itself (for `runnel
//! doctor`): the API server's version (it answers), the job namespace (a pod created there
//! with `dryRun`, which nothing persists), and each verb and resource the backend needs there
//! (`SelfSubjectAccessReview`, which every authenticated account may ask).
//!
//! Must not: create anything for real, or decide how a finding is worded (the doctor does).

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};

use super::KubernetesBackend;
use super::error::KubeError;

/// What the backend asks of the job namespace: verb, resource, subresource.
pub(crate) const NEEDED: [(&str, &str, &str); 8] = [
    ("create", "pods", ""),
    ("get", "pods", ""),
    ("list", "pods", ""),
    ("delete", "pods", ""),
    ("create", "pods", "exec"),
    ("get", "pods", "exec"),
    ("get", "pods", "log"),
    ("patch", "pods", "ephemeralcontainers"),
];

/// One verb on one resource in the job namespace, as the authorizer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    /// `pods`, `pods/exec`, `pods/log`, `pods/ephemeralcontainers`.
    pub resource: String,
    pub allowed: bool,
    /// The authorizer's reason, when it gave one.
    pub reason: String,
}

/// Whether the job namespace is there, as a dry-run pod creation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceState {
    Exists,
    Missing,
    /// The dry run could not tell (refused, or failed otherwise): why.
    Unknown(String),
}

/// The cluster's answers.
#[derive(Debug, Clone)]
pub struct AccessReport {
    /// The API server's `gitVersion`.
    pub version: String,
    pub namespace: String,
    pub namespace_state: NamespaceState,
    pub permissions: Vec<Permission>,
}

impl KubernetesBackend {
    /// Asks the cluster what [`AccessReport`] holds; an error when the API server does not
    /// answer at all, or refuses the access reviews.
    pub async fn check_access(&self) -> Result<AccessReport, KubeError> {
        let namespace = self.config.namespace.clone();
        let client: Client = self.pods.clone().into();
        let version = client
            .apiserver_version()
            .await
            .map_err(KubeError::api("get", "version", &namespace))?
            .git_version;
        let namespace_state = dry_run_pod(&self.pods).await;
        let reviews: Api<SelfSubjectAccessReview> = Api::all(client);
        let mut permissions = Vec::new();
        for (verb, resource, subresource) in NEEDED {
            let review = SelfSubjectAccessReview {
                metadata: ObjectMeta::default(),
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(namespace.clone()),
                        verb: Some(verb.to_owned()),
                        resource: Some(resource.to_owned()),
                        subresource: (!subresource.is_empty()).then(|| subresource.to_owned()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                status: None,
            };
            let answer = reviews
                .create(&PostParams::default(), &review)
                .await
                .map_err(KubeError::api(
                    "create",
                    "selfsubjectaccessreviews",
                    &namespace,
                ))?;
            let status = answer.status.unwrap_or_default();
            permissions.push(Permission {
                verb,
                resource: if subresource.is_empty() {
                    resource.to_owned()
                } else {
                    format!("{resource}/{subresource}")
                },
                allowed: status.allowed && !status.denied.unwrap_or(false),
                reason: status.reason.unwrap_or_default(),
            });
        }
        Ok(AccessReport {
            version,
            namespace,
            namespace_state,
            permissions,
        })
    }
}

/// Creates a pod in the namespace with `dryRun`: a missing namespace answers 404.
async fn dry_run_pod(pods: &Api<Pod>) -> NamespaceState {
    let pod = Pod {
        metadata: ObjectMeta {
            generate_name: Some("runnel-doctor-".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "probe".to_owned(),
                image: Some("runnel-doctor-probe".to_owned()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    };
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match pods.create(&params, &pod).await {
        Ok(_) => NamespaceState::Exists,
        Err(error) if KubeError::is_not_found(&error) => NamespaceState::Missing,
        Err(kube::Error::Api(status)) => NamespaceState::Unknown(status.message),
        Err(error) => NamespaceState::Unknown(error.to_string()),
    }
}
