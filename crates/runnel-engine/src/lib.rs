//! The job engine: runs one job's steps from setup to result, and a driver that runs a
//! workflow's jobs in `needs` order.
//!
//! Owns: contexts and env precedence, step kinds, the output pipeline (line splitting,
//! workflow commands, masking), env files, step and job results, timeouts and cancellation.
//! Must not: know Docker, HTTP or Gitea. It talks to [`backend::Backend`] (where steps run),
//! to a [`LogSink`] (where output goes) and to an [`actions::ActionSource`] (where repository
//! actions come from; the default one runs `git` on this machine).
//!
//! Entry points:
//! - [`run_workflow`]: every job of a workflow (or one, `RunOptions::job_filter`) with real
//!   `needs` results, concurrency limits, `fail-fast` and `max-parallel`; returns a
//!   [`WorkflowResult`] for a summary. This is what `runnel run` calls.
//! - [`run_job`]: one planned job instance with given `needs` results (what the daemon calls
//!   for a task Gitea hands out).
//!
//! Steps: `run:`, and `uses:` of composite, JavaScript and container actions (local, from a
//! repository through an [`actions::ActionSource`], or a full URL; `docker://` images). Container
//! steps run through `JobEnvironment::run_container`; on a backend without step containers
//! they fail with a message saying so.

pub mod actions;
pub mod backend;
mod call_frame;
mod contexts;
mod driver;
mod grants;
mod hash_files;
mod image_os;
mod job;
mod options;
pub mod output;
mod reusable;
pub mod runner_env;
mod shell;
mod sink;

pub use contexts::StrategyInfo;
pub use driver::{RunError, run_job, run_workflow};
pub use grants::{GrantError, GrantRequest, JobGrant, RunnerGrants};
pub use job::JobRequest;
pub use options::{
    JobOutcome, RunOptions, RunnerInfo, ServerUrls, StepSummary, WorkflowResult, cache_home,
    replace_origin,
};
pub use runnel_plan::JobResult;
pub use sink::{
    Annotation, AnnotationLevel, JobRef, LogEvent, LogRecord, LogSink, MemorySink, RunnerLevel,
    StepRef, StepStatus, Stream,
};

/// `error` and its causes, `: `-joined.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}
