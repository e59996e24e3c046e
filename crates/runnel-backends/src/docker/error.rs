//! The Docker backend's error: what it was doing (the operation a job's error names first),
//! on which object, and the cause as `source` — the engine's answer (bollard's error), a file
//! system error, the allow-list's refusal, a failed pull. It leaves the backend as
//! `BackendError::Backend`, boxed whole, so the chain down to bollard's error is kept.
//!
//! Each message repeats its cause's text (as `BackendError::Io` does): jobs, the CLI and the
//! daemon print errors with `{}`, and users and tests know these exact words.
//!
//! Must not: build a message from a cause's text anywhere but in a `#[error]` here.

use std::path::PathBuf;

use runnel_engine::backend::BackendError;

use super::image::PullError;
use super::options::OptionError;
use super::services::LOG_LINES;

#[derive(Debug, thiserror::Error)]
pub(crate) enum DockerError {
    /// A call to the engine about `subject` (a container, image, network or program, with
    /// what was done to it when the operation does not say) failed.
    #[error("{subject}: {source}")]
    Engine {
        operation: &'static str,
        subject: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// Reading or writing a file, an archive or a pipe about `subject` failed.
    #[error("{subject}: {source}")]
    Io {
        operation: &'static str,
        subject: String,
        #[source]
        source: std::io::Error,
    },
    /// The allow-list refused `subject`'s `options:`, `volumes:` or `ports:`.
    #[error("{subject}: {source}")]
    Refused {
        operation: &'static str,
        subject: String,
        #[source]
        source: OptionError,
    },

    /// The engine at `target` did not answer the version handshake.
    #[error("{target} does not answer ({source}); is dockerd running?")]
    Unanswered {
        target: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The runner's own `container.options` are refused.
    #[error("{source}")]
    RunnerOptions {
        #[source]
        source: OptionError,
    },
    #[error("cannot read {}: {source}", .path.display())]
    CaUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate", .path.display())]
    CaNotPem { path: PathBuf },
    /// A background removal task ended without a result (it panicked or was aborted).
    #[error("{source}")]
    TeardownTask {
        #[source]
        source: tokio::task::JoinError,
    },

    #[error("job `{job_key}` has no image: the Docker backend runs jobs in a container")]
    NoJobImage { job_key: String },
    #[error(
        "network `{name}` (container.network) does not exist; create it with \
         `docker network create {name}`, or leave container.network empty"
    )]
    NoNetwork { name: String },
    /// Boxed: a pull error is the largest by far.
    #[error(transparent)]
    Pull(Box<PullError>),

    #[error(
        "services `{first}` and `{second}` both listen on port {port}: services share the job \
         container's network namespace (so that `localhost:{number}` works), and only one of \
         them can bind a port. Remove one, or configure one to listen on another port",
        number = port_number(.port)
    )]
    PortConflict {
        first: String,
        second: String,
        /// As Docker writes it: `5432/tcp`.
        port: String,
    },
    #[error("service `{service}`: cancelled while starting")]
    ServiceCancelled { service: String },
    #[error("{}", not_ready(.service, .problem, .last_check.as_deref(), .logs))]
    ServiceNotReady {
        service: String,
        problem: ServiceProblem,
        /// The last health check's output, when it printed something.
        last_check: Option<String>,
        /// The tail of the service's log, or a note saying why there is none.
        logs: String,
    },

    #[error("{program}: Docker started it detached")]
    ExecDetached { program: String },
    #[error("{program}: its output ended but Docker still reports it running")]
    ExecStillRunning { program: String },
    #[error("{program}: its output ended but no exit status arrived")]
    AgentNoStatus { program: String },
    #[error("{program}: the exec agent reported `{status}`, not an exit status")]
    AgentBadStatus { program: String, status: String },

    #[error("{path}: not an absolute path to a file")]
    NotAbsolute { path: String },
    #[error("{path}: {existing} is not a directory")]
    NotADirectory { path: String, existing: String },
    #[error("{path} is a directory")]
    IsADirectory { path: String },
    /// A symbolic link where the runner reads a file back (never followed).
    #[error("{path} {}", runnel_engine::backend::LINK_REFUSED)]
    IsALink { path: String },

    #[error("{context}/{dockerfile} does not exist")]
    NoDockerfile { context: String, dockerfile: String },
    #[error("build of {context} cancelled")]
    BuildCancelled { context: String },
    /// The build reported an error; `tail` ends with it.
    #[error("{}", build_failure(.context, .tail))]
    BuildFailed { context: String, tail: Vec<String> },
    /// The build's stream broke after `tail`.
    #[error("{}", build_failure(.context, &with_cause(.tail, .source)))]
    BuildBroken {
        context: String,
        tail: Vec<String>,
        #[source]
        source: bollard::errors::Error,
    },
    /// The build ended without tagging the image (the classic builder's way to fail).
    #[error("{}\n{source}", build_failure(.context, .tail))]
    BuildUntagged {
        context: String,
        tail: Vec<String>,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "{path} cannot be shared with a step container: it is not on a volume of the job \
         container"
    )]
    NotShareable { path: String },
    #[error("{image}: its output ended but Docker reports no exit")]
    NoExit { image: String },
    /// The job container stopped or was removed while the job ran (by someone else, the OOM
    /// killer, a restart of the engine).
    #[error("job container `{container}` is no longer running: {reason}")]
    ContainerGone { container: String, reason: String },
}

impl DockerError {
    /// What the backend was doing: the first words of the job's error.
    pub(crate) fn operation(&self) -> &'static str {
        use DockerError::*;
        match self {
            Engine { operation, .. } | Io { operation, .. } | Refused { operation, .. } => {
                operation
            }
            Unanswered { .. } => "connect to Docker",
            RunnerOptions { .. } => "check the Docker backend config",
            CaUnreadable { .. } | CaNotPem { .. } => "trust the configured CA bundle",
            TeardownTask { .. } => "tear down a job",
            NoJobImage { .. } => "prepare Docker job",
            NoNetwork { .. } => "join the configured job network",
            Pull(_) => "get image",
            PortConflict { .. } | ServiceCancelled { .. } | ServiceNotReady { .. } => {
                "start services"
            }
            ExecDetached { .. }
            | ExecStillRunning { .. }
            | AgentNoStatus { .. }
            | AgentBadStatus { .. } => "exec in container",
            NotAbsolute { .. } | NotADirectory { .. } => "write file in container",
            IsADirectory { .. } | IsALink { .. } => "read file in container",
            NoDockerfile { .. }
            | BuildCancelled { .. }
            | BuildFailed { .. }
            | BuildBroken { .. }
            | BuildUntagged { .. } => "build action image",
            NotShareable { .. } | NoExit { .. } => "run step container",
            ContainerGone { .. } => "run job",
        }
    }

    /// For `map_err` on a call to the engine about `subject`.
    pub(crate) fn engine(
        operation: &'static str,
        subject: &str,
    ) -> impl FnOnce(bollard::errors::Error) -> DockerError + use<> {
        let subject = subject.to_owned();
        move |source| DockerError::Engine {
            operation,
            subject,
            source,
        }
    }

    /// The error as `BackendError::Failed`: the same text, without the chain. For errors that
    /// `runnel doctor` prints with anyhow's `{:#}` (the connection's), where a source would
    /// print its cause a second time. FIXME: convert with `?` once doctor prints `{}`.
    pub(crate) fn flattened(self) -> BackendError {
        BackendError::Failed {
            operation: self.operation().to_owned(),
            message: self.to_string(),
        }
    }
}

impl From<DockerError> for BackendError {
    fn from(error: DockerError) -> BackendError {
        BackendError::Backend {
            operation: error.operation().to_owned(),
            source: Box::new(error),
        }
    }
}

impl From<PullError> for DockerError {
    fn from(error: PullError) -> DockerError {
        DockerError::Pull(Box::new(error))
    }
}

/// Why a service is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ServiceProblem {
    #[error("exited with code {code}")]
    Exited { code: i64 },
    #[error("is unhealthy")]
    Unhealthy,
    #[error("did not become healthy within {seconds}s")]
    TimedOut { seconds: u64 },
}

/// `5432/tcp` → `5432`.
fn port_number(port: &str) -> &str {
    port.split('/').next().unwrap_or(port)
}

fn not_ready(
    service: &str,
    problem: &ServiceProblem,
    last_check: Option<&str>,
    logs: &str,
) -> String {
    let mut message = format!("service `{service}` {problem}");
    if let Some(output) = last_check.filter(|output| !output.trim().is_empty()) {
        message.push_str("\nlast health check output:\n");
        message.push_str(output.trim_end());
    }
    message.push_str(&format!("\nlast {LOG_LINES} lines of its log:\n"));
    message.push_str(logs.trim_end());
    message
}

fn build_failure(context: &str, tail: &[String]) -> String {
    format!(
        "building {context} failed; last output:\n{}",
        tail.join("\n")
    )
}

fn with_cause(tail: &[String], cause: &bollard::errors::Error) -> Vec<String> {
    let mut lines = tail.to_vec();
    lines.push(cause.to_string());
    lines
}

#[cfg(test)]
mod tests;
