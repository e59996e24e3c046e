//! systemd's notify protocol (`sd_notify`): readiness, status lines, watchdog keep-alives and
//! "stopping", sent as datagrams to `$NOTIFY_SOCKET` when systemd (or a test harness) sets it.
//!
//! Owns: the socket address (a file path, or `@name` in Linux's abstract namespace), the
//! messages, and the watchdog timer (`WATCHDOG=1` every half of `$WATCHDOG_USEC`). Must not:
//! decide when the daemon is ready (the daemon calls [`Systemd::start`] once the runner has
//! declared itself), count jobs (it reads the daemon's `Metrics`), or fail the daemon: a notify socket that refuses a datagram is logged once
//! and otherwise ignored. Without `$NOTIFY_SOCKET` everything here does nothing.
//!
//! The watchdog beats from its own task for as long as the process lives, also while a
//! SIGTERM drain waits for running jobs: a drain is healthy, and systemd's stop timeout, not
//! the watchdog, bounds it. Jobs never see `$NOTIFY_SOCKET`: the host backend clears the
//! environment of every step.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the status line is brought up to date (sent only when it changed).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// The service manager's side of the daemon; does nothing when there is no notify socket.
pub(crate) struct Systemd;

struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    last_status: Mutex<String>,
    stopping: AtomicBool,
    warned: AtomicBool,
}

impl Systemd {
    /// Sends `READY=1` with a first status line, then, from a task of its own, `STATUS=` when
    /// the number of running jobs (read from `metrics`) changes, `WATCHDOG=1` when
    /// `$WATCHDOG_USEC` asks for it, and `STOPPING=1` once `shutdown` is cancelled. Called once
    /// the runner has declared itself to Gitea, right before polling starts.
    ///
    /// The returned guard sends `STOPPING=1` when dropped if the task has not sent it yet: a
    /// daemon with no running job returns right after the shutdown signal, and the runtime may
    /// drop the task before it sees the cancellation. Keep the guard until the daemon returns.
    #[must_use = "dropping the guard tells systemd the runner is stopping"]
    pub(crate) fn start(metrics: Arc<Metrics>, shutdown: &CancellationToken) -> StoppingGuard {
        let Some(notifier) = Notifier::from_env() else {
            return StoppingGuard(None);
        };
        let notifier = Arc::new(notifier);
        let status = polling_status(metrics.jobs_and_capacity());
        notifier.send(&format!("READY=1\nSTATUS={status}"));
        if let Ok(mut last) = notifier.last_status.lock() {
            *last = status;
        }
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        tracing::info!(watchdog = ?watchdog, "told systemd the runner is ready");
        tokio::spawn(keep_alive(
            notifier.clone(),
            metrics,
            watchdog,
            shutdown.clone(),
        ));
        StoppingGuard(Some(notifier))
    }
}

/// Sends `STOPPING=1` on drop unless it was already sent (see [`Systemd::start`]).
pub(crate) struct StoppingGuard(Option<Arc<Notifier>>);

impl Drop for StoppingGuard {
    fn drop(&mut self) {
        if let Some(notifier) = &self.0
            && !notifier.stopping.swap(true, Ordering::Relaxed)
        {
            notifier.send("STOPPING=1\nSTATUS=stopped");
        }
    }
}

fn polling_status((running, capacity): (i64, i64)) -> String {
    format!("polling, {running}/{capacity} jobs")
}

impl Notifier {
    fn from_env() -> Option<Notifier> {
        let text = std::env::var_os("NOTIFY_SOCKET")?;
        let text = text.to_string_lossy();
        let address = match parse_address(&text) {
            Ok(address) => address,
            Err(reason) => {
                tracing::warn!(notify_socket = %text, "NOTIFY_SOCKET ignored: {reason}");
                return None;
            }
        };
        let socket = match UnixDatagram::unbound() {
            Ok(socket) => socket,
            Err(error) => {
                tracing::warn!(%error, "cannot create a socket for systemd notifications");
                return None;
            }
        };
        // A receiver that stops reading must never block a runtime thread.
        if let Err(error) = socket.set_nonblocking(true) {
            tracing::warn!(%error, "cannot make the notify socket non-blocking");
            return None;
        }
        Some(Notifier {
            socket,
            address,
            last_status: Mutex::new(String::new()),
            stopping: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        })
    }

    fn set_status(&self, status: String) {
        let Ok(mut last) = self.last_status.lock() else {
            return;
        };
        if *last != status {
            self.send(&format!("STATUS={status}"));
            *last = status;
        }
    }

    fn send(&self, message: &str) {
        if let Err(error) = self.socket.send_to_addr(message.as_bytes(), &self.address)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(%error, "cannot send to NOTIFY_SOCKET (further failures are not logged)");
        }
    }
}

/// Beats the watchdog, keeps the status line current, and sends `STOPPING=1` once `shutdown`
/// is cancelled.
async fn keep_alive(
    notifier: Arc<Notifier>,
    metrics: Arc<Metrics>,
    watchdog: Option<Duration>,
    shutdown: CancellationToken,
) {
    let mut beats = watchdog.map(tokio::time::interval);
    let mut status_ticks = tokio::time::interval(STATUS_EVERY);
    loop {
        let beat = async {
            match beats.as_mut() {
                Some(beats) => {
                    beats.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = beat => notifier.send("WATCHDOG=1"),
            _ = status_ticks.tick(), if !notifier.stopping.load(Ordering::Relaxed) => {
                notifier.set_status(polling_status(metrics.jobs_and_capacity()));
            }
            () = shutdown.cancelled(), if !notifier.stopping.load(Ordering::Relaxed) => {
                if !notifier.stopping.swap(true, Ordering::Relaxed) {
                    let (running, _) = metrics.jobs_and_capacity();
                    let status = format!(
                        "stopping: no new jobs; waiting for {running} running job(s) up to shutdown_timeout"
                    );
                    notifier.send(&format!("STOPPING=1\nSTATUS={status}"));
                }
                if beats.is_none() {
                    return;
                }
            }
        }
    }
}

/// `$NOTIFY_SOCKET` as a socket address: an absolute path, or `@name` in the abstract namespace.
fn parse_address(text: &str) -> Result<SocketAddr, String> {
    if let Some(name) = text.strip_prefix('@') {
        return abstract_address(name);
    }
    if text.starts_with('/') {
        return SocketAddr::from_pathname(text).map_err(|e| e.to_string());
    }
    Err("only a path or an @abstract name is supported".to_owned())
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &str) -> Result<SocketAddr, String> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| e.to_string())
}

#[cfg(not(target_os = "linux"))]
fn abstract_address(_name: &str) -> Result<SocketAddr, String> {
    Err("abstract socket names exist only on Linux".to_owned())
}

/// Half of `$WATCHDOG_USEC`, when it is set, valid, and meant for this process.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let path = parse_address("/run/systemd/notify").map(|a| a.as_pathname().is_some());
        assert_eq!(path, Ok(true));
        assert!(parse_address("relative/path").is_err());
        assert!(parse_address("vsock:2:1234").is_err());
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let address =
                parse_address("@runnel/notify").map(|a| a.as_abstract_name().map(<[u8]>::to_vec));
            assert_eq!(address, Ok(Some(b"runnel/notify".to_vec())));
        }
    }

    #[test]
    fn watchdog_is_half_the_timeout_and_only_for_this_process() {
        let half = Some(Duration::from_secs(15));
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
    }

    #[tokio::test]
    async fn messages_reach_an_abstract_socket() {
        let name = format!("runnel-notify-test-{}", std::process::id());
        let Ok(address) = abstract_address(&name) else {
            return;
        };
        let receiver = UnixDatagram::bind_addr(&address).unwrap_or_else(|e| panic!("bind: {e}"));
        let notifier = Notifier {
            socket: UnixDatagram::unbound().unwrap_or_else(|e| panic!("socket: {e}")),
            address,
            last_status: Mutex::new(String::new()),
            stopping: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        };
        notifier.set_status(polling_status((1, 4)));
        notifier.set_status(polling_status((1, 4)));
        notifier.set_status(polling_status((2, 4)));
        let mut buffer = [0u8; 256];
        let mut received = Vec::new();
        receiver
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        while let Ok(n) = receiver.recv(&mut buffer) {
            received.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
        assert_eq!(
            received,
            ["STATUS=polling, 1/4 jobs", "STATUS=polling, 2/4 jobs"],
            "an unchanged status is not sent again"
        );
    }
}
