//! Making sure an image is present: use the local one, else (or, with `force_pull`, always)
//! pull it with the right credentials (`auth`), showing progress in the job's log
//! (`progress`); when neither works, say why and how to get one (`failure`).
//!
//! Progress goes to the job's setup log (`runnel_engine::backend::setup_log`) for the job and
//! service images, and to the step's own output for step containers.
//!
//! Must not: build images (tests/images/ does that for tests; Dockerfile actions are
//! `step_container`'s business).

mod auth;
mod failure;
mod progress;

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ImageInspect;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use runnel_engine::backend::ExecOutput;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use auth::RegistryAuth;

use super::error::DockerError;
use super::{DockerBackendConfig, is_not_found};

/// How pulls behave; from [`DockerBackendConfig`].
#[derive(Debug, Clone)]
pub(crate) struct PullPolicy {
    /// Pull even when the image is present (act_runner's `force_pull`).
    force: bool,
    /// A pull that hears nothing from the engine for this long fails.
    stall_timeout: Option<Duration>,
    auth: RegistryAuth,
    /// The platform images are pulled for and must be of (`DockerBackendConfig::platform`).
    platform: Option<String>,
}

impl PullPolicy {
    pub(crate) fn of(config: &DockerBackendConfig) -> PullPolicy {
        PullPolicy {
            force: config.force_pull,
            stall_timeout: config.pull_stall_timeout,
            auth: config.registry_auth.clone(),
            platform: config.platform.clone(),
        }
    }

    /// The platform containers are created for, when one is configured.
    pub(crate) fn platform(&self) -> Option<&str> {
        self.platform.as_deref()
    }
}

/// Where pull progress lines go.
#[derive(Clone, Copy)]
pub(crate) enum PullLog<'a> {
    /// The job's log before its first step (job and service images).
    Setup,
    /// The output of the step that runs the image.
    Step(&'a mpsc::Sender<ExecOutput>),
}

impl PullLog<'_> {
    async fn line(self, text: &str) {
        match self {
            PullLog::Setup => runnel_engine::backend::setup_log(text),
            PullLog::Step(output) => {
                // A step whose output nobody reads any more still runs.
                let _ = output
                    .send(ExecOutput::Stdout(format!("{text}\n").into_bytes()))
                    .await;
            }
        }
    }
}

pub(crate) struct ImageRequest<'a> {
    pub(crate) image: &'a str,
    /// The container's `credentials:`; `None`: the Docker client config's, if it has some.
    pub(crate) credentials: Option<&'a (String, String)>,
    pub(crate) policy: &'a PullPolicy,
    pub(crate) log: PullLog<'a>,
}

/// Returns the image's inspect data, pulling it first when it is not present (or always,
/// with `force_pull`, unless its reference pins a digest or names a locally built action
/// image: neither can change). A forced pull that fails falls back to the present copy,
/// saying so in the log.
pub(crate) async fn ensure_image(
    docker: &Docker,
    request: ImageRequest<'_>,
    cancel: &CancellationToken,
) -> Result<ImageInspect, DockerError> {
    let image = request.image;
    let inspect_failed = |source| DockerError::Engine {
        operation: "get image",
        subject: format!("inspect {image}"),
        source,
    };
    let present = match docker.inspect_image(image).await {
        Ok(inspect) => Some(inspect),
        Err(error) if is_not_found(&error) => None,
        Err(error) => return Err(inspect_failed(error)),
    };
    if let Some(wanted) = request.policy.platform()
        && let Some(inspect) = &present
        && !is_of_platform(inspect, wanted)
    {
        // A copy for another platform is as good as none: pull the one asked for.
        let found = platform_of(inspect);
        return match pull(docker, &request, cancel).await {
            Ok(()) => {
                let pulled = docker.inspect_image(image).await.map_err(inspect_failed)?;
                if is_of_platform(&pulled, wanted) {
                    Ok(pulled)
                } else {
                    Err(PullError::WrongPlatform {
                        image: image.to_owned(),
                        wanted: wanted.to_owned(),
                        found: platform_of(&pulled),
                        pull: None,
                    }
                    .into())
                }
            }
            Err(error) if cancel.is_cancelled() => Err(error.into()),
            Err(error) => Err(PullError::WrongPlatform {
                image: image.to_owned(),
                wanted: wanted.to_owned(),
                found,
                pull: Some(Box::new(error)),
            }
            .into()),
        };
    }
    let refresh = request.policy.force && !is_immutable(image);
    match (present, refresh) {
        (Some(inspect), false) => Ok(inspect),
        (None, _) => {
            pull(docker, &request, cancel).await?;
            docker.inspect_image(image).await.map_err(inspect_failed)
        }
        (Some(inspect), true) => match pull(docker, &request, cancel).await {
            Ok(()) => Ok(docker.inspect_image(image).await.unwrap_or(inspect)),
            Err(_) if cancel.is_cancelled() => Err(PullError::Cancelled {
                image: image.to_owned(),
            }
            .into()),
            Err(error) => {
                request
                    .log
                    .line(&format!(
                        "force_pull: {error}; using the copy of {image} already present"
                    ))
                    .await;
                Ok(inspect)
            }
        },
    }
}

/// `os/arch[/variant]` of an image, as Docker names platforms.
fn platform_of(inspect: &ImageInspect) -> String {
    let os = inspect.os.as_deref().unwrap_or("linux");
    let arch = inspect.architecture.as_deref().unwrap_or("unknown");
    match inspect.variant.as_deref() {
        Some(variant) if !variant.is_empty() => format!("{os}/{arch}/{variant}"),
        _ => format!("{os}/{arch}"),
    }
}

/// Whether the image is for `wanted` (`os[/arch[/variant]]`; the parts given must match,
/// with the architecture names Docker accepts for the same machine taken as one).
fn is_of_platform(inspect: &ImageInspect, wanted: &str) -> bool {
    let mut parts = wanted.split('/').map(str::trim);
    let os = parts.next().unwrap_or_default();
    let arch = parts.next();
    let variant = parts.next();
    let same_os = inspect
        .os
        .as_deref()
        .is_none_or(|found| found.eq_ignore_ascii_case(os));
    let same_arch = arch.is_none_or(|arch| {
        inspect
            .architecture
            .as_deref()
            .is_some_and(|found| canonical_arch(found) == canonical_arch(arch))
    });
    let same_variant = variant.is_none_or(|variant| {
        inspect
            .variant
            .as_deref()
            .is_none_or(|found| found.is_empty() || found.eq_ignore_ascii_case(variant))
    });
    same_os && same_arch && same_variant
}

fn canonical_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".to_owned(),
        "aarch64" => "arm64".to_owned(),
        other => other.to_owned(),
    }
}

/// Why a pull failed. Apart from a cancel, the message says which image and registry, what
/// the registry said, what that most likely means and how to get the image instead
/// (`failure::explain`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PullError {
    #[error("pull of {image} cancelled")]
    Cancelled { image: String },
    /// The image here is for another platform than the configured one, and pulling the one
    /// asked for failed (`pull`) or brought the same.
    #[error(
        "image {image} is for {found}, not {wanted} (the container platform asked for, e.g. \
         with --container-architecture){}",
        .pull.as_ref().map(|error| format!("; pulling it for {wanted} failed: {error}")).unwrap_or_default()
    )]
    WrongPlatform {
        image: String,
        wanted: String,
        found: String,
        #[source]
        pull: Option<Box<PullError>>,
    },
    /// The engine sent nothing for `seconds`.
    #[error(
        "{}",
        failure::explain(
            .image,
            .registry,
            .credentials,
            &format!("no progress for {} s (container.docker_timeout): i/o timeout", .seconds)
        )
    )]
    Stalled {
        image: String,
        registry: String,
        credentials: auth::Source,
        seconds: u64,
    },
    /// The engine reported the registry's answer in the pull's progress stream.
    #[error("{}", failure::explain(.image, .registry, .credentials, .message))]
    Refused {
        image: String,
        registry: String,
        credentials: auth::Source,
        message: String,
    },
    /// The engine answered the pull request with an error.
    #[error("{}", failure::explain(.image, .registry, .credentials, &engine_message(.source)))]
    Engine {
        image: String,
        registry: String,
        credentials: auth::Source,
        #[source]
        source: bollard::errors::Error,
    },
}

/// Pulls `request.image`.
async fn pull(
    docker: &Docker,
    request: &ImageRequest<'_>,
    cancel: &CancellationToken,
) -> Result<(), PullError> {
    let image = request.image;
    let (repository, tag) = split_reference(image);
    let registry = registry_of(repository).unwrap_or("docker.io");
    let credentials = auth::credentials(registry, request.credentials, &request.policy.auth).await;
    if let Some(problem) = &credentials.problem {
        request
            .log
            .line(&format!(
                "cannot use the Docker client config ({problem}); pulling without credentials"
            ))
            .await;
    }
    // Docker Hub images do not name their registry.
    let from = if image.starts_with(registry) {
        String::new()
    } else {
        format!(" from {registry}")
    };
    let with = match &credentials.source {
        auth::Source::None => String::new(),
        source => format!(" with {source}"),
    };
    request
        .log
        .line(&format!("pulling {image}{from}{with}"))
        .await;
    let mut options = CreateImageOptionsBuilder::new()
        .from_image(repository)
        .tag(tag);
    if let Some(platform) = request.policy.platform() {
        options = options.platform(platform);
    }
    let options = options.build();
    let mut stream = docker.create_image(Some(options), None, credentials.docker);
    let mut tracker = progress::PullTracker::new(image, Instant::now());
    loop {
        let next = async {
            match request.policy.stall_timeout {
                Some(limit) => tokio::time::timeout(limit, stream.next()).await.ok(),
                None => Some(stream.next().await),
            }
        };
        let item = tokio::select! {
            item = next => item,
            () = cancel.cancelled() => {
                return Err(PullError::Cancelled { image: image.to_owned() });
            }
        };
        let Some(item) = item else {
            let limit = request.policy.stall_timeout.unwrap_or_default();
            return Err(PullError::Stalled {
                image: image.to_owned(),
                registry: registry.to_owned(),
                credentials: credentials.source,
                seconds: limit.as_secs(),
            });
        };
        match item {
            None => break,
            Some(Ok(info)) => {
                if let Some(message) = info.error_detail.and_then(|detail| detail.message) {
                    return Err(PullError::Refused {
                        image: image.to_owned(),
                        registry: registry.to_owned(),
                        credentials: credentials.source,
                        message,
                    });
                }
                let Some(status) = info.status else {
                    continue;
                };
                let detail = info
                    .progress_detail
                    .and_then(|detail| Some((detail.current?, detail.total?)));
                if let Some(line) =
                    tracker.update(info.id.as_deref(), &status, detail, Instant::now())
                {
                    request.log.line(&line).await;
                }
            }
            Some(Err(source)) => {
                return Err(PullError::Engine {
                    image: image.to_owned(),
                    registry: registry.to_owned(),
                    credentials: credentials.source,
                    source,
                });
            }
        }
    }
    request.log.line(&tracker.finished(Instant::now())).await;
    Ok(())
}

/// The engine's own words, without bollard's wrapping.
fn engine_message(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// A digest pins the content; `runnel-action:` images are built here from their content hash.
fn is_immutable(image: &str) -> bool {
    image.contains('@') || image.starts_with("runnel-action:")
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

    #[test]
    fn forced_pulls_skip_what_cannot_change() {
        for (image, immutable) in [
            ("debian:12", false),
            ("ghcr.io/o/i@sha256:0123", true),
            ("runnel-action:0123abcd", true),
            ("runnel-action-like/x", false),
        ] {
            assert_eq!(is_immutable(image), immutable, "{image}");
        }
    }
}
