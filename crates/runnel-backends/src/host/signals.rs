//! Steps start with the default signal dispositions, whatever runnel started with. A runner
//! started as `nohup runnel … &` has SIGHUP (and, from a non-interactive shell's `&`, SIGINT
//! and SIGQUIT) ignored, and an ignored signal stays ignored across `exec`: every step would
//! inherit that, and `kill -INT` of a test server, Ctrl-C handling in a tool or a shell's
//! `trap … INT` would silently stop working. A caught signal, on the other hand, is reset to
//! its default at `exec`. So each of those signals that is ignored here is caught instead,
//! and what arrives is dropped: runnel itself still ignores it, its steps do not.
//!
//! Must not: change a disposition that is not "ignored" (runnel's own handlers stay).

use tokio::signal::unix::{SignalKind, signal};

/// The signals a step's processes expect at their default.
const RESTORED: [(i32, fn() -> SignalKind); 3] = [
    (1, SignalKind::hangup),
    (2, SignalKind::interrupt),
    (3, SignalKind::quit),
];

/// Catches (and drops) each of SIGHUP, SIGINT and SIGQUIT that this process ignores, so
/// processes it starts get the default disposition. Needs a Tokio runtime; returns the
/// signals it took over.
pub fn restore_default_signals_for_steps() -> Vec<i32> {
    let ignored = ignored_signals();
    let mut restored = Vec::new();
    for (number, kind) in RESTORED {
        if ignored & (1 << (number - 1)) == 0 {
            continue;
        }
        match signal(kind()) {
            Ok(mut stream) => {
                tokio::spawn(async move { while stream.recv().await.is_some() {} });
                restored.push(number);
            }
            Err(error) => {
                tracing::warn!(%error, signal = number, "steps will inherit an ignored signal");
            }
        }
    }
    restored
}

/// The `SigIgn` mask of `/proc/self/status` (bit n-1 for signal n); 0 when unreadable.
fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("SigIgn:"))?;
            u64::from_str_radix(line.trim_start_matches("SigIgn:").trim(), 16).ok()
        })
        .unwrap_or(0)
}
