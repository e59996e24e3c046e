//! The `vm` backend's guest side: the [`protocol`] the runner and the agent speak over the
//! job VM's virtio-serial port, and (in `main.rs`) the agent itself, which runs as PID 1 in the
//! guest and answers exec, kill, write/read file and program look-ups, with the [`reaper`] that
//! collects every child that exits (its own and those it inherits as PID 1).
//!
//! Must not: depend on tokio or anything of the runner; the agent is a small std-only binary
//! that the runner shares into every guest.

pub mod protocol;
pub mod reaper;
