//! The service packaging (`packaging/`): the packaged config stays the example plus the
//! service's paths, the unit passes `systemd-analyze verify`, `runnel daemon` speaks systemd's
//! notify protocol to a real datagram listener while it serves a real Gitea, and (slow) the
//! .deb installs, upgrades and purges in a Debian container, and the container image registers
//! and runs a job.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon_gitea::{gitea, unique};
use crate::packaging_gitea::{register, slow};
use crate::support::{repo_root, runnel};

/// What the packaged `/etc/runnel/config.yaml` is: `runnel generate-config` with the header
/// and the two service changes. `UPDATE_EXPECT=1` rewrites the file.
#[test]
fn packaged_config_is_the_example_with_the_service_paths() {
    let output = runnel()
        .arg("generate-config")
        .output()
        .unwrap_or_else(|e| panic!("runnel generate-config: {e}"));
    assert!(output.status.success());
    let example = String::from_utf8_lossy(&output.stdout);
    let header = "# Packaged by the runnel .deb as /etc/runnel/config.yaml (a conffile: upgrades keep your edits).
# It is `runnel generate-config` with two changes: runner.file is an absolute path in the
# service's state directory, so `runnel register -c /etc/runnel/config.yaml` writes it there
# from any directory; and shutdown_timeout is 3h, so that `systemctl stop runnel` lets running
# jobs finish (the unit's TimeoutStopSec is 3h5min).
# A test keeps this file in step with the example (packaging::packaged_config_*).
#
";
    let changes = [
        ("\n  file: .runner\n", "\n  file: /var/lib/runnel/.runner\n"),
        ("\n  shutdown_timeout: 0s\n", "\n  shutdown_timeout: 3h\n"),
    ];
    let mut expected = format!("{header}{example}");
    for (from, to) in changes {
        assert_eq!(
            expected.matches(from).count(),
            1,
            "the example lost {from:?}"
        );
        expected = expected.replace(from, to);
    }
    let path = repo_root().join("packaging/deb/config.yaml");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &expected).unwrap_or_else(|e| panic!("{e}"));
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is out of step with `runnel generate-config`; rerun with UPDATE_EXPECT=1",
        path.display()
    );
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        assert!(
            std::env::var_os("RUN_SLOW_TESTS").is_none(),
            "RUN_SLOW_TESTS is set but systemd-analyze is missing (apt-get install systemd)"
        );
        eprintln!("note: skipping: systemd-analyze is not installed");
        return;
    };
    assert!(version.status.success());
    // verify wants ExecStart's binary to exist: point it at the one under test.
    let unit = std::fs::read_to_string(repo_root().join("packaging/systemd/runnel.service"))
        .unwrap_or_else(|e| panic!("{e}"));
    let exec = "ExecStart=/usr/bin/runnel ";
    assert_eq!(unit.matches(exec).count(), 1);
    let unit = unit.replace(
        exec,
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_runnel")),
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("runnel.service");
    std::fs::write(&path, unit).unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze: {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}

/// Receives notify datagrams until `until` matches one or `limit` passes.
fn receive_until(
    socket: &UnixDatagram,
    limit: Duration,
    until: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let started = Instant::now();
    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap_or_else(|e| panic!("{e}"));
    while started.elapsed() < limit {
        if let Ok(n) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            let done = until(&message);
            messages.push(message);
            if done {
                break;
            }
        }
    }
    messages
}

/// A daemon a test started, killed when the test ends without stopping it (a failed
/// assertion): it would otherwise outlive the test, working from a deleted directory.
struct Daemon(Child);

impl std::ops::Deref for Daemon {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn daemon_with_notify(dir: &Path, socket: &str, config: &Path) -> Daemon {
    let child = runnel()
        .current_dir(dir)
        .args(["daemon", "-c"])
        .arg(config)
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", "400000")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log")).map_or(Stdio::null(), Stdio::from))
        .spawn()
        .unwrap_or_else(|e| panic!("runnel daemon: {e}"));
    Daemon(child)
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(matches!(status, Ok(s) if s.success()));
}

fn wait(child: &mut Child, log: &Path) -> std::process::ExitStatus {
    for _ in 0..1200 {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!(
        "daemon did not exit; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// READY=1 comes only after the runner declared itself to the real Gitea, STATUS follows the
/// running jobs, WATCHDOG=1 beats at half of WATCHDOG_USEC, and SIGTERM during a job sends
/// STOPPING=1, lets the job finish (shutdown_timeout) and exits 0; then the same through an
/// abstract `@` socket.
#[test]
fn daemon_speaks_sd_notify_against_gitea() {
    let Some(gitea) = gitea("daemon_speaks_sd_notify_against_gitea") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let label = unique("notify");
    let runner_id = register(gitea, dir.path(), &label);
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "runner:\n  shutdown_timeout: 2m\n  fetch_interval: 1s\n  fetch_interval_max: 1s\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("daemon.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap_or_else(|e| panic!("bind: {e}"));
    let mut child = daemon_with_notify(dir.path(), &socket_path.to_string_lossy(), &config);
    let first = receive_until(&socket, Duration::from_secs(60), &|m| m.contains("READY=1"));
    let ready = first
        .iter()
        .find(|m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 (got {first:?}); log:\n{}", read_log()));
    assert!(
        read_log().contains("declared to"),
        "READY=1 before the declare; log:\n{}",
        read_log()
    );
    assert_eq!(ready, "READY=1\nSTATUS=polling, 0/1 jobs");
    assert!(
        first.iter().all(|m| m.contains("READY=1")),
        "nothing before READY=1: {first:?}"
    );

    // The watchdog beats every 200 ms (half of 400 ms).
    let started = Instant::now();
    let beats = receive_until(&socket, Duration::from_millis(1500), &|_| false);
    let count = beats.iter().filter(|m| *m == "WATCHDOG=1").count();
    println!(
        "measure: {count} WATCHDOG=1 in {:?} (interval 200 ms)",
        started.elapsed()
    );
    assert!((5..=9).contains(&count), "{beats:?}");

    // A job: the status says so; SIGTERM while it runs drains it.
    gitea.push_job(
        &label,
        "      - run: echo started; sleep 4; echo finished\n",
    );
    let busy = receive_until(&socket, Duration::from_secs(60), &|m| {
        m == "STATUS=polling, 1/1 jobs"
    });
    assert!(
        busy.iter().any(|m| m == "STATUS=polling, 1/1 jobs"),
        "{busy:?}; log:\n{}",
        read_log()
    );
    terminate(&child);
    let stopping = receive_until(&socket, Duration::from_secs(10), &|m| {
        m.starts_with("STOPPING=1")
    });
    assert!(
        stopping.iter().any(|m| m
            .starts_with("STOPPING=1\nSTATUS=stopping: no new jobs; waiting for 1 running job(s)")),
        "{stopping:?}"
    );
    let status = wait(&mut child, &log);
    assert!(status.success(), "daemon: {status}; log:\n{}", read_log());
    let job = gitea.completed_job(runner_id, &read_log);
    assert_eq!(job["conclusion"], "success", "{job}");

    // The abstract namespace (`@name`), as systemd itself uses for user managers.
    let name = format!("runnel-it-{}", unique("notify"));
    let address = {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let socket = UnixDatagram::bind_addr(&address).unwrap_or_else(|e| panic!("bind: {e}"));
    let mut child = daemon_with_notify(dir.path(), &format!("@{name}"), &config);
    let first = receive_until(&socket, Duration::from_secs(60), &|m| m.contains("READY=1"));
    assert!(
        first.iter().any(|m| m.starts_with("READY=1")),
        "{first:?}; log:\n{}",
        read_log()
    );
    terminate(&child);
    let stopping = receive_until(&socket, Duration::from_secs(10), &|m| {
        m.starts_with("STOPPING=1")
    });
    assert!(
        stopping.iter().any(|m| m.starts_with("STOPPING=1")),
        "{stopping:?}"
    );
    assert!(wait(&mut child, &log).success(), "log:\n{}", read_log());
}

/// With a Gitea that does not answer, the daemon never says READY=1 and exits with an error.
#[test]
fn daemon_is_never_ready_when_the_declare_fails() {
    if !slow(
        "daemon_is_never_ready_when_the_declare_fails",
        "time for the client's retries",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"));
    // The listener is dropped: nothing answers on that port now.
    std::fs::write(
        dir.path().join(".runner"),
        format!(
            r#"{{"id": 1, "uuid": "00000000-0000-0000-0000-000000000001", "name": "n", "token": "t", "address": "http://{closed}", "labels": ["x:host"]}}"#
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "log:\n  level: info\n").unwrap_or_else(|e| panic!("{e}"));
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap_or_else(|e| panic!("bind: {e}"));
    let log = dir.path().join("daemon.log");
    let mut child = daemon_with_notify(dir.path(), &socket_path.to_string_lossy(), &config);
    let status = wait(&mut child, &log);
    let said = receive_until(&socket, Duration::from_millis(200), &|_| false);
    assert!(!status.success(), "the daemon should fail");
    assert!(said.is_empty(), "nothing may be sent: {said:?}");
}
