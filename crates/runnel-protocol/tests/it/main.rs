//! Integration tests of `runnel-protocol`: every call, over both transports, against a real
//! Gitea built and started by `tests/gitea/` (slow: they run only with `RUN_SLOW_TESTS=1`).

mod calls;
mod gitea;
mod mock;
mod task;
mod tls;

use runnel_protocol::proto::runner;
use runnel_protocol::{Client, ClientConfig, Identity, RetryPolicy, Transport};

/// Both ways to reach Gitea; tests run once per entry.
const TRANSPORTS: [Transport; 2] = [Transport::Connect, Transport::Grpc];

fn config(gitea: &gitea::Gitea, transport: Transport) -> ClientConfig {
    let mut config = ClientConfig::new(&gitea.url, "0.0.0-test");
    config.transport = transport;
    config.insecure_tls = gitea.https;
    config
}

fn client(gitea: &gitea::Gitea, transport: Transport) -> Client {
    match Client::new(config(gitea, transport)) {
        Ok(client) => client,
        Err(e) => panic!("client for {}: {e}", gitea.url),
    }
}

/// Registers a fresh runner with `labels` and returns a client acting as it.
async fn registered(
    gitea: &gitea::Gitea,
    transport: Transport,
    labels: &[String],
) -> (Client, runner::Runner) {
    let anonymous = client(gitea, transport);
    let name = gitea::unique(&format!("it-{transport:?}").to_lowercase());
    let request = runner::RegisterRequest {
        name,
        token: gitea.registration_token.clone(),
        version: "0.0.0-test".to_owned(),
        labels: labels.to_vec(),
        ..Default::default()
    };
    let runner = match anonymous.register(request).await {
        Ok(runner) => runner,
        Err(e) => panic!("register over {transport:?}: {}", chain(&e)),
    };
    let identity = Identity {
        uuid: runner.uuid.clone(),
        token: runner.token.clone(),
    };
    match anonymous.with_identity(identity) {
        Ok(client) => (client, runner),
        Err(e) => panic!("identity: {e}"),
    }
}

/// An error with all its causes, for failure messages.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// No retries, so error tests see the first answer.
fn no_retries(mut config: ClientConfig) -> ClientConfig {
    config.retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::STANDARD
    };
    config
}
