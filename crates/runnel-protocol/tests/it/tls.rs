//! Both transports over TLS (Gitea serving HTTPS with a self-signed certificate): accepted with
//! insecure TLS, refused with a permanent TLS error otherwise.

use runnel_protocol::{Cause, Client, Transport};

use crate::gitea::{Instance, gitea};
use crate::{TRANSPORTS, chain, client, config, registered};

#[tokio::test]
async fn both_transports_work_over_tls_with_insecure_verification() {
    let Some(gitea) = gitea(
        "both_transports_work_over_tls_with_insecure_verification",
        Instance::Https,
    ) else {
        return;
    };
    assert!(gitea.url.starts_with("https://"), "{}", gitea.url);
    for transport in TRANSPORTS {
        match client(gitea, transport).ping("tls").await {
            Ok(greeting) => assert_eq!(greeting, "Hello, tls!"),
            Err(e) => panic!("ping over {transport:?}: {}", chain(&e)),
        }
        let (client, _runner) = registered(gitea, transport, &["tls".to_owned()]).await;
        match client.fetch_task(0).await {
            Ok(response) => assert!(response.task.is_none()),
            Err(e) => panic!("fetch over {transport:?}: {}", chain(&e)),
        }
    }
    // Directly reachable over TLS with ALPN h2, so Auto picks gRPC here too.
    let auto = client(gitea, Transport::Auto);
    if let Err(e) = auto.ping("x").await {
        panic!("auto: {}", chain(&e));
    }
    assert_eq!(auto.transport(), Transport::Grpc);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_permanent_tls_error() {
    let Some(gitea) = gitea(
        "an_untrusted_certificate_is_a_permanent_tls_error",
        Instance::Https,
    ) else {
        return;
    };
    for transport in [Transport::Connect, Transport::Grpc, Transport::Auto] {
        let mut config = config(gitea, transport);
        config.insecure_tls = false;
        let client = Client::new(config).unwrap_or_else(|e| panic!("{e}"));
        match client.ping("x").await {
            Ok(_) => panic!("{transport:?}: trusted a self-signed certificate"),
            Err(error) => {
                assert!(
                    matches!(error.cause, Cause::Tls(_)),
                    "{transport:?}: {}",
                    chain(&error)
                );
                assert!(!error.is_transient());
                assert_eq!(error.attempts, 1, "{transport:?}");
            }
        }
    }
}
