//! Labels that tie a job's pod to the runner that made it, and the removal of pods whose runner
//! is gone.
//!
//! Every pod carries `app.kubernetes.io/managed-by: runnel` and:
//! - `runnel.owner`: who may judge it — the Gitea registration the runner runs as (`runner-ID-`
//!   and a hash of the instance URL; a runner restarted with the same `.runner` finds its
//!   predecessor's pods again whatever its host or pod name), or, without a registration (a
//!   local `runnel run`), `host-` and the host name;
//! - `runnel.session`: a token of this runner process, different at every start;
//! - how to tell whether the runner process still lives: in a pod that knows itself (the
//!   downward API's `RUNNEL_POD_NAMESPACE`, `RUNNEL_POD_NAME`, `RUNNEL_POD_UID`, as
//!   `packaging/k8s` sets them) `runnel.runner-namespace`, `runnel.runner-pod` and
//!   `runnel.runner-pod-uid`; elsewhere `runnel.host`, `runnel.pid` and `runnel.pid-start` (the
//!   start time from `/proc/<pid>/stat`, so a reused pid is not mistaken for the runner).
//!
//! At start a runner deletes the pods of its own owner whose runner is gone: a pod runner that
//! no longer exists or has another uid (a StatefulSet's replacement keeps the name), or is this
//! very pod with another session (the runner container restarted); a process runner of this
//! host whose pid no longer runs the same process. Pods of other owners, of process runners of
//! other hosts, and of runners whose state cannot be read (the pod lookup failed) are kept.
//!
//! Must not: delete pods without these labels, or pods whose runner may still live.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use sha2::{Digest, Sha256};

use super::error::KubeError;
use super::pod;
use crate::host::leftovers::process_start_time;

const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const LABEL_OWNER: &str = "runnel.owner";
const LABEL_SESSION: &str = "runnel.session";
const LABEL_HOST: &str = "runnel.host";
const LABEL_PID: &str = "runnel.pid";
const LABEL_PID_START: &str = "runnel.pid-start";
const LABEL_RUNNER_NAMESPACE: &str = "runnel.runner-namespace";
const LABEL_RUNNER_POD: &str = "runnel.runner-pod";
const LABEL_RUNNER_POD_UID: &str = "runnel.runner-pod-uid";

/// The Gitea registration a daemon runs as (from its `.runner`): what makes a restarted runner
/// the same owner. The UUID and token are credentials and never become labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerRegistration {
    /// The runner's id in Gitea.
    pub id: i64,
    /// The instance URL it registered with.
    pub address: String,
}

/// How the liveness of a runner process is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// A process of a host: it lives while `/proc/PID` is the same process.
    Process {
        host: String,
        pid: u32,
        start: Option<String>,
    },
    /// A runner pod: it lives while the pod of that name has that uid.
    Pod {
        namespace: String,
        name: String,
        uid: String,
    },
}

/// The labels of this runner process.
#[derive(Debug, Clone)]
pub(crate) struct RunnerLabels {
    owner: String,
    session: String,
    liveness: Liveness,
}

/// `text` as a label value: at most 63 characters of `[A-Za-z0-9-_.]`, starting and ending
/// with a letter or digit.
pub(crate) fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// The first 16 hex digits of the SHA-256 of `parts`.
fn short_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The owner label of a registration, or of a host without one.
pub(crate) fn owner_of(registration: Option<&RunnerRegistration>, host: &str) -> String {
    match registration {
        Some(registration) => format!(
            "runner-{}-{}",
            registration.id,
            short_hash(&[registration.address.trim_end_matches('/').as_bytes()])
        ),
        None => label_value(&format!("host-{host}")),
    }
}

impl RunnerLabels {
    /// This process's labels: its registration's owner, a fresh session, and its pod (from the
    /// downward API's variables) or its host and pid.
    pub(crate) fn of_this_process(registration: Option<&RunnerRegistration>) -> RunnerLabels {
        let pid = std::process::id();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host = label_value(host.trim());
        let start = process_start_time(pid);
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let liveness = match (
            var("RUNNEL_POD_NAMESPACE"),
            var("RUNNEL_POD_NAME"),
            var("RUNNEL_POD_UID"),
        ) {
            (Some(namespace), Some(name), Some(uid)) => Liveness::Pod {
                namespace: label_value(&namespace),
                name: label_value(&name),
                uid: label_value(&uid),
            },
            _ => Liveness::Process {
                host: host.clone(),
                pid,
                start: start.clone(),
            },
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let session = short_hash(&[
            host.as_bytes(),
            &pid.to_le_bytes(),
            start.unwrap_or_default().as_bytes(),
            &now.to_le_bytes(),
        ]);
        RunnerLabels {
            owner: owner_of(registration, &host),
            session,
            liveness,
        }
    }

    /// The labels of one job's pod.
    pub(crate) fn for_job(&self, job_key: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (MANAGED_BY.to_owned(), "runnel".to_owned()),
            (LABEL_OWNER.to_owned(), self.owner.clone()),
            (LABEL_SESSION.to_owned(), self.session.clone()),
            ("runnel.job".to_owned(), label_value(job_key)),
        ]);
        match &self.liveness {
            Liveness::Process { host, pid, start } => {
                labels.insert(LABEL_HOST.to_owned(), host.clone());
                labels.insert(LABEL_PID.to_owned(), pid.to_string());
                if let Some(start) = start {
                    labels.insert(LABEL_PID_START.to_owned(), start.clone());
                }
            }
            Liveness::Pod {
                namespace,
                name,
                uid,
            } => {
                labels.insert(LABEL_RUNNER_NAMESPACE.to_owned(), namespace.clone());
                labels.insert(LABEL_RUNNER_POD.to_owned(), name.clone());
                labels.insert(LABEL_RUNNER_POD_UID.to_owned(), uid.clone());
            }
        }
        labels
    }

    /// Selects the pods of this runner's owner.
    fn same_owner(&self) -> String {
        format!("{MANAGED_BY}=runnel,{LABEL_OWNER}={}", self.owner)
    }
}

/// How the runner of a found pod said it could be checked, from its labels.
fn liveness_of(labels: &BTreeMap<String, String>) -> Option<Liveness> {
    if let (Some(namespace), Some(name), Some(uid)) = (
        labels.get(LABEL_RUNNER_NAMESPACE),
        labels.get(LABEL_RUNNER_POD),
        labels.get(LABEL_RUNNER_POD_UID),
    ) {
        return Some(Liveness::Pod {
            namespace: namespace.clone(),
            name: name.clone(),
            uid: uid.clone(),
        });
    }
    Some(Liveness::Process {
        host: labels.get(LABEL_HOST)?.clone(),
        pid: labels.get(LABEL_PID)?.parse().ok()?,
        start: labels.get(LABEL_PID_START).cloned(),
    })
}

/// What the cluster says of a runner pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunnerPod {
    /// It exists, with this uid.
    Exists(String),
    /// There is no pod of that name.
    Missing,
    /// It could not be asked (refused, unreachable): its runner is taken to live.
    Unknown,
}

/// What [`runner_gone`] needs to know besides the labels.
pub(crate) trait Facts {
    /// The start time of process `pid` of this host, `None` when none runs.
    fn process_start(&self, pid: u32) -> Option<String>;
    /// The runner pod `namespace/name`, as looked up before judging.
    fn runner_pod(&self, namespace: &str, name: &str) -> RunnerPod;
}

/// Whether the runner that labelled a pod (of this runner's owner) is gone.
pub(crate) fn runner_gone(
    labels: &BTreeMap<String, String>,
    me: &RunnerLabels,
    facts: &impl Facts,
) -> bool {
    if labels.get(LABEL_SESSION) == Some(&me.session) {
        return false;
    }
    let Some(theirs) = liveness_of(labels) else {
        return false;
    };
    match theirs {
        Liveness::Process { host, pid, start } => {
            let my_host = match &me.liveness {
                Liveness::Process { host, .. } => host,
                Liveness::Pod { name, .. } => name,
            };
            if &host != my_host {
                return false;
            }
            match (facts.process_start(pid), start) {
                (None, _) => true,
                (Some(now), Some(then)) => now != then,
                (Some(_), None) => false,
            }
        }
        Liveness::Pod {
            namespace,
            name,
            uid,
        } => {
            if let Liveness::Pod {
                namespace: my_namespace,
                name: my_name,
                uid: my_uid,
            } = &me.liveness
                && (my_namespace, my_name, my_uid) == (&namespace, &name, &uid)
            {
                // This pod, another session: the runner container restarted; one runner
                // process runs per pod.
                return true;
            }
            match facts.runner_pod(&namespace, &name) {
                RunnerPod::Exists(now) => now != uid,
                RunnerPod::Missing => true,
                RunnerPod::Unknown => false,
            }
        }
    }
}

/// The facts of this host and cluster, runner pods looked up once each.
struct Looked {
    pods: BTreeMap<(String, String), RunnerPod>,
}

impl Facts for Looked {
    fn process_start(&self, pid: u32) -> Option<String> {
        process_start_time(pid)
    }

    fn runner_pod(&self, namespace: &str, name: &str) -> RunnerPod {
        self.pods
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or(RunnerPod::Unknown)
    }
}

/// Deletes the pods of this runner's owner whose runner is gone; returns their names.
pub(crate) async fn cleanup(
    pods: &Api<Pod>,
    namespace: &str,
    labels: &RunnerLabels,
) -> Result<Vec<String>, KubeError> {
    let list = pods
        .list(&ListParams::default().labels(&labels.same_owner()))
        .await
        .map_err(KubeError::api("list", "pods", namespace))?;
    let runner_pods: BTreeSet<(String, String)> = list
        .iter()
        .filter_map(
            |found| match liveness_of(found.metadata.labels.as_ref()?)? {
                Liveness::Pod {
                    namespace, name, ..
                } => Some((namespace, name)),
                Liveness::Process { .. } => None,
            },
        )
        .collect();
    let mut looked = Looked {
        pods: BTreeMap::new(),
    };
    for (runner_namespace, name) in runner_pods {
        let api: Api<Pod> = Api::namespaced(pods.clone().into_client(), &runner_namespace);
        let state = match api.get_opt(&name).await {
            Ok(Some(found)) => RunnerPod::Exists(found.metadata.uid.unwrap_or_default()),
            Ok(None) => RunnerPod::Missing,
            Err(error) => {
                let error = KubeError::api("get", "pods", &runner_namespace)(error);
                tracing::warn!(%error, pod = name, "cannot tell whether a runner pod lives; its job pods are kept");
                RunnerPod::Unknown
            }
        };
        looked.pods.insert((runner_namespace, name), state);
    }
    let mut removed = Vec::new();
    for found in list {
        let Some(name) = found.metadata.name.clone() else {
            continue;
        };
        let Some(pod_labels) = &found.metadata.labels else {
            continue;
        };
        if runner_gone(pod_labels, labels, &looked) {
            pod::delete(pods, namespace, &name).await?;
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
