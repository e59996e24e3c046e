//! The Kubernetes backend as `runnel doctor` connects to it: the client configuration and job
//! namespace of config.yaml's `kubernetes:` section, as the daemon's would be, and nothing
//! asked of the cluster or removed from it (no leftover cleanup).
//!
//! Must not: shape pods (`Assembly::start` makes the backend jobs run on).

use runnel_backends::kubernetes::{KubernetesBackend, KubernetesConfig};
use runnel_config::Config;
use runnel_engine::backend::BackendError;

/// Connects as the daemon would (the same kubeconfig, context, in-cluster choice and
/// namespace); for checks only.
pub async fn connect_for_checks(config: &Config) -> Result<KubernetesBackend, BackendError> {
    let section = &config.kubernetes;
    KubernetesBackend::connect(KubernetesConfig {
        kubeconfig: section.kubeconfig.clone(),
        context: section.context.clone(),
        in_cluster: section.in_cluster,
        namespace_override: section.namespace.clone(),
        ..KubernetesConfig::default()
    })
    .await
}
