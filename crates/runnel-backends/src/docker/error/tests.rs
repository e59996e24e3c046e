use std::error::Error as _;

use super::*;

fn not_found(message: &str) -> bollard::errors::Error {
    bollard::errors::Error::DockerResponseServerError {
        status_code: 404,
        message: message.to_owned(),
    }
}

/// The job's error text of `error`, as the engine prints it (`{}`).
fn check(error: DockerError, expect: &str) {
    let error = BackendError::from(error);
    assert_eq!(error.to_string(), expect);
}

#[test]
fn engine_errors_keep_bollards_error_as_their_source() {
    let error = BackendError::from(DockerError::Engine {
        operation: "remove container",
        subject: "abc".to_owned(),
        source: not_found("No such container: abc"),
    });
    let mut chain = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = next {
        chain.push(cause);
        next = cause.source();
    }
    let texts: Vec<String> = chain.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "remove container: abc: Docker responded with status code 404: No such container: abc",
            "abc: Docker responded with status code 404: No such container: abc",
            "Docker responded with status code 404: No such container: abc",
        ]
    );
    assert!(chain[1].downcast_ref::<DockerError>().is_some());
    let bollard = chain[2].downcast_ref::<bollard::errors::Error>();
    assert!(
        matches!(bollard, Some(error) if crate::docker::is_not_found(error)),
        "{bollard:?}"
    );
}

#[test]
fn flattened_errors_have_the_same_text_and_no_source() {
    let error = DockerError::Unanswered {
        target: "unix:///nonexistent.sock".to_owned(),
        source: not_found("gone"),
    };
    let text = BackendError::from(DockerError::Unanswered {
        target: "unix:///nonexistent.sock".to_owned(),
        source: not_found("gone"),
    })
    .to_string();
    let flattened = error.flattened();
    assert_eq!(flattened.to_string(), text);
    assert!(flattened.source().is_none());
}

// The texts below are the ones the `failed(operation, format!(..))` calls built.
#[test]
fn messages_read_as_before() {
    check(
        DockerError::Unanswered {
            target: "unix:///x.sock".to_owned(),
            source: not_found("gone"),
        },
        "connect to Docker: unix:///x.sock does not answer (Docker responded with status code \
         404: gone); is dockerd running?",
    );
    check(
        DockerError::PortConflict {
            first: "db".to_owned(),
            second: "cache".to_owned(),
            port: "5432/tcp".to_owned(),
        },
        "start services: services `db` and `cache` both listen on port 5432/tcp: services share \
         the job container's network namespace (so that `localhost:5432` works), and only one \
         of them can bind a port. Remove one, or configure one to listen on another port",
    );
    check(
        DockerError::ServiceNotReady {
            service: "db".to_owned(),
            problem: ServiceProblem::Unhealthy,
            last_check: Some("refused\n".to_owned()),
            logs: "starting\nready\n".to_owned(),
        },
        "start services: service `db` is unhealthy\nlast health check output:\nrefused\nlast \
         50 lines of its log:\nstarting\nready",
    );
    check(
        DockerError::ServiceNotReady {
            service: "db".to_owned(),
            problem: ServiceProblem::Exited { code: 3 },
            last_check: Some("  \n".to_owned()),
            logs: "(empty)".to_owned(),
        },
        "start services: service `db` exited with code 3\nlast 50 lines of its log:\n(empty)",
    );
    check(
        DockerError::ServiceNotReady {
            service: "db".to_owned(),
            problem: ServiceProblem::TimedOut { seconds: 300 },
            last_check: None,
            logs: "x".to_owned(),
        },
        "start services: service `db` did not become healthy within 300s\nlast 50 lines of its \
         log:\nx",
    );
    check(
        DockerError::BuildFailed {
            context: "/a".to_owned(),
            tail: vec!["Step 1/2".to_owned(), "bad".to_owned()],
        },
        "build action image: building /a failed; last output:\nStep 1/2\nbad",
    );
    check(
        DockerError::BuildBroken {
            context: "/a".to_owned(),
            tail: Vec::new(),
            source: not_found("x"),
        },
        "build action image: building /a failed; last output:\nDocker responded with status \
         code 404: x",
    );
    check(
        DockerError::BuildUntagged {
            context: "/a".to_owned(),
            tail: vec!["done".to_owned()],
            source: not_found("x"),
        },
        "build action image: building /a failed; last output:\ndone\nDocker responded with \
         status code 404: x",
    );
    check(
        DockerError::Io {
            operation: "exec in container",
            subject: "bash: output".to_owned(),
            source: std::io::Error::other("broken pipe"),
        },
        "exec in container: bash: output: broken pipe",
    );
    check(
        DockerError::AgentBadStatus {
            program: "bash".to_owned(),
            status: "zz".to_owned(),
        },
        "exec in container: bash: the exec agent reported `zz`, not an exit status",
    );
    check(
        DockerError::CaNotPem {
            path: PathBuf::from("/etc/x.pem"),
        },
        "trust the configured CA bundle: /etc/x.pem holds no PEM certificate",
    );
}
