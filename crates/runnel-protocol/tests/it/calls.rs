//! Ping, Register, Declare, FetchTask without a task, and the errors a runner must tell apart.

use runnel_protocol::{Cause, Client, Identity, Rpc, Transport};

use crate::gitea::{Instance, gitea};
use crate::{TRANSPORTS, chain, client, config, no_retries, registered};

#[tokio::test]
async fn ping_answers_over_every_transport() {
    let Some(gitea) = gitea("ping_answers_over_every_transport", Instance::Http) else {
        return;
    };
    for transport in [Transport::Connect, Transport::Grpc, Transport::Auto] {
        let client = client(gitea, transport);
        match client.ping("runnel").await {
            Ok(greeting) => assert_eq!(greeting, "Hello, runnel!", "{transport:?}"),
            Err(e) => panic!("ping over {transport:?}: {}", chain(&e)),
        }
    }
}

#[tokio::test]
async fn auto_settles_on_grpc_when_gitea_is_reached_directly() {
    let Some(gitea) = gitea(
        "auto_settles_on_grpc_when_gitea_is_reached_directly",
        Instance::Http,
    ) else {
        return;
    };
    let client = client(gitea, Transport::Auto);
    assert_eq!(client.transport(), Transport::Auto);
    if let Err(e) = client.ping("x").await {
        panic!("ping: {}", chain(&e));
    }
    assert_eq!(client.transport(), Transport::Grpc);
}

#[tokio::test]
async fn register_declare_and_fetch_without_a_task() {
    let Some(gitea) = gitea("register_declare_and_fetch_without_a_task", Instance::Http) else {
        return;
    };
    for transport in TRANSPORTS {
        let labels = vec![crate::gitea::unique("idle")];
        let (client, runner) = registered(gitea, transport, &labels).await;
        assert!(
            !runner.uuid.is_empty() && !runner.token.is_empty(),
            "{runner:?}"
        );
        assert_eq!(runner.labels, labels);

        // The runner is visible to the admin.
        let listed = gitea.api(
            "GET",
            &format!("/admin/actions/runners/{}", runner.id),
            None,
        );
        let listed = listed.unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        assert_eq!(listed["name"], runner.name.as_str(), "{listed}");

        let declared_labels = vec![labels[0].clone(), "second".to_owned()];
        let declared = match client.declare("1.2.3-test", &declared_labels).await {
            Ok(declared) => declared,
            Err(e) => panic!("declare over {transport:?}: {}", chain(&e)),
        };
        assert_eq!(declared.labels, declared_labels);
        assert_eq!(declared.version, "1.2.3-test");
        let listed = gitea.api(
            "GET",
            &format!("/admin/actions/runners/{}", runner.id),
            None,
        );
        let listed = listed.unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        let mut names: Vec<&str> = listed["labels"]
            .as_array()
            .map(|labels| labels.iter().filter_map(|l| l["name"].as_str()).collect())
            .unwrap_or_default();
        names.sort_unstable();
        let mut expected: Vec<&str> = declared_labels.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(names, expected, "{listed}");

        let first = match client.fetch_task(0).await {
            Ok(response) => response,
            Err(e) => panic!("fetch over {transport:?}: {}", chain(&e)),
        };
        assert!(
            first.task.is_none(),
            "{transport:?}: unexpected task {:?}",
            first.task
        );
        assert!(first.tasks_version > 0, "{first:?}");
        // Asking again with the version just seen is the cheap path: still nothing.
        match client.fetch_task(first.tasks_version).await {
            Ok(second) => {
                assert!(second.task.is_none());
                assert_eq!(second.tasks_version, first.tasks_version);
            }
            Err(e) => panic!("second fetch over {transport:?}: {}", chain(&e)),
        }
    }
}

#[tokio::test]
async fn a_wrong_runner_token_is_a_permanent_unregistered_error() {
    let Some(gitea) = gitea(
        "a_wrong_runner_token_is_a_permanent_unregistered_error",
        Instance::Http,
    ) else {
        return;
    };
    for transport in TRANSPORTS {
        let (good, runner) = registered(gitea, transport, &["x".to_owned()]).await;
        let mut config = config(gitea, transport);
        config.identity = Some(Identity {
            uuid: runner.uuid.clone(),
            token: "wrong".to_owned(),
        });
        // Standard retries stay on: a permanent error must not be retried.
        let bad = Client::new(config).unwrap_or_else(|e| panic!("{e}"));
        for rpc in [Rpc::Declare, Rpc::FetchTask] {
            let result = match rpc {
                Rpc::Declare => bad.declare("1", &[]).await.map(|_| ()),
                _ => bad.fetch_task(0).await.map(|_| ()),
            };
            let error = match result {
                Ok(()) => panic!("{transport:?} {rpc}: accepted a wrong token"),
                Err(error) => error,
            };
            assert_eq!(error.rpc, rpc);
            assert_eq!(
                error.attempts,
                1,
                "{transport:?}: retried a permanent error: {}",
                chain(&error)
            );
            assert!(
                error.is_unregistered() && !error.is_transient(),
                "{transport:?}: {}",
                chain(&error)
            );
            assert!(
                matches!(&error.cause, Cause::Unregistered { message } if message.contains("unregistered runner")),
                "{transport:?}: {:?}",
                error.cause
            );
        }
        // The right token still works.
        if let Err(e) = good.fetch_task(0).await {
            panic!("{transport:?}: {}", chain(&e));
        }
    }
}

#[tokio::test]
async fn a_wrong_registration_token_is_refused_permanently() {
    let Some(gitea) = gitea(
        "a_wrong_registration_token_is_refused_permanently",
        Instance::Http,
    ) else {
        return;
    };
    for transport in TRANSPORTS {
        let client =
            Client::new(no_retries(config(gitea, transport))).unwrap_or_else(|e| panic!("{e}"));
        let request = runnel_protocol::proto::runner::RegisterRequest {
            name: "nope".to_owned(),
            token: "not-a-registration-token".to_owned(),
            ..Default::default()
        };
        match client.register(request).await {
            Ok(runner) => panic!("{transport:?}: registered with a bad token: {runner:?}"),
            Err(error) => {
                assert!(
                    matches!(&error.cause, Cause::RegistrationToken { message } if message.contains("not found")),
                    "{transport:?}: {:?}",
                    error.cause
                );
                assert!(!error.is_transient());
            }
        }
    }
}

#[tokio::test]
async fn calls_without_identity_fail_before_sending() {
    let Some(gitea) = gitea("calls_without_identity_fail_before_sending", Instance::Http) else {
        return;
    };
    let client = client(gitea, Transport::Connect);
    match client.fetch_task(0).await {
        Ok(_) => panic!("fetched without identity"),
        Err(error) => {
            assert!(
                matches!(error.cause, Cause::NoIdentity),
                "{:?}",
                error.cause
            );
            assert_eq!(error.attempts, 0);
        }
    }
}
