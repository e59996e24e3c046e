//! A job's `services:` as sidecar containers of its pod: the containers planned from the
//! workflow (image, env, ports, `entrypoint:`/`command:`, the options that have a meaning in a
//! pod), the names the job reaches them by, and what their status says about being ready.
//!
//! Semantics as the Docker backend's: the pod shares one network namespace, so a service
//! answers on `localhost:PORT` and on its id (a `hostAliases` entry to 127.0.0.1); a service
//! with a health check (`--health-cmd` and friends in `options:`) is ready once the check
//! passes, one without once it runs; one that exits, or fails its check `--health-retries`
//! times after its start period, fails the job with the tail of its log. The health check is a
//! `startupProbe` (the kubelet runs it; its first run after one interval, as Docker's), so a
//! failing one ends the container (`restartPolicy: Never`). Docker's image `HEALTHCHECK` is
//! not seen by Kubernetes: only `options:` health checks are waited for.
//!
//! Must not: create or watch pods (`pod` does); talk to the API except for a service's log.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, ExecAction, HostAlias, Pod, Probe,
    ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::LogParams;
use runnel_engine::backend::ServiceSpec;

use super::error::KubeError;
use crate::docker::options::{self, CheckedOptions, ContainerRole};

/// Docker's health check defaults (`--health-cmd` alone): interval and timeout 30 s, 3 retries.
const DEFAULT_HEALTH_SECONDS: i64 = 30;
const DEFAULT_HEALTH_RETRIES: i64 = 3;
/// Lines of a failed service's log put into the error.
const LOG_LINES: i64 = 50;

/// A service as a container of the job's pod.
#[derive(Debug, Clone)]
pub(crate) struct PlannedService {
    /// The service id as the workflow wrote it.
    pub(crate) id: String,
    /// The pod's container for it.
    pub(crate) container: Container,
    /// Whether it is ready only once its health check passes.
    pub(crate) has_health_check: bool,
    /// The job context's `job.services.<id>.ports`: container port → the port the job
    /// reaches it on (the same: the pod shares one network namespace).
    pub(crate) ports: BTreeMap<String, String>,
}

/// The job's services planned: their containers and the host names that resolve to them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServicePlan {
    pub(crate) services: Vec<PlannedService>,
    pub(crate) host_aliases: Vec<HostAlias>,
}

/// A service the pod cannot run as written (becomes [`KubeError::Service`]).
#[derive(Debug)]
pub(crate) struct Refused {
    service: String,
    problem: String,
}

impl From<Refused> for KubeError {
    fn from(refused: Refused) -> KubeError {
        KubeError::Service {
            service: refused.service,
            problem: refused.problem,
        }
    }
}

/// Plans the sidecars of `specs`; refuses what a pod cannot do (naming the service and the
/// option), two services on one port, and credentials when the runner has no pull secrets
/// (`pull_secrets_configured`: the node pulls with the pod's `imagePullSecrets`).
pub(crate) fn plan(
    specs: &[ServiceSpec],
    pull_policy: Option<&str>,
    pull_secrets_configured: bool,
) -> Result<ServicePlan, Refused> {
    let mut plan = ServicePlan::default();
    let mut names = Vec::new();
    let mut port_owner: BTreeMap<String, String> = BTreeMap::new();
    for (index, spec) in specs.iter().enumerate() {
        let refuse = |problem: String| Refused {
            service: spec.id.clone(),
            problem,
        };
        let container = &spec.container;
        if !container.volumes.is_empty() {
            return Err(refuse(
                "`volumes:` are not available on the kubernetes backend".to_owned(),
            ));
        }
        if container.credentials.is_some() && !pull_secrets_configured {
            return Err(refuse(
                "`credentials:` are not used on the kubernetes backend: the node pulls with \
                 the pod's image pull secrets (kubernetes.image_pull_secrets in the runner's \
                 config)"
                    .to_owned(),
            ));
        }
        let checked = options::check_options(&container.options, ContainerRole::Service, false)
            .and_then(|checked| {
                options::with_service_command(
                    checked,
                    spec.entrypoint.as_deref(),
                    spec.command.as_deref(),
                )
            })
            .map_err(|error| refuse(error.to_string()))?;
        refuse_unmapped(&checked).map_err(refuse)?;

        let mut ports = Vec::new();
        let mut context_ports = BTreeMap::new();
        for written in &container.ports {
            let mapping =
                options::parse_port(written).map_err(|error| refuse(error.to_string()))?;
            let (number, protocol) = mapping
                .container_port
                .split_once('/')
                .unwrap_or((mapping.container_port.as_str(), "tcp"));
            // A host port has no meaning here: the job reaches the service on its own port
            // (the pod shares one network namespace).
            if let Some(first) = port_owner.insert(mapping.container_port.clone(), spec.id.clone())
                && first != spec.id
            {
                return Err(Refused {
                    service: spec.id.clone(),
                    problem: format!(
                        "port {} is also service `{first}`'s: services share the pod's network",
                        mapping.container_port
                    ),
                });
            }
            let port: i32 = number
                .parse()
                .map_err(|_| refuse(format!("port `{written}`")))?;
            ports.push(ContainerPort {
                container_port: port,
                protocol: Some(protocol.to_uppercase()),
                ..ContainerPort::default()
            });
            context_ports.insert(number.to_owned(), number.to_owned());
        }

        let env = container_env(&container.env, &checked.env);
        let probe = health_probe(&checked);
        let name = container_name(&spec.id, index, &names);
        names.push(name.clone());
        let security_context = security_context(&checked).map_err(refuse)?;
        plan.services.push(PlannedService {
            id: spec.id.clone(),
            has_health_check: probe.is_some(),
            container: Container {
                name,
                image: Some(container.image.clone()),
                image_pull_policy: pull_policy.map(str::to_owned),
                command: checked.entrypoint.clone(),
                args: checked.cmd.clone(),
                env: (!env.is_empty()).then_some(env),
                ports: (!ports.is_empty()).then_some(ports),
                working_dir: checked.workdir.clone(),
                startup_probe: probe,
                resources: resources(&checked),
                security_context,
                ..Container::default()
            },
            ports: context_ports,
        });
    }
    let hostnames: Vec<String> = plan
        .services
        .iter()
        .map(|service| service.id.to_ascii_lowercase())
        .filter(|name| is_host_name(name))
        .collect();
    for service in &plan.services {
        if !is_host_name(&service.id.to_ascii_lowercase()) {
            tracing::warn!(
                service = %service.id,
                "the service id is not a host name Kubernetes accepts: it answers on localhost only"
            );
        }
    }
    if !hostnames.is_empty() {
        plan.host_aliases.push(HostAlias {
            ip: "127.0.0.1".to_owned(),
            hostnames: Some(hostnames),
        });
    }
    Ok(plan)
}

/// A container's env: the workflow's `env:`, then `-e NAME=VALUE` of its `options:` over it.
pub(super) fn container_env(
    env: &BTreeMap<String, String>,
    from_options: &[String],
) -> Vec<EnvVar> {
    let mut vars: Vec<EnvVar> = env
        .iter()
        .map(|(name, value)| env_var(name, value))
        .collect();
    for pair in from_options {
        if let Some((name, value)) = pair.split_once('=') {
            vars.retain(|var| var.name != name);
            vars.push(env_var(name, value));
        }
    }
    vars
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

/// The options the allow-list takes that have no meaning in a pod are refused by name.
pub(super) fn refuse_unmapped(checked: &CheckedOptions) -> Result<(), String> {
    let mut unmapped = Vec::new();
    let mut note = |set: bool, option: &str| {
        if set {
            unmapped.push(option.to_owned());
        }
    };
    note(checked.hostname.is_some(), "--hostname");
    note(!checked.add_hosts.is_empty(), "--add-host");
    note(checked.cpu_shares.is_some(), "--cpu-shares");
    note(checked.memory_swap.is_some(), "--memory-swap");
    note(checked.shm_size.is_some(), "--shm-size");
    note(checked.pids_limit.is_some(), "--pids-limit");
    note(!checked.ulimits.is_empty(), "--ulimit");
    note(!checked.tmpfs.is_empty(), "--tmpfs");
    note(checked.init == Some(true), "--init");
    note(!checked.labels.is_empty(), "--label");
    note(checked.stop_signal.is_some(), "--stop-signal");
    note(checked.privileged, "--privileged");
    note(!checked.cap_add.is_empty(), "--cap-add");
    note(!checked.devices.is_empty(), "--device");
    if unmapped.is_empty() {
        Ok(())
    } else {
        let (plural, verb) = if unmapped.len() == 1 {
            ("", "is")
        } else {
            ("s", "are")
        };
        Err(format!(
            "option{plural} {} {verb} not available on the kubernetes backend",
            unmapped
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// `--health-*` as a startup probe: Docker's first check comes one interval after the start,
/// and `--health-retries` failures after the start period make it unhealthy.
fn health_probe(checked: &CheckedOptions) -> Option<Probe> {
    let health = checked.health.as_ref()?;
    let command = match health.test.as_deref() {
        Some([kind, command]) if kind == "CMD-SHELL" => command.clone(),
        _ => return None,
    };
    let seconds = |nanos: Option<i64>, default: i64| {
        let whole = nanos.map_or(default, |n| (n + 999_999_999) / 1_000_000_000);
        i32::try_from(whole.max(1)).unwrap_or(i32::MAX)
    };
    let interval = seconds(health.interval, DEFAULT_HEALTH_SECONDS);
    let start_period = health.start_period.map_or(0, |n| n / 1_000_000_000);
    let retries = health
        .retries
        .filter(|r| *r > 0)
        .unwrap_or(DEFAULT_HEALTH_RETRIES);
    let during_start = start_period / i64::from(interval);
    Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), command]),
        }),
        initial_delay_seconds: Some(interval),
        period_seconds: Some(interval),
        timeout_seconds: Some(seconds(health.timeout, DEFAULT_HEALTH_SECONDS)),
        failure_threshold: Some(i32::try_from(retries + during_start).unwrap_or(i32::MAX)),
        success_threshold: Some(1),
        ..Probe::default()
    })
}

/// `--cpus`, `--memory` and `--memory-reservation` as the container's limits and requests.
pub(super) fn resources(checked: &CheckedOptions) -> Option<ResourceRequirements> {
    let mut limits = BTreeMap::new();
    let mut requests = BTreeMap::new();
    if let Some(nanos) = checked.nano_cpus {
        limits.insert(
            "cpu".to_owned(),
            Quantity(format!("{}m", (nanos / 1_000_000).max(1))),
        );
    }
    if let Some(bytes) = checked.memory {
        limits.insert("memory".to_owned(), Quantity(bytes.to_string()));
    }
    if let Some(bytes) = checked.memory_reservation {
        requests.insert("memory".to_owned(), Quantity(bytes.to_string()));
    }
    (!limits.is_empty() || !requests.is_empty()).then(|| ResourceRequirements {
        limits: (!limits.is_empty()).then_some(limits),
        requests: (!requests.is_empty()).then_some(requests),
        ..ResourceRequirements::default()
    })
}

/// `--user UID[:GID]`, `--read-only`, `--cap-drop` and `no-new-privileges`.
pub(super) fn security_context(
    checked: &CheckedOptions,
) -> Result<Option<SecurityContext>, String> {
    let mut context = SecurityContext::default();
    let mut set = false;
    if let Some(user) = &checked.user {
        let (uid, gid) = user
            .split_once(':')
            .map_or((user.as_str(), None), |(u, g)| (u, Some(g)));
        let number = |text: &str| {
            text.parse::<i64>().map_err(|_| {
                format!(
                    "`--user {user}`: a pod takes numeric ids only (`--user 1000` or \
                     `--user 1000:1000`)"
                )
            })
        };
        context.run_as_user = Some(number(uid)?);
        if let Some(gid) = gid {
            context.run_as_group = Some(number(gid)?);
        }
        set = true;
    }
    if checked.read_only {
        context.read_only_root_filesystem = Some(true);
        set = true;
    }
    if !checked.cap_drop.is_empty() {
        context.capabilities = Some(Capabilities {
            drop: Some(checked.cap_drop.clone()),
            ..Capabilities::default()
        });
        set = true;
    }
    if !checked.security_opt.is_empty() {
        context.allow_privilege_escalation = Some(false);
        set = true;
    }
    Ok(set.then_some(context))
}

/// A container name (a DNS-1123 label) for service `id`, unique in the pod and never `job`.
fn container_name(id: &str, index: usize, taken: &[String]) -> String {
    let mut name: String = id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name = format!("svc-{}", name.trim_matches('-'));
    name.truncate(50);
    let name = name.trim_end_matches('-').to_owned();
    if taken.contains(&name) {
        format!("{name}-{index}")
    } else {
        name
    }
}

/// Whether Kubernetes takes `name` in `hostAliases` (a DNS-1123 subdomain).
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// What a service's status says about it being ready.
pub(crate) enum ServiceState {
    Ready,
    Waiting(String),
    /// It will not become ready: the problem, for the error.
    Failed(String),
    /// Its image cannot be had: the reason and message.
    Image(String, String),
}

/// Reads service `service`'s container status in `pod`.
pub(crate) fn state(pod: &Pod, service: &PlannedService) -> ServiceState {
    let status = pod
        .status
        .as_ref()
        .and_then(|status| status.container_statuses.as_ref())
        .and_then(|statuses| statuses.iter().find(|c| c.name == service.container.name));
    let Some(status) = status else {
        return ServiceState::Waiting(format!("service `{}`: no status yet", service.id));
    };
    let Some(state) = &status.state else {
        return ServiceState::Waiting(format!("service `{}`: no state yet", service.id));
    };
    if let Some(terminated) = &state.terminated {
        let reason = terminated.reason.as_deref().unwrap_or("?");
        let code = terminated.exit_code;
        let checking = service.has_health_check && status.started != Some(true);
        // The kubelet stops a container whose startup probe failed too often with SIGKILL.
        return ServiceState::Failed(if checking && code == 137 {
            format!(
                "is unhealthy: its health check failed --health-retries times and the kubelet \
                 stopped it ({reason}, code {code})"
            )
        } else if checking {
            format!("exited ({reason}, code {code}) before its health check passed")
        } else {
            format!("exited ({reason}, code {code})")
        });
    }
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.clone().unwrap_or_default();
        let message = waiting.message.clone().unwrap_or_default();
        if super::pod::is_image_failure(&reason) {
            return ServiceState::Image(reason, message);
        }
        if matches!(
            reason.as_str(),
            "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError"
        ) {
            return ServiceState::Failed(format!("cannot start ({reason}): {message}"));
        }
        return ServiceState::Waiting(format!("service `{}`: {reason} {message}", service.id));
    }
    if state.running.is_some() {
        if !service.has_health_check || status.started == Some(true) {
            return ServiceState::Ready;
        }
        return ServiceState::Waiting(format!(
            "service `{}`: waiting for its health check",
            service.id
        ));
    }
    ServiceState::Waiting(format!("service `{}`: starting", service.id))
}

/// The tail of a service container's log, or a note saying why there is none.
pub(crate) async fn logs(pods: &Api<Pod>, pod: &str, container: &str) -> String {
    let params = LogParams {
        container: Some(container.to_owned()),
        tail_lines: Some(LOG_LINES),
        ..LogParams::default()
    };
    match pods.logs(pod, &params).await {
        Ok(text) if text.trim().is_empty() => "(empty)".to_owned(),
        Ok(text) => text,
        Err(error) => format!(
            "(could not read the log: {error}; the runner's account needs `get` on `pods/log` \
             to show it)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use runnel_engine::backend::ContainerSpec;

    use super::*;

    fn service(id: &str, ports: &[&str], options: &str) -> ServiceSpec {
        ServiceSpec {
            id: id.to_owned(),
            container: ContainerSpec {
                image: "busybox:1".to_owned(),
                env: BTreeMap::from([("A".to_owned(), "1".to_owned())]),
                ports: ports.iter().map(|p| (*p).to_owned()).collect(),
                options: vec![options.to_owned()],
                ..ContainerSpec::default()
            },
            entrypoint: Some("httpd".to_owned()),
            command: Some("-f -p 8080 -h '/srv/my www'".to_owned()),
        }
    }

    #[test]
    fn a_service_becomes_a_sidecar_reachable_by_its_name() {
        let plan = super::plan(
            &[service(
                "Web_1",
                &["8080"],
                "-e B=2 --health-cmd 'wget -q -O- localhost:8080' --health-interval 2s \
                 --health-retries 5 --health-start-period 4s --memory 64m --user 1000:1000",
            )],
            Some("Never"),
            false,
        )
        .expect("present");
        let planned = &plan.services[0];
        let container = &planned.container;
        assert_eq!(container.name, "svc-web-1");
        assert_eq!(
            container.command.as_deref(),
            Some(&["httpd".to_owned()][..])
        );
        assert_eq!(
            container.args.as_deref().expect("present"),
            ["-f", "-p", "8080", "-h", "/srv/my www"]
        );
        let env = container.env.as_ref().expect("present");
        assert_eq!(
            env.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
            ["A", "B"]
        );
        assert_eq!(
            container.ports.as_ref().expect("present")[0].container_port,
            8080
        );
        let probe = container.startup_probe.as_ref().expect("present");
        assert_eq!(
            probe
                .exec
                .as_ref()
                .expect("present")
                .command
                .as_deref()
                .expect("present")[2],
            "wget -q -O- localhost:8080"
        );
        assert_eq!(probe.period_seconds, Some(2));
        assert_eq!(probe.initial_delay_seconds, Some(2));
        assert_eq!(
            probe.failure_threshold,
            Some(7),
            "5 retries + 2 checks in the start period"
        );
        assert!(planned.has_health_check);
        let security = container.security_context.as_ref().expect("present");
        assert_eq!(
            (security.run_as_user, security.run_as_group),
            (Some(1000), Some(1000))
        );
        assert_eq!(
            container
                .resources
                .as_ref()
                .expect("present")
                .limits
                .as_ref()
                .expect("present")["memory"],
            Quantity((64 * 1024 * 1024).to_string())
        );
        assert_eq!(planned.ports["8080"], "8080");
        // Upper case and `_` are no host names for Kubernetes: the service answers on
        // localhost only.
        assert!(plan.host_aliases.is_empty());

        let plan = plan_ok(&[service("db", &[], ""), service("cache", &[], "")]);
        assert_eq!(
            plan.host_aliases[0].hostnames.as_deref().expect("present"),
            ["db", "cache"]
        );
        assert_eq!(plan.host_aliases[0].ip, "127.0.0.1");
    }

    fn plan_ok(specs: &[ServiceSpec]) -> ServicePlan {
        super::plan(specs, None, false).expect("present")
    }

    fn refusal(specs: &[ServiceSpec]) -> String {
        let refused = super::plan(specs, None, false).expect_err("refused");
        KubeError::from(refused).to_string()
    }

    #[test]
    fn what_a_pod_cannot_do_is_refused_by_name() {
        let message = refusal(&[service("db", &[], "--shm-size 1g --tmpfs /t")]);
        assert!(message.contains("`--shm-size`, `--tmpfs`"), "{message}");
        assert!(message.contains("service `db`"), "{message}");
        let message = refusal(&[service("a", &["80"], ""), service("b", &["80"], "")]);
        assert!(
            message.contains("port 80/tcp is also service `a`'s"),
            "{message}"
        );
        let plan = plan_ok(&[service("a", &["8080:80"], "")]);
        assert_eq!(plan.services[0].ports["80"], "80");
        let message = refusal(&[service("a", &[], "--user www")]);
        assert!(message.contains("numeric ids only"), "{message}");
        let mut with_credentials = service("a", &[], "");
        with_credentials.container.credentials = Some(("u".to_owned(), "p".to_owned()));
        let message = refusal(std::slice::from_ref(&with_credentials));
        assert!(message.contains("image_pull_secrets"), "{message}");
        assert!(super::plan(&[with_credentials], None, true).is_ok());
    }
}
