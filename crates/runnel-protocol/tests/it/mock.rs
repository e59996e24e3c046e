//! Retries, error classification and gzip against a scripted HTTP/1.1 server (fast: no Gitea).
//! Each request gets the next scripted answer (`runnel_protocol::testing`) and its connection
//! is closed.

use std::io::Write as _;
use std::time::Duration;

use prost::Message as _;
use runnel_protocol::proto::{ping, runner};
use runnel_protocol::testing::{Answer, MockServer, serve_script};
use runnel_protocol::{Cause, Client, ClientConfig, Code, Identity, RetryPolicy, Transport};

fn json_error(status: u16, code: &str, message: &str) -> Answer {
    Answer::json_error(status, code, message)
}

fn proto(message: &impl prost::Message) -> Answer {
    Answer::proto(message)
}

/// Serves `answers` in order; returns the base URL and the server (for the request heads).
async fn serve(answers: Vec<Answer>) -> (String, MockServer) {
    match serve_script(answers).await {
        Ok(server) => (server.url.clone(), server),
        Err(e) => panic!("{e}"),
    }
}

fn fast_client(url: &str) -> Client {
    let mut config = ClientConfig::new(url, "9.9.9");
    config.transport = Transport::Connect;
    config.retry = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    };
    config.identity = Some(Identity {
        uuid: "the-uuid".to_owned(),
        token: "the-token".to_owned(),
    });
    match Client::new(config) {
        Ok(client) => client,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_restarting_server_is_retried_until_it_answers() {
    let ok = runner::UpdateLogResponse { ack_index: 7 };
    let (url, seen) = serve(vec![
        Answer {
            status: 502,
            headers: vec![],
            body: b"bad gateway".to_vec(),
        },
        json_error(500, "unknown", "database is locked"),
        proto(&ok),
    ])
    .await;
    let client = fast_client(&url);
    match client.update_log(runner::UpdateLogRequest::default()).await {
        Ok(response) => assert_eq!(response.ack_index, 7),
        Err(e) => panic!("{}", crate::chain(&e)),
    }
    let heads = seen.heads();
    assert_eq!(heads.len(), 3);
    let first = heads
        .first()
        .map(|h| h.to_ascii_lowercase())
        .unwrap_or_default();
    for expected in [
        "post /api/actions/runner.v1.runnerservice/updatelog http/1.1",
        "content-type: application/proto",
        "connect-protocol-version: 1",
        "x-runner-uuid: the-uuid",
        "x-runner-token: the-token",
        "x-runner-version: 9.9.9",
        "user-agent: runnel/9.9.9",
    ] {
        assert!(first.contains(expected), "missing {expected:?} in {first}");
    }
}

#[tokio::test]
async fn permanent_errors_are_classified_and_not_retried() {
    type Case = (Answer, fn(&Cause) -> bool);
    let cases: Vec<Case> = vec![
        (
            json_error(
                500,
                "unknown",
                "rpc error: code = Unauthenticated desc = unregistered runner",
            ),
            |c| matches!(c, Cause::Unregistered { .. }),
        ),
        (
            json_error(500, "unknown", "runner registration token not found"),
            |c| matches!(c, Cause::RegistrationToken { .. }),
        ),
        (
            Answer {
                status: 404,
                headers: vec![],
                body: b"404 page not found".to_vec(),
            },
            |c| matches!(c, Cause::Unimplemented { .. }),
        ),
        (json_error(400, "invalid_argument", "bad"), |c| {
            matches!(
                c,
                Cause::Server {
                    code: Code::InvalidArgument,
                    http_status: 400,
                    ..
                }
            )
        }),
        (json_error(500, "unknown", "invalid runner for task"), |c| {
            matches!(
                c,
                Cause::Server {
                    code: Code::FailedPrecondition,
                    ..
                }
            )
        }),
    ];
    for (answer, expected) in cases {
        let status = answer.status;
        let (url, seen) = serve(vec![answer]).await;
        match fast_client(&url).declare("1", &[]).await {
            Ok(runner) => panic!("HTTP {status}: accepted: {runner:?}"),
            Err(error) => {
                assert!(expected(&error.cause), "HTTP {status}: {:?}", error.cause);
                assert!(!error.is_transient(), "HTTP {status}: {:?}", error.cause);
                assert_eq!(error.attempts, 1);
            }
        }
        assert_eq!(seen.heads().len(), 1);
    }
}

#[tokio::test]
async fn fetch_is_not_repeated_once_it_may_have_reached_the_server() {
    let (url, seen) = serve(vec![
        json_error(503, "unavailable", "restarting"),
        json_error(503, "unavailable", "x"),
    ])
    .await;
    match fast_client(&url).fetch_task(0).await {
        Ok(response) => panic!("{response:?}"),
        Err(error) => {
            assert!(error.is_transient());
            assert_eq!(error.attempts, 1);
        }
    }
    assert_eq!(seen.heads().len(), 1);
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported_as_transient() {
    // Bind and drop to get a port nobody listens on.
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("{e}"),
    };
    let client = fast_client(&format!("http://127.0.0.1:{port}"));
    match client.fetch_task(0).await {
        Ok(response) => panic!("{response:?}"),
        Err(error) => {
            assert!(
                matches!(error.cause, Cause::Connect(_)),
                "{:?}",
                error.cause
            );
            assert!(error.is_transient() && !error.is_unregistered());
            // Even FetchTask is retried: the request never left.
            assert_eq!(error.attempts, 4);
        }
    }
}

#[tokio::test]
async fn gzip_responses_are_decompressed() {
    let greeting = ping::PingResponse {
        data: "x".repeat(4000),
    };
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = encoder.write_all(&greeting.encode_to_vec());
    let body = encoder.finish().unwrap_or_default();
    let answer = Answer {
        status: 200,
        headers: vec![
            ("Content-Type", "application/proto".to_owned()),
            ("Content-Encoding", "gzip".to_owned()),
        ],
        body,
    };
    let (url, _seen) = serve(vec![answer]).await;
    match fast_client(&url).ping("x").await {
        Ok(data) => assert_eq!(data, greeting.data),
        Err(e) => panic!("{}", crate::chain(&e)),
    }
}

#[tokio::test]
async fn declare_returns_the_capabilities_the_server_announces_in_its_header() {
    let declared = runner::DeclareResponse {
        runner: Some(runner::Runner {
            id: 7,
            name: "r".to_owned(),
            ..runner::Runner::default()
        }),
    };
    let mut with_header = proto(&declared);
    with_header.headers.push((
        "X-Gitea-Actions-Capabilities",
        "job-summary, later-thing".to_owned(),
    ));
    let (url, _seen) = serve(vec![with_header, proto(&declared)]).await;
    let client = fast_client(&url);
    match client.declare_full("1", &["l".to_owned()]).await {
        Ok(answer) => {
            assert_eq!(answer.runner.id, 7);
            assert_eq!(answer.server_capabilities, ["job-summary", "later-thing"]);
        }
        Err(e) => panic!("{}", crate::chain(&e)),
    }
    // Gitea <= 1.26 sends no such header.
    match client.declare_full("1", &["l".to_owned()]).await {
        Ok(answer) => assert!(answer.server_capabilities.is_empty()),
        Err(e) => panic!("{}", crate::chain(&e)),
    }
}
