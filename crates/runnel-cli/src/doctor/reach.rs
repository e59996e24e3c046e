//! Two Docker checks of `runnel doctor` that look past the engine's API:
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
//! behind (`docker run --rm`). Uses the `docker` command line: an operator's machine with
//! Docker labels has it; without it the check is skipped with a note.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use runnel_config::Config;

use super::{Finding, Verdict};

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
pub(super) fn cache_reach(config: &Config, image: &str, docker_host: Option<&str>) -> Finding {
    const CHECK: &str = "cache reach";
    let docker = |args: &[&str]| {
        let mut command = Command::new("docker");
        if let Some(host) = docker_host {
            command.env("DOCKER_HOST", host);
        }
        command.args(args).stdin(Stdio::null()).output()
    };
    let present = match docker(&["image", "inspect", "--format", "ok", image]) {
        Ok(output) => output.status.success(),
        Err(error) => {
            return Finding::skip(
                CHECK,
                format!("not checked: the docker command line does not run ({error})"),
            );
        }
    };
    if !present {
        return Finding::skip(
            CHECK,
            format!("not checked: {image} is not present to start a test container from"),
        );
    }
    // The shared job network exists once a Docker job ran; before, Docker's `bridge` stands
    // in (same path through the host's firewall).
    let network = match docker(&["network", "inspect", "--format", "ok", JOB_NETWORK]) {
        Ok(output) if output.status.success() => JOB_NETWORK,
        _ => "bridge",
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
        let gateway = docker(&[
            "network",
            "inspect",
            "--format",
            "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
            network,
        ])
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .find_map(|g| g.parse::<Ipv4Addr>().ok())
        });
        match gateway {
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
    let seconds = CONNECT_SECONDS.to_string();
    let port_text = port.to_string();
    let name = format!("runnel-doctor-{}", std::process::id());
    let ran = docker(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--network",
        network,
        "--entrypoint",
        "sh",
        image,
        "-c",
        PROBE,
        "probe",
        &host,
        &port_text,
        &seconds,
    ]);
    let code = match ran {
        Ok(output) => {
            if output.status.code() == Some(125) || output.status.code() == Some(127) {
                return Finding::skip(
                    CHECK,
                    format!(
                        "not checked: a container of {image} did not start: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    ),
                );
            }
            output.status.code()
        }
        Err(error) => {
            return Finding::skip(CHECK, format!("not checked: docker run: {error}"));
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
