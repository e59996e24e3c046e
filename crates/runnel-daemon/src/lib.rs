//! The Gitea runner: `register` (a `.runner` file the peer can also read), and the daemon that
//! declares its labels, fetches tasks with one poller, runs up to `capacity` of them through
//! `runnel_engine`, and reports log rows, step states, outputs and results back.
//!
//! Owns: everything between the protocol client and the engine. Must not: print to a terminal
//! (it logs through `tracing`; the CLI installs the subscriber) or prompt; parse config files
//! (`runnel-config`) or speak the wire protocol itself (`runnel-protocol`).
//!
//! Entry points: [`register`] and [`run_daemon`] (with [`cancel_on_signals`] for SIGTERM and
//! SIGINT), and [`doctor::doctor`], the checks of a runner's setup. The caller hands in the runner's [`runnel_assembly::Assembly`] (its backends, cache
//! service and base options), made from the same config.

mod context;
mod daemon;
pub mod doctor;
mod health;
mod job_log;
mod metrics;
mod notify;
mod register;
mod reload;
mod reporter;
mod spool;
mod summary;
mod task;

pub use daemon::{DaemonError, DaemonOptions, cancel_on_signals, run_daemon};
pub use register::{RegisterError, RegisterOptions, register};

/// The config's transport choice in the client's terms.
fn transport(choice: runnel_config::TransportChoice) -> runnel_protocol::Transport {
    match choice {
        runnel_config::TransportChoice::Auto => runnel_protocol::Transport::Auto,
        runnel_config::TransportChoice::Connect => runnel_protocol::Transport::Connect,
        runnel_config::TransportChoice::Grpc => runnel_protocol::Transport::Grpc,
    }
}
