//! `runnel register`: check that Gitea answers, register with a registration token, and write
//! the `.runner` file in the peer's layout.
//!
//! Owns: validating labels before anything is sent, the Ping-then-Register sequence and the
//! file. Must not: prompt (the CLI asks the questions) or overwrite an existing registration.

use std::path::PathBuf;
use std::time::Duration;

use runnel_config::{Label, LabelError};
use runnel_protocol::proto::runner::RegisterRequest;
use runnel_protocol::runner_file::{RunnerFile, RunnerFileError};
use runnel_protocol::{Client, ClientConfig, ConfigError as ClientConfigError};

use crate::transport;

/// What to register.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    /// The Gitea instance URL.
    pub instance: String,
    /// The registration token.
    pub token: String,
    /// The runner's name.
    pub name: String,
    /// Full label strings (`name`, `name:host`, `name:docker://image`).
    pub labels: Vec<String>,
    /// One job, then Gitea deletes the runner (Gitea 1.24+).
    pub ephemeral: bool,
    /// Where to write the registration.
    pub runner_file: PathBuf,
    /// Accept any TLS certificate.
    pub insecure: bool,
    pub transport: runnel_config::TransportChoice,
    /// This runner's version, sent to Gitea.
    pub version: String,
    /// How long to keep pinging an unreachable instance.
    pub ping_timeout: Duration,
}

/// Why registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("invalid labels: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Labels(Vec<LabelError>),
    #[error("an instance URL and a registration token are needed")]
    Missing,
    #[error("cannot set up a client for {instance}")]
    Client {
        instance: String,
        #[source]
        source: ClientConfigError,
    },
    #[error("Gitea at {instance} did not answer within {seconds} s")]
    Unreachable {
        instance: String,
        seconds: u64,
        #[source]
        source: runnel_protocol::Error,
    },
    #[error("registering with {instance} failed")]
    Register {
        instance: String,
        #[source]
        source: runnel_protocol::Error,
    },
    #[error(transparent)]
    File(#[from] RunnerFileError),
}

/// Registers a runner and writes its `.runner` file; returns what was written.
pub async fn register(options: &RegisterOptions) -> Result<RunnerFile, RegisterError> {
    if options.instance.trim().is_empty() || options.token.trim().is_empty() {
        return Err(RegisterError::Missing);
    }
    let (labels, errors) = runnel_config::parse_labels(&options.labels);
    if !errors.is_empty() {
        return Err(RegisterError::Labels(errors));
    }
    if options.runner_file.exists() {
        // As the Gitea runner: a new registration replaces the file (the old runner stays
        // listed in Gitea until someone removes it there).
        match RunnerFile::load(&options.runner_file) {
            Ok(existing) => tracing::warn!(
                path = %options.runner_file.display(),
                "replacing the registration of runner `{}` (id {}) in the runner file",
                existing.name,
                existing.id
            ),
            Err(error) => tracing::warn!(
                path = %options.runner_file.display(),
                %error,
                "replacing an unreadable runner file"
            ),
        }
    }
    let mut config = ClientConfig::new(&options.instance, &options.version);
    config.insecure_tls = options.insecure;
    config.transport = transport(options.transport);
    let client = Client::new(config).map_err(|source| RegisterError::Client {
        instance: options.instance.clone(),
        source,
    })?;
    ping_until_up(&client, options).await?;
    let names: Vec<String> = labels.iter().map(|l: &Label| l.name.clone()).collect();
    let request = register_request(options, names);
    let runner = client
        .register(request)
        .await
        .map_err(|source| RegisterError::Register {
            instance: options.instance.clone(),
            source,
        })?;
    if options.ephemeral && !runner.ephemeral {
        tracing::warn!(
            "Gitea did not accept the runner as ephemeral (it needs Gitea 1.24+); the daemon will still run one job and exit"
        );
    }
    let file = RunnerFile {
        id: runner.id,
        uuid: runner.uuid,
        name: runner.name,
        token: runner.token,
        address: options.instance.clone(),
        labels: options.labels.clone(),
        ephemeral: options.ephemeral,
    };
    file.save(&options.runner_file)?;
    Ok(file)
}

/// The request, with the names also in the deprecated `agent_labels`, which Gitea 1.20 and
/// older read instead of `labels` (the peer sends both).
#[allow(deprecated)]
fn register_request(options: &RegisterOptions, names: Vec<String>) -> RegisterRequest {
    RegisterRequest {
        name: options.name.clone(),
        token: options.token.trim().to_owned(),
        agent_labels: names.clone(),
        custom_labels: Vec::new(),
        version: options.version.clone(),
        labels: names,
        ephemeral: options.ephemeral,
        capabilities: Vec::new(),
    }
}

/// Pings once a second until Gitea answers or `ping_timeout` passes (a runner is often
/// registered while Gitea is still starting).
async fn ping_until_up(client: &Client, options: &RegisterOptions) -> Result<(), RegisterError> {
    let deadline = tokio::time::Instant::now() + options.ping_timeout;
    loop {
        match client.ping(&options.name).await {
            Ok(_) => return Ok(()),
            Err(error) if error.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %crate::reporter::error_chain(&error), "Gitea does not answer yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(source) => {
                return Err(RegisterError::Unreachable {
                    instance: options.instance.clone(),
                    seconds: options.ping_timeout.as_secs(),
                    source,
                });
            }
        }
    }
}
