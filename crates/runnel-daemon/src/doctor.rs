//! `runnel doctor`'s checks: what an operator gets wrong first, each returned as a [`Finding`]
//! with its fix — the config parses, the registration (`.runner`) is there and readable, Gitea
//! answers and accepts the runner's token, Docker answers (with its version) and has each
//! `docker://` label's image, the packaged service's user may use Docker, a job container
//! reaches the cache (`reach`), a `kubernetes://` label's cluster answers, its namespace
//! exists and the account may manage pods and exec there, the work, cache and state
//! directories have room, and `git`/`node` are there for host labels.
//!
//! Owns: the checks and their wording. Must not: print (the CLI renders the findings and
//! picks the exit code), take jobs (it declares the runner's labels, as every daemon start
//! does, and never fetches a task), or change any file.

mod reach;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use runnel_assembly::Purpose;
use runnel_backends::kubernetes::NamespaceState;
use runnel_config::{Config, Label, LabelKind};
use runnel_protocol::runner_file::RunnerFile;
use runnel_protocol::{Client, ClientConfig, RetryPolicy};

use crate::reporter::error_chain;

/// Below this much free space a directory fails the check; below `DISK_WARN` it warns.
const DISK_FAIL: u64 = 1 << 30;
const DISK_WARN: u64 = 5 << 30;
/// The longest a network check may take (Gitea or Docker that never answer).
const CALL_LIMIT: Duration = Duration::from_secs(20);

/// What the checks look at.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// The config file (`-c`); `None`: the built-in defaults.
    pub config_path: Option<PathBuf>,
    /// This runner's version, declared to Gitea as the daemon would.
    pub version: String,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// A problem that does not stop the daemon.
    Warn,
    /// A problem that stops the daemon or its jobs.
    Fail,
    /// Not checked (it does not apply, or cannot be checked); the detail says why.
    Skip,
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The check's short name (`config`, `gitea`, `cache reach`, …).
    pub check: &'static str,
    pub verdict: Verdict,
    /// What was found; may span lines.
    pub detail: String,
    /// What to do about it (for warnings and failures).
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, detail: String) -> Finding {
        Finding {
            check,
            verdict: Verdict::Ok,
            detail,
            fix: None,
        }
    }

    fn skip(check: &'static str, detail: String) -> Finding {
        Finding {
            check,
            verdict: Verdict::Skip,
            detail,
            fix: None,
        }
    }

    fn bad(check: &'static str, verdict: Verdict, detail: String, fix: String) -> Finding {
        Finding {
            check,
            verdict,
            detail,
            fix: Some(fix),
        }
    }
}

/// Runs every check, in the order an operator fixes things; a check whose input is missing
/// (no registration, no Docker label) is skipped or left out.
pub async fn doctor(options: &DoctorOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    let config_path = options.config_path.as_deref();
    let config = check_config(config_path, &mut findings);
    let runner_file = check_runner_file(&config, config_path, &mut findings);
    let labels = check_labels(&config, runner_file.as_ref(), &mut findings);
    match &runner_file {
        Some(runner_file) => {
            check_gitea(
                &config,
                runner_file,
                &labels,
                &options.version,
                &mut findings,
            )
            .await;
        }
        None => findings.push(Finding::skip(
            "gitea",
            "not checked: no registration to check it with".to_owned(),
        )),
    }
    check_docker(&config, &labels, &mut findings).await;
    check_kubernetes(&config, &labels, &mut findings).await;
    check_disks(&config, &mut findings);
    check_host_tools(&labels, &mut findings);
    findings
}

fn check_config(path: Option<&Path>, findings: &mut Vec<Finding>) -> Config {
    let Some(path) = path else {
        findings.push(Finding::ok(
            "config",
            "no config file given: built-in defaults (check yours with -c FILE)".to_owned(),
        ));
        return Config::default();
    };
    match Config::load(path) {
        Ok(loaded) => {
            findings.push(Finding::ok("config", format!("{} parses", path.display())));
            for warning in &loaded.warnings {
                findings.push(Finding::bad(
                    "config",
                    Verdict::Warn,
                    warning.to_string(),
                    "remove the key or correct its spelling (`runnel generate-config` prints every key)"
                        .to_owned(),
                ));
            }
            loaded.config
        }
        Err(error) => {
            findings.push(Finding::bad(
                "config",
                Verdict::Fail,
                error_chain(&error),
                "correct the file at the positions shown; the other checks use the built-in defaults"
                    .to_owned(),
            ));
            Config::default()
        }
    }
}

fn check_runner_file(
    config: &Config,
    config_path: Option<&Path>,
    findings: &mut Vec<Finding>,
) -> Option<RunnerFile> {
    let path = &config.runner.file;
    let config_flag = config_path.map_or(String::new(), |p| format!(" -c {}", p.display()));
    if !path.exists() {
        findings.push(Finding::bad(
            "registration",
            Verdict::Fail,
            format!("{} is missing: the runner is not registered", path.display()),
            format!(
                "runnel register{config_flag} --instance URL --token REGISTRATION_TOKEN (the token is in Gitea's runner settings); run it as the user the daemon runs as"
            ),
        ));
        return None;
    }
    match RunnerFile::load(path) {
        Ok(file) => {
            findings.push(Finding::ok(
                "registration",
                format!(
                    "{} holds runner {:?} (id {}) of {}",
                    path.display(),
                    file.name,
                    file.id,
                    file.address
                ),
            ));
            Some(file)
        }
        Err(error) => {
            findings.push(Finding::bad(
                "registration",
                Verdict::Fail,
                error_chain(&error),
                "run doctor as the user the daemon runs as (e.g. sudo -u runnel runnel doctor …), or register again if the file is damaged"
                    .to_owned(),
            ));
            None
        }
    }
}

/// The effective labels, as the daemon computes them: the config's, else the `.runner`'s.
fn check_labels(
    config: &Config,
    runner_file: Option<&RunnerFile>,
    findings: &mut Vec<Finding>,
) -> Vec<Label> {
    let texts = if config.runner.labels.is_empty() {
        runner_file.map(|f| f.labels.clone()).unwrap_or_default()
    } else {
        config.runner.labels.clone()
    };
    let (labels, errors) = runnel_config::parse_labels(&texts);
    for error in &errors {
        findings.push(Finding::bad(
            "labels",
            Verdict::Warn,
            format!("{error}; the daemon skips it"),
            "write labels as NAME, NAME:host or NAME:docker://IMAGE".to_owned(),
        ));
    }
    let (labels, warnings) = runnel_config::resolve_labels(labels, &config.runner.default_image);
    for warning in warnings {
        findings.push(Finding::bad(
            "labels",
            Verdict::Warn,
            warning,
            "write labels as NAME, NAME:host or NAME:docker://IMAGE, or set runner.default_image"
                .to_owned(),
        ));
    }
    if labels.is_empty() && runner_file.is_some() {
        findings.push(Finding::bad(
            "labels",
            Verdict::Fail,
            "no valid label: the daemon refuses to start".to_owned(),
            "list labels under runner.labels in the config, or register again with --labels"
                .to_owned(),
        ));
    } else if !labels.is_empty() {
        let names: Vec<&str> = texts.iter().map(String::as_str).collect();
        findings.push(Finding::ok("labels", names.join(", ")));
    }
    labels
}

async fn check_gitea(
    config: &Config,
    runner_file: &RunnerFile,
    labels: &[Label],
    version: &str,
    findings: &mut Vec<Finding>,
) {
    let address = &runner_file.address;
    let mut client_config = ClientConfig::new(address, version);
    client_config.insecure_tls = config.runner.insecure;
    client_config.transport = crate::transport(config.runner.transport);
    client_config.identity = Some(runner_file.identity());
    client_config.timeout = Duration::from_secs(10);
    client_config.retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
    };
    let client = match Client::new(client_config) {
        Ok(client) => client,
        Err(error) => {
            findings.push(Finding::bad(
                "gitea",
                Verdict::Fail,
                error_chain(&error),
                format!(
                    "correct the address in {} (register again)",
                    config.runner.file.display()
                ),
            ));
            return;
        }
    };
    match tokio::time::timeout(CALL_LIMIT, client.ping("runnel doctor")).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            findings.push(Finding::bad(
                "gitea",
                Verdict::Fail,
                format!("{address} does not answer: {}", error_chain(&error)),
                "check that Gitea runs and that this machine reaches it (URL, DNS, proxy, firewall; runner.insecure for a self-signed certificate)"
                    .to_owned(),
            ));
            return;
        }
        Err(_) => {
            findings.push(Finding::bad(
                "gitea",
                Verdict::Fail,
                format!("{address} did not answer within {CALL_LIMIT:?}"),
                "check that Gitea runs and that this machine reaches it".to_owned(),
            ));
            return;
        }
    }
    let names: Vec<String> = labels.iter().map(|l| l.name.clone()).collect();
    match tokio::time::timeout(CALL_LIMIT, client.declare(version, &names)).await {
        Ok(Ok(runner)) => findings.push(Finding::ok(
            "gitea",
            format!(
                "{address} answers over {:?} and accepts runner {:?} (id {})",
                client.transport(),
                runner.name,
                runner.id
            ),
        )),
        Ok(Err(error)) if error.is_unregistered() => findings.push(Finding::bad(
            "gitea",
            Verdict::Fail,
            format!(
                "{address} answers but no longer accepts this runner: {}",
                error_chain(&error)
            ),
            format!(
                "the runner was deleted in Gitea or its token changed: remove {} and run `runnel register` again",
                config.runner.file.display()
            ),
        )),
        Ok(Err(error)) => findings.push(Finding::bad(
            "gitea",
            Verdict::Fail,
            format!(
                "declaring the runner to {address} failed: {}",
                error_chain(&error)
            ),
            "see the error; Gitea 1.21 or newer is needed, with Actions enabled".to_owned(),
        )),
        Err(_) => findings.push(Finding::bad(
            "gitea",
            Verdict::Fail,
            format!("declaring the runner to {address} took over {CALL_LIMIT:?}"),
            "check Gitea's load and any proxy in between".to_owned(),
        )),
    }
}

async fn check_docker(config: &Config, labels: &[Label], findings: &mut Vec<Finding>) {
    let images: Vec<&str> = labels
        .iter()
        .filter_map(|l| match &l.kind {
            LabelKind::Docker { image } => Some(image.as_str()),
            _ => None,
        })
        .collect();
    if images.is_empty() && !config.container.require_docker {
        findings.push(Finding::skip(
            "docker",
            "not needed: no docker:// label".to_owned(),
        ));
        return;
    }
    // The backend the daemon would make from this config (its `container.options` checked).
    let docker_config = runnel_assembly::docker::docker_config(config, &Purpose::Daemon);
    if !images.is_empty()
        && let Some(finding) = reach::docker_group(docker_config.docker_host.as_deref())
    {
        findings.push(finding);
    }
    let target = docker_config
        .docker_host
        .clone()
        .or_else(|| std::env::var("DOCKER_HOST").ok())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
    let connected = runnel_assembly::docker::connect_as_daemon(config);
    let backend = match tokio::time::timeout(CALL_LIMIT, connected).await {
        Ok(Ok(backend)) => backend,
        Ok(Err(error)) => {
            findings.push(Finding::bad(
                "docker",
                Verdict::Fail,
                error_chain(&error),
                format!(
                    "start the Docker engine; make sure this user may use {target} (the packaged service's user is in the docker group: usermod -aG docker runnel, then restart runnel); or set container.docker_host"
                ),
            ));
            return;
        }
        Err(_) => {
            findings.push(Finding::bad(
                "docker",
                Verdict::Fail,
                format!("{target} did not answer within {CALL_LIMIT:?}"),
                "check that dockerd runs".to_owned(),
            ));
            return;
        }
    };
    let docker = backend.docker();
    match docker.version().await {
        Ok(version) => findings.push(Finding::ok(
            "docker",
            format!(
                "{target}: Docker {} (API {})",
                version.version.as_deref().unwrap_or("?"),
                version.api_version.as_deref().unwrap_or("?")
            ),
        )),
        Err(error) => findings.push(Finding::bad(
            "docker",
            Verdict::Fail,
            format!("{target} answers but its version call failed: {error}"),
            "check the Docker engine's logs".to_owned(),
        )),
    }
    for image in &images {
        match docker.inspect_image(image).await {
            Ok(_) => findings.push(Finding::ok("image", format!("{image} is present"))),
            Err(error) => findings.push(Finding::bad(
                "image",
                Verdict::Warn,
                format!("{image} is not present locally ({error})"),
                format!(
                    "docker pull {image} (the first job pulls it otherwise, which needs its registry)"
                ),
            )),
        }
    }
    if let Some(image) = images.first()
        && config.cache.enabled
    {
        findings.push(reach::cache_reach(docker, config, image).await);
    }
}

/// For `kubernetes://` labels: the API server answers, the job namespace exists (a dry-run
/// pod), and the runner's account may do there what the backend does (access reviews).
async fn check_kubernetes(config: &Config, labels: &[Label], findings: &mut Vec<Finding>) {
    if !labels
        .iter()
        .any(|l| matches!(l.kind, LabelKind::Kubernetes { .. }))
    {
        findings.push(Finding::skip(
            "kubernetes",
            "not needed: no kubernetes:// label".to_owned(),
        ));
        return;
    }
    let fix_client = "set kubernetes.kubeconfig (and kubernetes.context) in config.yaml, or                       KUBECONFIG, to a kubeconfig of the job cluster; in a pod,                       kubernetes.in_cluster: true";
    let backend = match runnel_assembly::kubernetes::connect_for_checks(config).await {
        Ok(backend) => backend,
        Err(error) => {
            findings.push(Finding::bad(
                "kubernetes",
                Verdict::Fail,
                error_chain(&error),
                fix_client.to_owned(),
            ));
            return;
        }
    };
    let namespace = backend.namespace().to_owned();
    let report = match tokio::time::timeout(CALL_LIMIT, backend.check_access()).await {
        Ok(Ok(report)) => report,
        Ok(Err(error)) => {
            findings.push(Finding::bad(
                "kubernetes",
                Verdict::Fail,
                error_chain(&error),
                format!("check that the API server answers and that the account may ask `create selfsubjectaccessreviews` (every account may by default); {fix_client}"),
            ));
            return;
        }
        Err(_) => {
            findings.push(Finding::bad(
                "kubernetes",
                Verdict::Fail,
                format!("the API server did not answer within {CALL_LIMIT:?}"),
                format!("check the cluster's address and the network to it; {fix_client}"),
            ));
            return;
        }
    };
    let api = format!("the API server answers (Kubernetes {})", report.version);
    match &report.namespace_state {
        NamespaceState::Exists => findings.push(Finding::ok(
            "kubernetes",
            format!("{api}; namespace `{namespace}` exists"),
        )),
        NamespaceState::Missing => findings.push(Finding::bad(
            "kubernetes",
            Verdict::Fail,
            format!("{api}, but namespace `{namespace}` does not exist"),
            format!("kubectl create namespace {namespace}, or set kubernetes.namespace"),
        )),
        NamespaceState::Unknown(why) => findings.push(Finding::ok(
            "kubernetes",
            format!("{api}; whether namespace `{namespace}` exists is unknown: {why}"),
        )),
    }
    let missing: Vec<String> = report
        .permissions
        .iter()
        .filter(|p| !p.allowed)
        .map(|p| format!("`{}` on `{}`", p.verb, p.resource))
        .collect();
    if missing.is_empty() {
        let all: Vec<String> = report
            .permissions
            .iter()
            .map(|p| format!("{} {}", p.verb, p.resource))
            .collect();
        findings.push(Finding::ok(
            "k8s access",
            format!("the account may {} in `{namespace}`", all.join(", ")),
        ));
    } else {
        findings.push(Finding::bad(
            "k8s access",
            Verdict::Fail,
            format!(
                "the account may not do {} in namespace `{namespace}`",
                missing.join(", ")
            ),
            format!(
                "bind the account to a Role in `{namespace}` granting create, get, list, delete \
                 on pods, create and get on pods/exec, get on pods/log and patch on \
                 pods/ephemeralcontainers (docs/operators.md, Jobs on Kubernetes)"
            ),
        ));
    }
}

fn check_disks(config: &Config, findings: &mut Vec<Finding>) {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let work = config
        .host
        .workdir_parent
        .clone()
        .or_else(|| home.as_ref().map(|h| h.join(".cache/act")));
    let cache = config
        .cache
        .dir
        .clone()
        .or_else(|| home.as_ref().map(|h| h.join(".cache/actcache")));
    let state = config
        .runner
        .file
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_owned()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let dirs = [
        ("work dir", work),
        ("cache dir", cache),
        ("state dir", Some(state)),
    ];
    for (what, dir) in dirs {
        let Some(dir) = dir else {
            continue;
        };
        findings.push(disk_finding(what, &dir, free_bytes(&dir)));
    }
}

/// The `disk` finding for `dir` (the config's `what`) with `free` bytes on its file system.
fn disk_finding(what: &str, dir: &Path, free: Result<u64, String>) -> Finding {
    match free {
        Ok(free) => {
            let detail = format!("{what} {}: {} free", dir.display(), human(free));
            let fix = || {
                format!(
                    "free space on the file system of {}, or point the config's {what} elsewhere",
                    dir.display()
                )
            };
            if free < DISK_FAIL {
                Finding::bad("disk", Verdict::Fail, detail, fix())
            } else if free < DISK_WARN {
                Finding::bad("disk", Verdict::Warn, detail, fix())
            } else {
                Finding::ok("disk", detail)
            }
        }
        Err(reason) => Finding::bad(
            "disk",
            Verdict::Warn,
            format!("{what} {}: free space unknown ({reason})", dir.display()),
            "check that the directory's parent exists".to_owned(),
        ),
    }
}

/// Free bytes on the file system holding `dir` (or its nearest existing ancestor), by `df`.
pub(crate) fn free_bytes(dir: &Path) -> Result<u64, String> {
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .ok_or_else(|| "no existing ancestor".to_owned())?;
    let output = Command::new("df")
        .arg("-Pk")
        .arg(existing)
        .output()
        .map_err(|e| format!("df: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    parse_df(&String::from_utf8_lossy(&output.stdout))
        .ok_or_else(|| "unexpected df output".to_owned())
}

/// The "Available" column (KiB) of `df -Pk`'s one data line, in bytes.
fn parse_df(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    let available: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(available * 1024)
}

fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    format!("{:.1} GiB", bytes as f64 / GIB)
}

fn check_host_tools(labels: &[Label], findings: &mut Vec<Finding>) {
    if !labels.iter().any(|l| matches!(l.kind, LabelKind::Host)) {
        return;
    }
    let tools = [
        (
            "git",
            "actions/checkout and `uses: owner/repo@ref` need git on PATH",
        ),
        (
            "node",
            "JavaScript actions (actions/checkout, setup-*) need node on PATH",
        ),
    ];
    for (tool, why) in tools {
        match Command::new(tool).arg("--version").output() {
            Ok(output) if output.status.success() => findings.push(Finding::ok(
                "host tools",
                format!("{tool} {}", String::from_utf8_lossy(&output.stdout).trim()),
            )),
            _ => findings.push(Finding::bad(
                "host tools",
                Verdict::Warn,
                format!("{tool} is not on PATH; host-label jobs that use it fail"),
                format!("install {tool} ({why})"),
            )),
        }
    }
}
