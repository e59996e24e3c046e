//! A job's pod: its manifest, its creation and the wait until its job container runs (or a
//! clear reason why it will not: the scheduler's message, an image that cannot be had), and its
//! deletion.
//!
//! The pod: a container `job` of the job's image, kept alive by a `sleep` loop (steps come
//! through exec), and the services' containers (`services`); `/__w` (workspace, temp, tool
//! cache) and `HOME` are `emptyDir` volumes; no service links; `restartPolicy: Never`. From
//! the config: the job container's resources (and what the job's `container:` asks:
//! `job_container`), the node selector, tolerations, image pull
//! secrets and service account (its token mounted only when the config says so). Labels tie it to this
//! runner (see `leftovers`).
//!
//! Must not: run steps (`exec` does).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, LocalObjectReference, Pod, PodSpec, ResourceRequirements,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use super::KubernetesConfig;
use super::error::KubeError;
use super::exec::JOB_CONTAINER;
use super::job_container::JobContainer;
use super::services::{self, ServicePlan, ServiceState};

/// The job's work root: workspace, temp and tool cache are under it.
pub(crate) const WORK_ROOT: &str = "/__w";
pub(crate) const WORKSPACE: &str = "/__w/workspace";
pub(crate) const TEMP: &str = "/__w/_temp";
pub(crate) const TOOL_CACHE: &str = "/__w/_tool";
/// Pid files of running steps (see `exec`).
pub(crate) const EXEC_DIR: &str = "/__w/_runnel";
pub(crate) const HOME: &str = "/github/home";

/// Keeps the job container alive, and lets it end at once on SIGTERM.
const KEEP_ALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// The pod for one job.
pub(crate) fn manifest(
    config: &KubernetesConfig,
    name_prefix: &str,
    image: &str,
    job: &JobContainer,
    labels: BTreeMap<String, String>,
    job_key: &str,
    services: &ServicePlan,
) -> Pod {
    let volume = |name: &str| Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    };
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name_prefix}-")),
            namespace: Some(config.namespace.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "runnel.job".to_owned(),
                job_key.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".to_owned()),
            automount_service_account_token: Some(config.automount_service_account_token),
            service_account_name: config.service_account.clone(),
            node_selector: (!config.node_selector.is_empty()).then(|| config.node_selector.clone()),
            tolerations: (!config.tolerations.is_empty()).then(|| {
                config
                    .tolerations
                    .iter()
                    .map(|t| {
                        let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
                        Toleration {
                            key: text(&t.key),
                            operator: text(&t.operator),
                            value: text(&t.value),
                            effect: text(&t.effect),
                            toleration_seconds: t.toleration_seconds,
                        }
                    })
                    .collect()
            }),
            image_pull_secrets: (!config.image_pull_secrets.is_empty()).then(|| {
                config
                    .image_pull_secrets
                    .iter()
                    .map(|name| LocalObjectReference { name: name.clone() })
                    .collect()
            }),
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(1),
            host_aliases: (!services.host_aliases.is_empty())
                .then(|| services.host_aliases.clone()),
            containers: std::iter::once(Container {
                name: JOB_CONTAINER.to_owned(),
                image: Some(image.to_owned()),
                image_pull_policy: config.pull_policy.clone(),
                command: Some(vec![
                    "sh".to_owned(),
                    "-c".to_owned(),
                    KEEP_ALIVE.to_owned(),
                ]),
                env: (!job.env.is_empty()).then(|| job.env.clone()),
                volume_mounts: Some(vec![mount("work", WORK_ROOT), mount("home", HOME)]),
                resources: job.resources_under(job_resources(config)),
                security_context: job.security_context.clone(),
                ..Container::default()
            })
            .chain(
                services
                    .services
                    .iter()
                    .map(|service| service.container.clone()),
            )
            .collect(),
            volumes: Some(vec![volume("work"), volume("home")]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    }
}

/// The job container's requests and limits from the config; `None` when it sets none.
fn job_resources(config: &KubernetesConfig) -> Option<ResourceRequirements> {
    let quantities = |map: &BTreeMap<String, String>| {
        (!map.is_empty()).then(|| {
            map.iter()
                .map(|(name, quantity)| (name.clone(), Quantity(quantity.clone())))
                .collect()
        })
    };
    let requests = quantities(&config.requests);
    let limits = quantities(&config.limits);
    (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    })
}

/// Creates `pod`; returns its name.
pub(crate) async fn create(
    pods: &Api<Pod>,
    namespace: &str,
    pod: &Pod,
) -> Result<String, KubeError> {
    let created = pods
        .create(&PostParams::default(), pod)
        .await
        .map_err(KubeError::api("create", "pods", namespace))?;
    created.metadata.name.ok_or_else(|| KubeError::PodGone {
        pod: "(unnamed)".to_owned(),
        reason: "the API server returned the created pod without a name".to_owned(),
    })
}

/// What a pod's status says about starting.
enum Progress {
    Running,
    Waiting(String),
    Failed(KubeError),
    /// Service number `.0` will not become ready: why.
    ServiceFailed(usize, String),
}

/// Reads a pod's status: the job container running and every service ready, still starting
/// (why), or never going to be.
fn progress(pod: &Pod, name: &str, image: &str, services: &ServicePlan) -> Progress {
    match job_progress(pod, name, image) {
        Progress::Running => {}
        other => return other,
    }
    for (index, service) in services.services.iter().enumerate() {
        match services::state(pod, service) {
            ServiceState::Ready => {}
            ServiceState::Waiting(why) => return Progress::Waiting(why),
            ServiceState::Failed(problem) => return Progress::ServiceFailed(index, problem),
            ServiceState::Image(reason, message) => {
                return Progress::Failed(KubeError::Image {
                    pod: name.to_owned(),
                    image: service.container.image.clone().unwrap_or_default(),
                    reason,
                    message: format!("(service `{}`) {message}", service.id),
                });
            }
        }
    }
    Progress::Running
}

/// Reads the job container's part of a pod's status.
fn job_progress(pod: &Pod, name: &str, image: &str) -> Progress {
    let Some(status) = &pod.status else {
        return Progress::Waiting("no status yet".to_owned());
    };
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if phase == "Failed" || phase == "Succeeded" {
        return Progress::Failed(KubeError::PodGone {
            pod: name.to_owned(),
            reason: format!(
                "phase {phase}{}",
                status
                    .message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        });
    }
    let job = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == JOB_CONTAINER);
    if let Some(state) = job.and_then(|c| c.state.as_ref()) {
        if state.running.is_some() {
            return Progress::Running;
        }
        if let Some(waiting) = &state.waiting {
            let reason = waiting.reason.clone().unwrap_or_default();
            let message = waiting.message.clone().unwrap_or_default();
            if is_image_failure(&reason) {
                return Progress::Failed(KubeError::Image {
                    pod: name.to_owned(),
                    image: image.to_owned(),
                    reason,
                    message,
                });
            }
            if matches!(
                reason.as_str(),
                "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError"
            ) {
                return Progress::Failed(KubeError::PodGone {
                    pod: name.to_owned(),
                    reason: format!("{reason}: {message}"),
                });
            }
            return Progress::Waiting(format!("container waiting: {reason} {message}"));
        }
        if let Some(terminated) = &state.terminated {
            return Progress::Failed(KubeError::PodGone {
                pod: name.to_owned(),
                reason: format!(
                    "the job container exited ({}, code {}): {}",
                    terminated.reason.as_deref().unwrap_or("?"),
                    terminated.exit_code,
                    terminated.message.as_deref().unwrap_or("")
                ),
            });
        }
    }
    let scheduled = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled");
    match scheduled {
        Some(condition) if condition.status == "False" => Progress::Waiting(format!(
            "unschedulable: {}",
            condition
                .message
                .as_deref()
                .or(condition.reason.as_deref())
                .unwrap_or("no reason given")
        )),
        _ => Progress::Waiting(format!("phase {phase}")),
    }
}

/// Waits until the pod's job container runs and its services are ready, and returns the pod
/// as it then is; fails at once when that will never be (image, configuration, a service
/// that exited), or after `timeout` with the last reason (the scheduler's, when
/// unscheduled; a service's, with its log).
pub(crate) async fn wait_running(
    pods: &Api<Pod>,
    namespace: &str,
    name: &str,
    image: &str,
    services: &ServicePlan,
    timeout: Duration,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Pod, KubeError> {
    let not_ready = async |index: usize, problem: String| {
        let service = &services.services[index];
        KubeError::ServiceNotReady {
            pod: name.to_owned(),
            service: service.id.clone(),
            image: service.container.image.clone().unwrap_or_default(),
            problem,
            logs: services::logs(pods, name, &service.container.name).await,
        }
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(25);
    loop {
        let pod = pods
            .get(name)
            .await
            .map_err(KubeError::api("get", "pods", namespace))?;
        let last = match progress(&pod, name, image, services) {
            Progress::Running => return Ok(pod),
            Progress::Failed(error) => return Err(error),
            Progress::ServiceFailed(index, problem) => return Err(not_ready(index, problem).await),
            Progress::Waiting(why) => why,
        };
        if started.elapsed() >= timeout {
            let waiting_service = services
                .services
                .iter()
                .position(|service| last.starts_with(&format!("service `{}`:", service.id)));
            if let Some(index) = waiting_service {
                let problem = format!("did not become ready within {timeout:?} ({last})");
                return Err(not_ready(index, problem).await);
            }
            return Err(match last.strip_prefix("unschedulable: ") {
                Some(reason) => KubeError::Unschedulable {
                    pod: name.to_owned(),
                    waited: timeout,
                    reason: reason.to_owned(),
                },
                None => KubeError::StartTimeout {
                    pod: name.to_owned(),
                    waited: timeout,
                    last,
                },
            });
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = cancel.cancelled() => {
                return Err(KubeError::PodGone {
                    pod: name.to_owned(),
                    reason: "the job was cancelled while its pod started".to_owned(),
                });
            }
        }
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Deletes the pod at once (no grace: its processes are the job's, and the job is over).
/// A pod that is gone already is fine.
pub(crate) async fn delete(pods: &Api<Pod>, namespace: &str, name: &str) -> Result<(), KubeError> {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::background()
    };
    match pods.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(error) if KubeError::is_not_found(&error) => Ok(()),
        Err(error) => Err(KubeError::api("delete", "pods", namespace)(error)),
    }
}

/// Why the pod `name` can no longer run the job's steps, read from the API: gone from it,
/// being deleted (by whom, when the API says: eviction, a lost node's taint, preemption), ended
/// (evicted by the kubelet, its node lost), or its job container ended. `None` while it runs,
/// and when the API cannot be asked (the caller's error stands then).
pub(crate) async fn lost(pods: &Api<Pod>, name: &str) -> Option<String> {
    match pods.get(name).await {
        Ok(pod) => lost_reason(&pod),
        Err(error) if KubeError::is_not_found(&error) => {
            Some("it was deleted (the API server no longer has it)".to_owned())
        }
        Err(error) => {
            tracing::debug!(pod = name, %error, "cannot read the pod's status");
            None
        }
    }
}

/// The part of [`lost`] that reads a pod as the API gave it.
pub(crate) fn lost_reason(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref();
    let with_message = |reason: &str, message: Option<&String>| match message {
        Some(message) if !message.is_empty() => format!("{reason}: {message}"),
        _ => reason.to_owned(),
    };
    // Who is ending it, when the API recorded that (Kubernetes 1.26+).
    let disruption = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
        })
        .map(|c| {
            with_message(
                c.reason.as_deref().unwrap_or("DisruptionTarget"),
                c.message.as_ref(),
            )
        });
    if pod.metadata.deletion_timestamp.is_some() {
        return Some(match disruption {
            Some(why) => format!("it is being deleted ({why})"),
            None => "it is being deleted".to_owned(),
        });
    }
    let status = status?;
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let reason = status.reason.as_deref();
    if phase == "Failed" || phase == "Succeeded" || reason == Some("NodeLost") {
        let why = match reason {
            Some("Evicted") => with_message("evicted by its node", status.message.as_ref()),
            Some("NodeLost") => with_message("its node was lost", status.message.as_ref()),
            Some(other) => with_message(other, status.message.as_ref()),
            None => with_message(&format!("phase {phase}"), status.message.as_ref()),
        };
        return Some(why);
    }
    if let Some(why) = disruption {
        return Some(why);
    }
    let job = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == JOB_CONTAINER)?;
    let terminated = job.state.as_ref()?.terminated.as_ref()?;
    Some(format!(
        "its job container ended ({}, exit code {}{})",
        terminated.reason.as_deref().unwrap_or("no reason given"),
        terminated.exit_code,
        terminated
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    ))
}

/// A container's waiting reason that says its image cannot be had (never pulled, a bad name,
/// a failed pull): waiting longer will not help.
pub(super) fn is_image_failure(reason: &str) -> bool {
    matches!(
        reason,
        "ErrImageNeverPull" | "InvalidImageName" | "ImagePullBackOff" | "ErrImagePull"
    )
}

#[cfg(test)]
mod tests {
    use super::super::PodToleration;
    use super::*;

    #[test]
    fn a_lost_pod_says_why_from_its_status() {
        let cases: [(serde_json::Value, Option<&str>); 7] = [
            (
                serde_json::json!({"status": {"phase": "Running", "containerStatuses": [
                    {"name": "job", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                     "state": {"running": {}}}]}}),
                None,
            ),
            (
                serde_json::json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
                    "status": {"phase": "Running"}}),
                Some("it is being deleted"),
            ),
            (
                serde_json::json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
                    "status": {"phase": "Running", "conditions": [{"type": "DisruptionTarget",
                    "status": "True", "reason": "DeletionByTaintManager",
                    "message": "Taint manager: deleting due to NoExecute taint"}]}}),
                Some(
                    "it is being deleted (DeletionByTaintManager: Taint manager: deleting due \
                     to NoExecute taint)",
                ),
            ),
            (
                serde_json::json!({"status": {"phase": "Failed", "reason": "Evicted",
                    "message": "The node was low on resource: memory."}}),
                Some("evicted by its node: The node was low on resource: memory."),
            ),
            (
                serde_json::json!({"status": {"phase": "Running", "reason": "NodeLost",
                    "message": "Node n which was running pod p is unresponsive"}}),
                Some("its node was lost: Node n which was running pod p is unresponsive"),
            ),
            (
                serde_json::json!({"status": {"phase": "Running", "containerStatuses": [
                    {"name": "job", "image": "i", "imageID": "", "ready": false,
                     "restartCount": 0, "state": {"terminated": {"exitCode": 137,
                     "reason": "OOMKilled"}}}]}}),
                Some("its job container ended (OOMKilled, exit code 137)"),
            ),
            (
                serde_json::json!({"status": {"phase": "Succeeded"}}),
                Some("phase Succeeded"),
            ),
        ];
        for (json, expected) in cases {
            let pod: Pod = serde_json::from_value(json.clone()).expect("a pod");
            assert_eq!(lost_reason(&pod).as_deref(), expected, "{json}");
        }
    }

    #[test]
    fn the_config_shapes_the_job_pod() {
        let config = KubernetesConfig {
            namespace: "jobs".to_owned(),
            requests: BTreeMap::from([("cpu".to_owned(), "500m".to_owned())]),
            limits: BTreeMap::from([("memory".to_owned(), "1Gi".to_owned())]),
            node_selector: BTreeMap::from([("disk".to_owned(), "ssd".to_owned())]),
            tolerations: vec![PodToleration {
                key: "dedicated".to_owned(),
                operator: "Exists".to_owned(),
                effect: "NoSchedule".to_owned(),
                ..PodToleration::default()
            }],
            image_pull_secrets: vec!["registry-login".to_owned()],
            service_account: Some("ci-jobs".to_owned()),
            ..KubernetesConfig::default()
        };
        let pod = manifest(
            &config,
            "runnel-1-1",
            "debian:12",
            &JobContainer::default(),
            BTreeMap::new(),
            "job",
            &ServicePlan::default(),
        );
        let spec = pod.spec.expect("a pod spec");
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.service_account_name.as_deref(), Some("ci-jobs"));
        assert_eq!(spec.node_selector.expect("node selector")["disk"], "ssd");
        let toleration = &spec.tolerations.expect("tolerations")[0];
        assert_eq!(toleration.key.as_deref(), Some("dedicated"));
        assert_eq!(toleration.operator.as_deref(), Some("Exists"));
        assert_eq!(toleration.value, None);
        assert_eq!(
            spec.image_pull_secrets.expect("pull secrets")[0].name,
            "registry-login"
        );
        assert_eq!(spec.host_aliases, None);
        assert_eq!(spec.containers.len(), 1);
        let resources = spec.containers[0].resources.clone().expect("resources");
        assert_eq!(
            resources.requests.expect("requests")["cpu"],
            Quantity("500m".to_owned())
        );
        assert_eq!(
            resources.limits.expect("limits")["memory"],
            Quantity("1Gi".to_owned())
        );

        // Nothing configured: nothing set beyond the runner's own defaults.
        let plain = manifest(
            &KubernetesConfig::default(),
            "runnel-1-2",
            "debian:12",
            &JobContainer::default(),
            BTreeMap::new(),
            "job",
            &ServicePlan::default(),
        )
        .spec
        .expect("a pod spec");
        assert_eq!(plain.service_account_name, None);
        assert_eq!(plain.node_selector, None);
        assert_eq!(plain.tolerations, None);
        assert_eq!(plain.image_pull_secrets, None);
        assert_eq!(plain.containers[0].resources, None);
    }
}
