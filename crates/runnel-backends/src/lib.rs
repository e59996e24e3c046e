//! Backend implementations of `runnel_engine::backend::Backend`.
//!
//! Owns: `host` (steps as process groups in a per-job work directory) and `docker` (a pod per
//! job: job container + services sharing its network namespace), `vm` (a microVM per job, steps
//! run by a guest agent), and `tree_copy` (a job's
//! own copy of the user's working tree). Must not: parse workflows.

pub mod docker;
pub mod host;
pub mod kubernetes;
mod tree_copy;
pub mod vm;
