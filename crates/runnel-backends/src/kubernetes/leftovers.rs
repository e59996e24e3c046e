//! Labels that tie a job's pod to the runner process that made it, and the removal of pods whose
//! runner is gone.
//!
//! Every pod carries `app.kubernetes.io/managed-by: runnel`, `runnel.host` (this machine's
//! host name, label-safe), `runnel.pid` and `runnel.pid-start` (the start time from
//! `/proc/<pid>/stat`, so a reused pid is not mistaken for the runner). At start a runner
//! deletes the pods of its own host whose runner process no longer runs; pods of other hosts
//! (other runners sharing the namespace) are never judged from here.
//!
//! Must not: delete pods without these labels, or pods of another host.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use super::error::KubeError;
use super::pod;
use crate::host::leftovers::process_start_time;

const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const LABEL_HOST: &str = "runnel.host";
const LABEL_PID: &str = "runnel.pid";
const LABEL_PID_START: &str = "runnel.pid-start";

/// The labels of this runner process.
#[derive(Debug, Clone)]
pub(crate) struct RunnerLabels {
    host: String,
    pid: u32,
    start: Option<String>,
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

impl RunnerLabels {
    pub(crate) fn of_this_process() -> RunnerLabels {
        let pid = std::process::id();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        RunnerLabels {
            host: label_value(host.trim()),
            pid,
            start: process_start_time(pid),
        }
    }

    /// The labels of one job's pod.
    pub(crate) fn for_job(&self, job_key: &str) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (MANAGED_BY.to_owned(), "runnel".to_owned()),
            (LABEL_HOST.to_owned(), self.host.clone()),
            (LABEL_PID.to_owned(), self.pid.to_string()),
            ("runnel.job".to_owned(), label_value(job_key)),
        ]);
        if let Some(start) = &self.start {
            labels.insert(LABEL_PID_START.to_owned(), start.clone());
        }
        labels
    }

    /// Selects the pods of runners on this host.
    fn this_host(&self) -> String {
        format!("{MANAGED_BY}=runnel,{LABEL_HOST}={},{LABEL_PID}", self.host)
    }
}

/// Whether the runner that labelled a pod no longer runs.
fn runner_gone(labels: &BTreeMap<String, String>) -> bool {
    let Some(pid) = labels.get(LABEL_PID).and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    match (process_start_time(pid), labels.get(LABEL_PID_START)) {
        (None, _) => true,
        (Some(now), Some(then)) => &now != then,
        (Some(_), None) => false,
    }
}

/// Deletes the pods of dead runners of this host; returns their names.
pub(crate) async fn cleanup(
    pods: &Api<Pod>,
    namespace: &str,
    labels: &RunnerLabels,
) -> Result<Vec<String>, KubeError> {
    let list = pods
        .list(&ListParams::default().labels(&labels.this_host()))
        .await
        .map_err(KubeError::api("list", "pods", namespace))?;
    let mut removed = Vec::new();
    for found in list {
        let Some(name) = found.metadata.name.clone() else {
            continue;
        };
        let Some(pod_labels) = &found.metadata.labels else {
            continue;
        };
        if runner_gone(pod_labels) {
            pod::delete(pods, namespace, &name).await?;
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("build (linux, 1)"), "build--linux--1");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn a_live_runner_is_kept_and_a_dead_one_is_not() {
        let me = RunnerLabels::of_this_process().for_job("j");
        assert!(!runner_gone(&me));
        let mut other = me.clone();
        other.insert(LABEL_PID_START.to_owned(), "1".to_owned());
        assert!(runner_gone(&other));
    }
}
