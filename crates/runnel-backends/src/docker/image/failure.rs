//! Why a pull failed, from the engine's message (Docker answers every pull failure with a 500
//! and the registry's words), and the error a job shows for it: which image, which registry,
//! what the registry said, what that most likely means, and how to get the image instead.
//!
//! Must not: talk to Docker; strings in, strings out.

use super::auth::Source;

/// What a failed pull most likely means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The registry refused the credentials sent, or wants some and got none.
    Unauthorized,
    /// The registry has no such repository or tag.
    NotFound,
    /// Docker Hub's answer for both "no such repository" and "private, log in".
    NotFoundOrDenied,
    /// No answer from the registry: refused, no such host, timed out, TLS trouble.
    Unreachable,
    Other,
}

/// Classifies the engine's message; the registry's own words stay in the error either way.
pub(crate) fn classify(message: &str) -> Cause {
    let message = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|needle| message.contains(needle));
    if has(&["repository does not exist or may require"]) {
        Cause::NotFoundOrDenied
    } else if has(&[
        "unauthorized",
        "no basic auth credentials",
        "authentication required",
        "incorrect username or password",
        "denied",
        "forbidden",
    ]) {
        Cause::Unauthorized
    } else if has(&[
        "manifest unknown",
        "name unknown",
        "not found",
        "repository does not exist",
    ]) {
        Cause::NotFound
    } else if has(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "timeout",
        "deadline exceeded",
        "network is unreachable",
        "no route to host",
        "tls",
        "x509",
        "certificate",
        "server gave http response to https client",
        "connection reset",
        "eof",
    ]) {
        Cause::Unreachable
    } else {
        Cause::Other
    }
}

/// What a job shows when its image is neither present nor pullable.
pub(crate) fn explain(image: &str, registry: &str, source: &Source, message: &str) -> String {
    let cause = match classify(message) {
        Cause::Unauthorized => match source {
            Source::None => format!(
                "{registry} wants credentials and none were given: set `credentials:` \
                 (username, password) on the container or service, or `docker login \
                 {registry}` as the user runnel runs as"
            ),
            given => format!("{registry} refused {given} (wrong username, password or token?)"),
        },
        Cause::NotFound => format!("{registry} has no such image: check the name and the tag"),
        Cause::NotFoundOrDenied => format!(
            "{registry} has no such repository, or it is private and needs credentials \
             (`credentials:` or `docker login`)"
        ),
        Cause::Unreachable => format!("{registry} cannot be reached from this machine"),
        Cause::Other => format!("pulling from {registry} failed"),
    };
    format!(
        "image `{image}` is not present and could not be pulled: {cause}. The engine said: \
         {message}. Build or load it into this Docker engine (`docker build -t {image} …`, \
         `docker load`; the images of runnel's tests come from tests/images/build.sh), map \
         the label to another image (`-P <label>=<image>`), or run the label on the host \
         (`-P <label>=-self-hosted`, or a `<label>:host` runner label)",
        message = message.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_messages_are_classified() {
        // Messages as dockerd 20.10 answers them (the first four seen here against a real
        // registry), and Docker Hub's well-known ones.
        let cases = [
            (
                r#"Head "http://127.0.0.1:36254/v2/a/b/manifests/1": no basic auth credentials"#,
                Cause::Unauthorized,
            ),
            ("unauthorized: authentication required", Cause::Unauthorized),
            (
                "manifest for 127.0.0.1:36254/runnel-it/missing:1 not found: manifest unknown: \
                 manifest unknown",
                Cause::NotFound,
            ),
            (
                r#"Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused"#,
                Cause::Unreachable,
            ),
            (
                r#"Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 10.0.0.53:53: no such host"#,
                Cause::Unreachable,
            ),
            (
                "pull access denied for nosuch/image, repository does not exist or may require \
                 'docker login': denied: requested access to the resource is denied",
                Cause::NotFoundOrDenied,
            ),
            (
                "Get \"https://r.example/v2/\": net/http: request canceled while waiting for \
                 connection (Client.Timeout exceeded while awaiting headers)",
                Cause::Unreachable,
            ),
            (
                "Get \"https://r.example/v2/\": x509: certificate signed by unknown authority",
                Cause::Unreachable,
            ),
            ("something else entirely", Cause::Other),
        ];
        for (message, cause) in cases {
            assert_eq!(classify(message), cause, "{message}");
        }
    }

    #[test]
    fn errors_name_the_image_the_registry_and_the_way_out() {
        let text = explain(
            "127.0.0.1:5000/app:1",
            "127.0.0.1:5000",
            &Source::Workflow,
            "unauthorized: authentication required\n",
        );
        for part in [
            "image `127.0.0.1:5000/app:1` is not present and could not be pulled",
            "127.0.0.1:5000 refused the credentials of the container's `credentials:`",
            "The engine said: unauthorized: authentication required. Build or load",
            "-P <label>=-self-hosted",
        ] {
            assert!(text.contains(part), "{part}\n{text}");
        }
        let anonymous = explain(
            "r/a",
            "docker.io",
            &Source::None,
            "no basic auth credentials",
        );
        assert!(anonymous.contains("docker.io wants credentials and none were given"));
        let missing = explain("r/a", "h:1", &Source::None, "manifest unknown");
        assert!(missing.contains("h:1 has no such image"));
    }
}
