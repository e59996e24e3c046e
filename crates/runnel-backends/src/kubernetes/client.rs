//! Where the backend's client configuration comes from, and loading it.
//!
//! The order, first that applies: `kubernetes.in_cluster` (the pod's service account, nothing
//! else); `kubernetes.kubeconfig` of config.yaml; `KUBECONFIG`; `~/.kube/config`; the pod's
//! service account when the runner runs in a pod (`KUBERNETES_SERVICE_HOST` is set). A
//! kubeconfig that is named but broken is an error, not a reason to try the next source. When
//! none applies the error lists what was looked at. `kubernetes.context` picks the context of
//! whichever kubeconfig is used.
//!
//! Must not: talk to the cluster; `connect` only loads what the client needs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::error::KubeError;

/// The variable Kubernetes sets in every container; its presence means "in a pod".
const SERVICE_HOST_ENV: &str = "KUBERNETES_SERVICE_HOST";

/// Where the client configuration is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The pod's service account (token, CA and namespace under
    /// `/var/run/secrets/kubernetes.io/serviceaccount`).
    InCluster,
    /// A kubeconfig file, and which setting named it.
    File {
        path: PathBuf,
        named_by: &'static str,
    },
    /// `KUBECONFIG` (one file or a `:`-separated list, merged as kubectl merges them).
    KubeconfigEnv,
    /// Nothing applies.
    Nothing,
}

/// What [`choose`] looks at, gathered from the process (or given by a test).
#[derive(Debug, Clone, Default)]
pub(crate) struct Surroundings {
    pub in_cluster_flag: bool,
    pub configured: Option<PathBuf>,
    pub kubeconfig_env: Option<OsString>,
    /// `~/.kube/config` when it exists.
    pub home_config: Option<PathBuf>,
    pub in_pod: bool,
}

impl Surroundings {
    pub(crate) fn of_this_process(in_cluster_flag: bool, configured: Option<PathBuf>) -> Self {
        let home_config = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(|home| Path::new(&home).join(".kube/config"))
            .filter(|path| path.is_file());
        Surroundings {
            in_cluster_flag,
            configured,
            kubeconfig_env: std::env::var_os("KUBECONFIG"),
            home_config,
            in_pod: std::env::var_os(SERVICE_HOST_ENV).is_some_and(|host| !host.is_empty()),
        }
    }
}

/// The source the client configuration is read from (the order in the module's doc).
pub(crate) fn choose(around: &Surroundings) -> Source {
    if around.in_cluster_flag {
        return Source::InCluster;
    }
    if let Some(path) = around
        .configured
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
    {
        return Source::File {
            path,
            named_by: "kubernetes.kubeconfig",
        };
    }
    if around
        .kubeconfig_env
        .as_ref()
        .is_some_and(|v| !v.is_empty())
    {
        return Source::KubeconfigEnv;
    }
    if let Some(path) = around.home_config.clone() {
        return Source::File {
            path,
            named_by: "~/.kube/config",
        };
    }
    if around.in_pod {
        return Source::InCluster;
    }
    Source::Nothing
}

const IN_CLUSTER: &str = "the in-cluster service account (KUBERNETES_SERVICE_HOST, /var/run/secrets/kubernetes.io/serviceaccount)";

/// Loads the client configuration from `source`, with `context` of a kubeconfig.
pub(crate) async fn load(
    source: &Source,
    context: Option<String>,
) -> Result<kube::Config, KubeError> {
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    let config_error = |from: String| {
        move |source: Box<dyn std::error::Error + Send + Sync>| KubeError::Config { from, source }
    };
    match source {
        Source::InCluster => kube::Config::incluster()
            .map_err(|error| config_error(IN_CLUSTER.to_owned())(Box::new(error))),
        Source::File { path, named_by } => {
            let from = format!("{} ({named_by})", path.display());
            let file = Kubeconfig::read_from(path)
                .map_err(|error| config_error(from.clone())(Box::new(error)))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|error| config_error(from)(Box::new(error)))
        }
        Source::KubeconfigEnv => {
            let from = format!(
                "KUBECONFIG={}",
                std::env::var_os("KUBECONFIG")
                    .unwrap_or_default()
                    .to_string_lossy()
            );
            let file = Kubeconfig::from_env()
                .map_err(|error| config_error(from.clone())(Box::new(error)))?
                .ok_or_else(|| {
                    config_error(from.clone())("the variable is empty".to_owned().into())
                })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|error| config_error(from)(Box::new(error)))
        }
        Source::Nothing => Err(KubeError::NoConfig),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, named_by: &'static str) -> Source {
        Source::File {
            path: PathBuf::from(path),
            named_by,
        }
    }

    #[test]
    fn the_first_source_that_applies_is_used() {
        let all = Surroundings {
            in_cluster_flag: false,
            configured: Some("/etc/runnel/kubeconfig".into()),
            kubeconfig_env: Some("/tmp/k".into()),
            home_config: Some("/root/.kube/config".into()),
            in_pod: true,
        };
        assert_eq!(
            choose(&all),
            file("/etc/runnel/kubeconfig", "kubernetes.kubeconfig")
        );
        let flag = Surroundings {
            in_cluster_flag: true,
            ..all.clone()
        };
        assert_eq!(choose(&flag), Source::InCluster);
        let env = Surroundings {
            configured: None,
            ..all.clone()
        };
        assert_eq!(choose(&env), Source::KubeconfigEnv);
        let home = Surroundings {
            kubeconfig_env: Some(OsString::new()),
            ..env.clone()
        };
        assert_eq!(choose(&home), file("/root/.kube/config", "~/.kube/config"));
        let pod = Surroundings {
            home_config: None,
            configured: Some(PathBuf::new()),
            ..home.clone()
        };
        assert_eq!(choose(&pod), Source::InCluster);
        let nothing = Surroundings {
            in_pod: false,
            ..pod
        };
        assert_eq!(choose(&nothing), Source::Nothing);
    }

    #[tokio::test]
    async fn a_broken_or_missing_source_names_itself() {
        let missing = load(
            &file("/nonexistent/kubeconfig", "kubernetes.kubeconfig"),
            None,
        )
        .await
        .expect_err("a missing file");
        assert!(
            missing
                .to_string()
                .contains("/nonexistent/kubeconfig (kubernetes.kubeconfig)"),
            "{missing}"
        );
        let in_cluster = load(&Source::InCluster, None)
            .await
            .expect_err("not in a pod");
        assert!(
            in_cluster
                .to_string()
                .contains("in-cluster service account"),
            "{in_cluster}"
        );
        let nothing = load(&Source::Nothing, None).await.expect_err("nothing");
        let text = nothing.to_string();
        for named in [
            "kubernetes.kubeconfig",
            "KUBECONFIG",
            "~/.kube/config",
            "KUBERNETES_SERVICE_HOST",
        ] {
            assert!(text.contains(named), "{text}");
        }
    }
}
