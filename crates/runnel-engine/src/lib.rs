//! The job engine: runs one job's steps from setup to result, and a driver that runs a
//! workflow's jobs in `needs` order.
//!
//! Owns: contexts and env precedence, step kinds, the output pipeline (line splitting,
//! workflow commands, masking), env files, step and job results, timeouts and cancellation.
//! Must not: know Docker, HTTP or Gitea. It talks to [`backend::Backend`] (where steps run)
//! and to a log sink (where output goes).

pub mod backend;
pub mod output;
