//! Two Docker checks of `runnel doctor` that look past the engine's version call:
//! - `docker group`: the packaged service's user (`runnel`) may use the Docker socket. The .deb
//!   cannot know at install time whether Docker labels will be used (they arrive with
//!   `runnel register`, after the install), so this is where an operator learns it.
//! - `cache reach`: a job container reaches the cache. The daemon serves the cache on the
//!   gateway of the job network (`runnel-jobs`), or on `cache.host`; a host firewall that drops
//!   traffic from Docker bridges makes every cache step time out. The check listens on that
//!   address itself and starts a throwaway container of a label's image on the network, which
//!   connects with whatever the image has (bash, nc, curl or node).
//!
//! Owns: those two findings. Must not: pull images, create networks, or leave a container
//! behind (the probe container is removed whatever happened). Talks to Docker through the
//! engine's API (bollard), as the backend does; the group check asks the system's user
//! database (`getent`, `id`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt as _;
use runnel_config::Config;

use super::{CALL_LIMIT, Finding, Verdict};

/// The network job containers join (`runnel_backends::docker`'s shared network).
const JOB_NETWORK: &str = "runnel-jobs";
/// How long the probe container may try to connect.
const CONNECT_SECONDS: u64 = 5;
/// The user the .deb runs the service as.
const SERVICE_USER: &str = "runnel";

/// Connects to `$1:$2` with the first tool the image has; exit 0 connected, 1 not, 3 no tool.
const PROBE: &str = r#"ip=$1 port=$2 s=$3
if command -v bash >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then
  exec timeout "$s" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$ip" "$port"
fi
if command -v nc >/dev/null 2>&1; then exec nc -z -w "$s" "$ip" "$port"; fi
if command -v curl >/dev/null 2>&1; then
  curl -s -o /dev/null --connect-timeout "$s" --max-time "$s" "http://$ip:$port/"
  case $? in 7 | 28) exit 1 ;; *) exit 0 ;; esac
fi
if command -v node >/dev/null 2>&1; then
  exec node -e 'const s = require("net").connect(+process.argv[2], process.argv[1]);
s.on("connect", () => process.exit(0)); s.on("error", () => process.exit(1));
setTimeout(() => process.exit(1), 1000 * process.argv[3]);' "$ip" "$port" "$s"
fi
exit 3
"#;

/// The `docker group` finding: `None` when it does not apply (no `runnel` user, no `docker`
/// group, or an engine not reached through the local socket).
pub(super) fn docker_group(docker_host: Option<&str>) -> Option<Finding> {
    if docker_host.is_some_and(|h| !h.starts_with("unix://")) {
        return None;
    }
    let docker_group_exists = Command::new("getent")
        .args(["group", "docker"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let groups = Command::new("id")
        .args(["-nG", SERVICE_USER])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    group_finding(groups.as_deref(), docker_group_exists)
}

/// [`docker_group`] on the facts: the service user's groups (`id -nG`; `None`: no such user)
/// and whether a `docker` group exists.
fn group_finding(groups: Option<&str>, docker_group_exists: bool) -> Option<Finding> {
    let groups = groups?;
    if !docker_group_exists {
        return None;
    }
    if groups.split_whitespace().any(|g| g == "docker") {
        return Some(Finding::ok(
            "docker group",
            format!("user {SERVICE_USER} is in group docker"),
        ));
    }
    Some(Finding::bad(
        "docker group",
        Verdict::Fail,
        format!("labels need Docker but user {SERVICE_USER} is not in group docker"),
        format!("`usermod -aG docker {SERVICE_USER}`, then `systemctl restart runnel`"),
    ))
}

/// Where a job container is told the cache is, as the check sees it.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// The built-in server on `ip` (the network's gateway, or `cache.host`): the check listens
    /// there itself, on `port` (0: any).
    Listen { ip: IpAddr, port: u16 },
    /// `cache.external_server`: only the container's own verdict counts.
    External { host: String, port: u16 },
}

/// The `cache reach` finding. `image` is the first Docker label's image.
pub(super) async fn cache_reach(docker: &Docker, config: &Config, image: &str) -> Finding {
    const CHECK: &str = "cache reach";
    if docker.inspect_image(image).await.is_err() {
        return Finding::skip(
            CHECK,
            format!("not checked: {image} is not present to start a test container from"),
        );
    }
    // The shared job network exists once a Docker job ran; before, Docker's `bridge` stands
    // in (same path through the host's firewall).
    let network = match docker.inspect_network(JOB_NETWORK, None).await {
        Ok(_) => JOB_NETWORK,
        Err(_) => "bridge",
    };
    let target = if !config.cache.external_server.trim().is_empty() {
        match external_target(config.cache.external_server.trim()) {
            Some(target) => target,
            None => {
                return Finding::skip(
                    CHECK,
                    format!(
                        "not checked: cannot read host and port from cache.external_server {:?}",
                        config.cache.external_server
                    ),
                );
            }
        }
    } else if !config.cache.host.trim().is_empty() {
        match config.cache.host.trim().parse::<IpAddr>() {
            Ok(ip) => Target::Listen {
                ip,
                port: config.cache.port,
            },
            Err(_) => Target::External {
                host: config.cache.host.trim().to_owned(),
                port: config.cache.port,
            },
        }
    } else {
        match gateway(docker, network).await {
            Some(ip) => Target::Listen {
                ip: IpAddr::V4(ip),
                port: config.cache.port,
            },
            None => {
                return Finding::skip(
                    CHECK,
                    format!("not checked: network {network} has no IPv4 gateway"),
                );
            }
        }
    };

    // Listen where the daemon would. A busy fixed port is most likely the running daemon's
    // own listener: then the container's verdict alone counts.
    let accepted = Arc::new(AtomicBool::new(false));
    let (host, port, listening) = match &target {
        Target::Listen { ip, port } => {
            let bind_ip = if config.cache.host.trim().is_empty() {
                *ip
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            };
            match TcpListener::bind(SocketAddr::new(bind_ip, *port)) {
                Ok(listener) => {
                    let bound = listener.local_addr().map_or(*port, |a| a.port());
                    accept_in_background(listener, Arc::clone(&accepted));
                    (ip.to_string(), bound, true)
                }
                Err(_) if *port != 0 => (ip.to_string(), *port, false),
                Err(error) => {
                    return Finding::bad(
                        CHECK,
                        Verdict::Warn,
                        format!("cannot listen on {ip} to test with: {error}"),
                        "run doctor on the machine (and in the network namespace) the daemon runs in"
                            .to_owned(),
                    );
                }
            }
        }
        Target::External { host, port } => (host.clone(), *port, false),
    };
    let code = match probe(docker, image, network, &host, port).await {
        Ok(code) => code,
        Err(reason) => {
            return Finding::skip(
                CHECK,
                format!("not checked: a container of {image} did not start: {reason}"),
            );
        }
    };
    let reached = accepted.load(Ordering::SeqCst) || (!listening && code == Some(0));
    if reached {
        return Finding::ok(
            CHECK,
            format!("a container of {image} on network {network} reaches {host}:{port}"),
        );
    }
    if code == Some(3) {
        return Finding::skip(
            CHECK,
            format!("not checked: {image} has none of bash, nc, curl, node to connect with"),
        );
    }
    let fix = match target {
        Target::Listen { .. } if config.cache.host.trim().is_empty() => format!(
            "let containers on Docker networks reach this machine: allow incoming TCP from {network}'s bridge in the host firewall (e.g. `ufw allow in on <bridge>`), or set cache.host to an address they reach and cache.port to a port the firewall opens"
        ),
        Target::Listen { .. } => {
            "cache.host must be an address of this machine that job containers reach; open cache.port in the host firewall".to_owned()
        }
        Target::External { .. } => {
            "make cache.external_server reachable from job containers, or clear it to use the built-in cache".to_owned()
        }
    };
    Finding::bad(
        CHECK,
        Verdict::Fail,
        format!(
            "a container of {image} on network {network} cannot reach the cache at {host}:{port}: cache steps will stall"
        ),
        fix,
    )
}

/// The first IPv4 gateway of `network`.
async fn gateway(docker: &Docker, network: &str) -> Option<Ipv4Addr> {
    let inspect = docker.inspect_network(network, None).await.ok()?;
    inspect
        .ipam?
        .config?
        .iter()
        .filter_map(|config| config.gateway.as_deref())
        .find_map(|gateway| gateway.parse::<Ipv4Addr>().ok())
}

/// Runs [`PROBE`] in a throwaway container of `image` on `network` against `host:port`, as
/// `docker run --rm` would; returns its exit code (`None`: it did not end in time), or why it
/// did not start. The container is removed whatever happened.
async fn probe(
    docker: &Docker,
    image: &str,
    network: &str,
    host: &str,
    port: u16,
) -> Result<Option<i64>, String> {
    let name = format!("runnel-doctor-{}", std::process::id());
    let command = vec![
        "-c".to_owned(),
        PROBE.to_owned(),
        "probe".to_owned(),
        host.to_owned(),
        port.to_string(),
        CONNECT_SECONDS.to_string(),
    ];
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        entrypoint: Some(vec!["sh".to_owned()]),
        cmd: Some(command),
        host_config: Some(HostConfig {
            network_mode: Some(network.to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    let id = docker
        .create_container(Some(options), body)
        .await
        .map_err(|error| error.to_string())?
        .id;
    let result = start_and_wait(docker, &id).await;
    let remove = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    let _ = docker.remove_container(&id, Some(remove)).await;
    result
}

async fn start_and_wait(docker: &Docker, id: &str) -> Result<Option<i64>, String> {
    docker
        .start_container(id, None)
        .await
        .map_err(|error| error.to_string())?;
    let mut wait = docker.wait_container(id, None);
    let code = match tokio::time::timeout(CALL_LIMIT, wait.next()).await {
        Ok(Some(Ok(response))) => Some(response.status_code),
        // bollard reports a non-zero exit of `wait` as an error carrying the code.
        Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => Some(code),
        Ok(Some(Err(error))) => return Err(error.to_string()),
        Ok(None) | Err(_) => None,
    };
    // What `docker run` says for 125 and 127: the shell itself did not run.
    if matches!(code, Some(125 | 127)) {
        return Err(stderr_of(docker, id).await);
    }
    Ok(code)
}

/// What the container wrote to stderr, trimmed.
async fn stderr_of(docker: &Docker, id: &str) -> String {
    let options = LogsOptionsBuilder::new().stderr(true).build();
    let mut logs = docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text.trim().to_owned()
}

/// Host and port of an `http(s)://host[:port]/...` URL.
fn external_target(url: &str) -> Option<Target> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, port.parse().ok()?)
        }
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| Target::External {
        host: host.to_owned(),
        port,
    })
}

/// Accepts connections on `listener` for the probe's lifetime, noting that one came.
fn accept_in_background(listener: TcpListener, accepted: Arc<AtomicBool>) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(CONNECT_SECONDS * 6);
    std::thread::spawn(move || {
        while Instant::now() < deadline {
            if listener.accept().is_ok() {
                accepted.store(true, Ordering::SeqCst);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_membership_decides_the_finding() {
        assert!(group_finding(None, true).is_none(), "no runnel user");
        assert!(
            group_finding(Some("runnel"), false).is_none(),
            "no docker group"
        );
        let ok = group_finding(Some("runnel docker"), true).map(|f| f.verdict);
        assert_eq!(ok, Some(Verdict::Ok));
        let missing = group_finding(Some("runnel dockerish"), true);
        assert!(matches!(&missing, Some(f) if f.verdict == Verdict::Fail
                && f.detail == "labels need Docker but user runnel is not in group docker"),);
    }

    #[test]
    fn external_server_urls() {
        let target = |host: &str, port| {
            Some(Target::External {
                host: host.to_owned(),
                port,
            })
        };
        assert_eq!(
            external_target("http://cache.lan:8088/"),
            target("cache.lan", 8088)
        );
        assert_eq!(
            external_target("https://cache.lan/x/"),
            target("cache.lan", 443)
        );
        assert_eq!(external_target("http://[::1]:9/"), target("::1", 9));
        assert_eq!(external_target("cache.lan:80"), None);
    }
}
