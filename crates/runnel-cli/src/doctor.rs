//! `runnel doctor`: checks what an operator gets wrong first and prints each finding with the
//! fix — the config parses, the registration (`.runner`) is there and readable, Gitea answers
//! and accepts the runner's token, Docker answers (with its version) and has each `docker://`
//! label's image, the packaged service's user may use Docker, a job container reaches the cache
//! (`reach`), the work, cache and state directories have room, and `git`/`node` are there for
//! host labels. Exit 1 when a check failed; warnings do not fail.
//!
//! Owns: the checks and their wording. Must not: take jobs (it declares the runner's labels,
//! as every daemon start does, and never fetches a task), or change any file.

mod reach;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use runnel_assembly::Purpose;
use runnel_backends::docker::DockerBackend;
use runnel_config::{Config, Label, LabelKind};
use runnel_protocol::runner_file::RunnerFile;
use runnel_protocol::{Client, ClientConfig, RetryPolicy};

use crate::Outcome;
use crate::args::DoctorArgs;

/// Below this much free space a directory fails the check; below `DISK_WARN` it warns.
const DISK_FAIL: u64 = 1 << 30;
const DISK_WARN: u64 = 5 << 30;
/// The longest a network check may take (Gitea or Docker that never answer).
const CALL_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Warn,
    Fail,
    Skip,
}

struct Finding {
    check: &'static str,
    verdict: Verdict,
    detail: String,
    fix: Option<String>,
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

pub(crate) fn run(args: &DoctorArgs) -> Result<Outcome> {
    let mut findings = Vec::new();
    let config = check_config(args.config.as_deref(), &mut findings);
    let runner_file = check_runner_file(&config, args.config.as_deref(), &mut findings);
    let labels = check_labels(&config, runner_file.as_ref(), &mut findings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if let Some(runner_file) = &runner_file {
            check_gitea(&config, runner_file, &labels, &mut findings).await;
        } else {
            findings.push(Finding::skip(
                "gitea",
                "not checked: no registration to check it with".to_owned(),
            ));
        }
        check_docker(&config, &labels, &mut findings).await;
    });
    check_disks(&config, &mut findings);
    check_host_tools(&labels, &mut findings);

    print!("{}", render(&findings));
    let failed = findings.iter().any(|f| f.verdict == Verdict::Fail);
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
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
                format!("{:#}", anyhow::Error::from(error)),
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
                format!("{:#}", anyhow::Error::from(error)),
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
    findings: &mut Vec<Finding>,
) {
    let address = &runner_file.address;
    let version = crate::daemon::version();
    let mut client_config = ClientConfig::new(address, &version);
    client_config.insecure_tls = config.runner.insecure;
    client_config.transport = runnel_daemon_transport(config);
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
                format!("{:#}", anyhow::Error::from(error)),
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
                format!(
                    "{address} does not answer: {:#}",
                    anyhow::Error::from(error)
                ),
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
    match tokio::time::timeout(CALL_LIMIT, client.declare(&version, &names)).await {
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
                "{address} answers but no longer accepts this runner: {:#}",
                anyhow::Error::from(error)
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
                "declaring the runner to {address} failed: {:#}",
                anyhow::Error::from(error)
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

fn runnel_daemon_transport(config: &Config) -> runnel_protocol::Transport {
    match config.runner.transport {
        runnel_config::TransportChoice::Auto => runnel_protocol::Transport::Auto,
        runnel_config::TransportChoice::Connect => runnel_protocol::Transport::Connect,
        runnel_config::TransportChoice::Grpc => runnel_protocol::Transport::Grpc,
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
    let backend = match tokio::time::timeout(CALL_LIMIT, DockerBackend::connect(docker_config))
        .await
    {
        Ok(Ok(backend)) => Arc::new(backend),
        Ok(Err(error)) => {
            findings.push(Finding::bad(
                "docker",
                Verdict::Fail,
                format!("{:#}", anyhow::Error::from(error)),
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
    match backend.docker().version().await {
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
        match backend.docker().inspect_image(image).await {
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
        let docker_host = docker_host_of(config);
        let finding = tokio::task::block_in_place(|| {
            reach::cache_reach(config, image, docker_host.as_deref())
        });
        findings.push(finding);
    }
}

/// `container.docker_host` when it names an engine (empty and `-` mean: detect it).
fn docker_host_of(config: &Config) -> Option<String> {
    let host = config.container.docker_host.trim();
    (!host.is_empty() && host != "-").then(|| host.to_owned())
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
        match free_bytes(&dir) {
            Ok(free) => {
                let detail = format!("{what} {}: {} free", dir.display(), human(free));
                let fix = || {
                    format!(
                        "free space on the file system of {}, or point the config's {what} elsewhere",
                        dir.display()
                    )
                };
                if free < DISK_FAIL {
                    findings.push(Finding::bad("disk", Verdict::Fail, detail, fix()));
                } else if free < DISK_WARN {
                    findings.push(Finding::bad("disk", Verdict::Warn, detail, fix()));
                } else {
                    findings.push(Finding::ok("disk", detail));
                }
            }
            Err(reason) => findings.push(Finding::bad(
                "disk",
                Verdict::Warn,
                format!("{what} {}: free space unknown ({reason})", dir.display()),
                "check that the directory's parent exists".to_owned(),
            )),
        }
    }
}

/// Free bytes on the file system holding `dir` (or its nearest existing ancestor), by `df`.
fn free_bytes(dir: &Path) -> Result<u64, String> {
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

fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for finding in findings {
        let tag = match finding.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        let mut lines = finding.detail.lines();
        out.push_str(&format!(
            "{tag}  {:<13} {}\n",
            finding.check,
            lines.next().unwrap_or_default()
        ));
        for line in lines {
            out.push_str(&format!("{:20}{line}\n", ""));
        }
        if let Some(fix) = &finding.fix {
            out.push_str(&format!("{:20}fix: {fix}\n", ""));
        }
    }
    let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
    out.push_str(&format!(
        "{} failed, {} warning(s), {} ok\n",
        count(Verdict::Fail),
        count(Verdict::Warn),
        count(Verdict::Ok)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_available_column() {
        let text = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/sda1        102400000  51200000  40960000      56% /\n";
        assert_eq!(parse_df(text), Some(40_960_000 * 1024));
        assert_eq!(parse_df("header only\n"), None);
    }

    #[test]
    fn rendering_puts_the_fix_under_the_finding() {
        let text = render(&[
            Finding::ok("config", "c.yaml parses".to_owned()),
            Finding::bad(
                "gitea",
                Verdict::Fail,
                "down\nsecond line".to_owned(),
                "start it".to_owned(),
            ),
        ]);
        assert_eq!(
            text,
            "ok    config        c.yaml parses\n\
             FAIL  gitea         down\n\
             \x20                   second line\n\
             \x20                   fix: start it\n\
             1 failed, 0 warning(s), 1 ok\n"
        );
    }
}
