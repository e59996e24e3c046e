//! Making sure an image is present: use the local one, else pull it (with credentials when the
//! workflow gives them), reporting progress; when neither works, say how to get one.
//!
//! Must not: build images (tests/images/ does that for tests; Dockerfile actions are the
//! engine's business).

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::ImageInspect;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use runnel_engine::backend::BackendError;
use tokio_util::sync::CancellationToken;

use super::{PullProgress, PullProgressCallback, failed, is_not_found};

pub(crate) struct ImageRequest<'a> {
    pub(crate) image: &'a str,
    pub(crate) credentials: Option<&'a (String, String)>,
    pub(crate) job_key: &'a str,
    pub(crate) progress: Option<&'a PullProgressCallback>,
}

/// Returns the image's inspect data, pulling it first when it is not present.
pub(crate) async fn ensure_image(
    docker: &Docker,
    request: ImageRequest<'_>,
    cancel: &CancellationToken,
) -> Result<ImageInspect, BackendError> {
    let image = request.image;
    let operation = "get image";
    match docker.inspect_image(image).await {
        Ok(inspect) => return Ok(inspect),
        Err(error) if is_not_found(&error) => {}
        Err(error) => return Err(failed(operation, format!("inspect {image}: {error}"))),
    }
    let (repository, tag) = split_reference(image);
    let options = CreateImageOptionsBuilder::new()
        .from_image(repository)
        .tag(tag)
        .build();
    let credentials = request
        .credentials
        .map(|(username, password)| DockerCredentials {
            username: Some(username.clone()),
            password: Some(password.clone()),
            serveraddress: registry_of(repository).map(str::to_owned),
            ..Default::default()
        });
    let report = |message: String| {
        if let Some(callback) = request.progress {
            callback(&PullProgress {
                job_key: request.job_key.to_owned(),
                image: image.to_owned(),
                message,
            });
        }
    };
    report(format!("pulling {image}"));
    let mut stream = docker.create_image(Some(options), None, credentials);
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            () = cancel.cancelled() => {
                return Err(failed(operation, format!("pull of {image} cancelled")));
            }
        };
        match item {
            None => break,
            Some(Ok(info)) => {
                if let Some(detail) = info.error_detail.and_then(|detail| detail.message) {
                    return Err(unavailable(image, &detail));
                }
                let line = match (info.id, info.status) {
                    (Some(id), Some(status)) => format!("{id}: {status}"),
                    (None, Some(status)) => status,
                    _ => continue,
                };
                report(line);
            }
            Some(Err(error)) => return Err(unavailable(image, &error.to_string())),
        }
    }
    docker
        .inspect_image(image)
        .await
        .map_err(|error| unavailable(image, &error.to_string()))
}

fn unavailable(image: &str, cause: &str) -> BackendError {
    failed(
        "get image",
        format!(
            "image `{image}` is not present and could not be pulled ({cause}). Build or load it \
             into this Docker engine (`docker build -t {image} …`, `docker load`; the images of \
             runnel's tests come from tests/images/build.sh), map the label to another image \
             (`-P <label>=<image>`), or run the label on the host (`-P <label>=-self-hosted`, \
             or a `<label>:host` runner label)"
        ),
    )
}

/// `debian:12` → (`debian`, `12`); `host:5000/a/b` → (`host:5000/a/b`, `latest`); a digest
/// reference is pulled as written. Docker pulls every tag when none is given: never do that.
fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let last_segment_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image.rfind(':') {
        Some(colon) if colon >= last_segment_start => (
            image.get(..colon).unwrap_or(image),
            image.get(colon + 1..).unwrap_or("latest"),
        ),
        _ => (image, "latest"),
    }
}

/// The registry host of a repository when it names one (`ghcr.io/a/b`), as Docker decides:
/// the first segment has a `.` or `:` or is `localhost`.
fn registry_of(repository: &str) -> Option<&str> {
    let (first, _) = repository.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repository_and_tag() {
        let cases = [
            ("debian", ("debian", "latest"), None),
            ("debian:bookworm", ("debian", "bookworm"), None),
            (
                "localhost:5000/a/b",
                ("localhost:5000/a/b", "latest"),
                Some("localhost:5000"),
            ),
            ("ghcr.io/o/i:1.2", ("ghcr.io/o/i", "1.2"), Some("ghcr.io")),
            (
                "runnel-test/busybox",
                ("runnel-test/busybox", "latest"),
                None,
            ),
            ("a@sha256:00", ("a@sha256:00", ""), None),
        ];
        for (image, split, registry) in cases {
            assert_eq!(split_reference(image), split, "{image}");
            assert_eq!(registry_of(split.0), registry, "{image}");
        }
    }
}
