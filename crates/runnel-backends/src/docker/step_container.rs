//! Step containers (`uses: docker://…`, `runs.using: docker`): a container beside the job
//! container, in its network namespace (`network_mode: container:<job>`, so services answer on
//! `localhost` and, through the shared `/etc/hosts`, on their names), with the job's
//! directories bind-mounted from where the job container's own mounts come from. It carries
//! the job container's labels (so leftover cleanup finds it) and is removed when it ends,
//! times out, is cancelled or fails to start.
//!
//! Also building `Dockerfile` actions: the action directory is read out of the job container
//! as a tar (the build context), its files hashed, and the image tagged
//! `runnel-action:<hash>` so a second run with the same files reuses it (unless the runner's
//! `force_rebuild` says to build anyway).
//!
//! A step container's image is pulled when missing (or always, with `force_pull`) with the
//! Docker client config's credentials, the progress written to the step's output; it runs
//! privileged when the runner's `privileged` says so, as act_runner runs action containers.
//! The operator's `container.options` apply to it as the Gitea runner (v3.3) applies them to
//! action containers, except the ones about the network namespace (`--add-host`, `--dns`,
//! `--hostname`, ports), which it shares with the job container that already has them, and
//! `--workdir`, which the step decides.
//!
//! Must not: decide env, argv or mounts (the engine did); build anything but what it is given.

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, BuildImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use runnel_engine::backend::{BuiltImage, ContainerRun, ExecExit, ExecOutput, ImageBuild};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ca::{self, CA_TARGET};
use super::error::DockerError;
use super::image::{self, ImageRequest, PullLog, PullPolicy};
use super::options::{self, docker_run::DockerRunOptions};
use super::volumes::VolumeMount;
use super::{DockerBackendConfig, is_not_found};

/// The repository of built action images; the tag is the content hash.
const BUILT_REPOSITORY: &str = "runnel-action";
/// How many lines of build output a failed build's error keeps.
const BUILD_TAIL: usize = 20;
/// The operation of a step container's errors.
const RUN: &str = "run step container";
/// How long to wait for the exit code after the output ended.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// What the runner's config says about step containers.
#[derive(Debug, Clone)]
pub(crate) struct StepPolicy {
    pull: PullPolicy,
    force_rebuild: bool,
    privileged: bool,
    /// The operator's `container.options` that apply to a step container, and its volumes.
    operator: Option<(DockerRunOptions, Vec<VolumeMount>)>,
}

/// Create-body fields of the network namespace a step container shares with the job
/// container (Docker refuses them with `network_mode: container:…`), and the working
/// directory, which the step decides.
const NOT_FOR_STEPS: &[&[&str]] = &[
    &["Hostname"],
    &["Domainname"],
    &["MacAddress"],
    &["ExposedPorts"],
    &["WorkingDir"],
    &["HostConfig", "ExtraHosts"],
    &["HostConfig", "Dns"],
    &["HostConfig", "DnsOptions"],
    &["HostConfig", "DnsSearch"],
    &["HostConfig", "Links"],
    &["HostConfig", "PublishAllPorts"],
    &["HostConfig", "PortBindings"],
];

impl StepPolicy {
    pub(crate) fn of(config: &DockerBackendConfig) -> StepPolicy {
        // Checked when the backend connected: options that do not parse stopped it then.
        let operator = options::operator_options(config)
            .ok()
            .map(|(mut parsed, volumes)| {
                for path in NOT_FOR_STEPS {
                    remove_path(&mut parsed.body, path);
                }
                parsed.network = None;
                parsed.network_aliases.clear();
                (parsed, volumes)
            });
        StepPolicy {
            pull: PullPolicy::of(config),
            force_rebuild: config.force_rebuild,
            privileged: config.privileged,
            operator,
        }
    }

    /// The platform containers are created for, when one is configured.
    pub(crate) fn platform(&self) -> Option<&str> {
        self.pull.platform()
    }
}

/// Removes the field at `path` from a create body in the API's JSON names.
fn remove_path(body: &mut serde_json::Map<String, serde_json::Value>, path: &[&str]) {
    match path {
        [] => {}
        [last] => {
            body.remove(*last);
        }
        [first, rest @ ..] => {
            if let Some(serde_json::Value::Object(inner)) = body.get_mut(*first) {
                remove_path(inner, rest);
            }
        }
    }
}

/// One file of a build context, as hashed and sent.
struct ContextEntry {
    path: String,
    mode: u32,
    /// `Some(target)` for a symbolic link.
    link: Option<String>,
    contents: Vec<u8>,
}

pub(crate) async fn build(
    docker: &Docker,
    job_container: &str,
    policy: &StepPolicy,
    build: &ImageBuild,
    cancel: &CancellationToken,
) -> Result<BuiltImage, DockerError> {
    let operation = "build action image";
    let context = build.context.trim_end_matches('/');
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(context)
        .build();
    let chunks: Vec<Bytes> = docker
        .download_from_container(job_container, Some(options))
        .try_collect()
        .await
        .map_err(DockerError::engine(
            operation,
            &format!("reading {context}"),
        ))?;
    let entries = read_context(&chunks.concat()).map_err(|source| DockerError::Io {
        operation,
        subject: format!("reading {context}"),
        source,
    })?;
    if !entries.iter().any(|entry| entry.path == build.dockerfile) {
        return Err(DockerError::NoDockerfile {
            context: context.to_owned(),
            dockerfile: build.dockerfile.clone(),
        });
    }
    // An image built for another platform is another image.
    let platform = policy
        .platform()
        .map(|platform| format!("-{}", platform.replace('/', "-")))
        .unwrap_or_default();
    let tag = format!(
        "{BUILT_REPOSITORY}:{}{platform}",
        content_hash(&entries, &build.dockerfile)
    );
    match docker.inspect_image(&tag).await {
        Ok(_) if !policy.force_rebuild => {
            return Ok(BuiltImage {
                image: tag,
                reused: true,
            });
        }
        Ok(_) => {}
        Err(error) if is_not_found(&error) => {}
        Err(source) => {
            return Err(DockerError::Engine {
                operation,
                subject: format!("inspect {tag}"),
                source,
            });
        }
    }
    let archive = write_context(&entries).map_err(|source| DockerError::Io {
        operation,
        subject: format!("packing {context}"),
        source,
    })?;
    let mut options = BuildImageOptionsBuilder::new()
        .dockerfile(&build.dockerfile)
        .t(&tag)
        .rm(true)
        .forcerm(true);
    if let Some(platform) = policy.platform() {
        options = options.platform(platform);
    }
    let options = options.build();
    let mut stream = docker.build_image(
        options,
        None,
        Some(bollard::body_full(Bytes::from(archive))),
    );
    let mut tail: Vec<String> = Vec::new();
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            () = cancel.cancelled() => {
                return Err(DockerError::BuildCancelled { context: context.to_owned() });
            }
        };
        match item {
            None => break,
            Some(Ok(info)) => {
                if let Some(detail) = info.error_detail.and_then(|detail| detail.message) {
                    tail.push(detail);
                    return Err(DockerError::BuildFailed {
                        context: context.to_owned(),
                        tail,
                    });
                }
                if let Some(text) = info.stream {
                    tail.extend(text.lines().map(str::to_owned));
                    let excess = tail.len().saturating_sub(BUILD_TAIL);
                    tail.drain(..excess);
                }
            }
            Some(Err(source)) => {
                return Err(DockerError::BuildBroken {
                    context: context.to_owned(),
                    tail,
                    source,
                });
            }
        }
    }
    // The classic builder reports some failures only by not tagging.
    docker
        .inspect_image(&tag)
        .await
        .map_err(|source| DockerError::BuildUntagged {
            context: context.to_owned(),
            tail,
            source,
        })?;
    Ok(BuiltImage {
        image: tag,
        reused: false,
    })
}

/// The files of the context directory's tar (its first path component, the directory's own
/// name, removed), sorted by path.
fn read_context(archive: &[u8]) -> std::io::Result<Vec<ContextEntry>> {
    let mut reader = tar::Archive::new(archive);
    let mut entries = Vec::new();
    for entry in reader.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some((_, relative)) = path.split_once('/') else {
            continue;
        };
        let relative = relative.trim_end_matches('/').to_owned();
        if relative.is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        let mode = entry.header().mode()?;
        if kind.is_file() {
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents)?;
            entries.push(ContextEntry {
                path: relative,
                mode,
                link: None,
                contents,
            });
        } else if kind.is_symlink() {
            let target = entry
                .link_name()?
                .map(|target| target.to_string_lossy().into_owned())
                .unwrap_or_default();
            entries.push(ContextEntry {
                path: relative,
                mode,
                link: Some(target),
                contents: Vec::new(),
            });
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// Names, modes, link targets and contents — not times, which change with every copy.
fn content_hash(entries: &[ContextEntry], dockerfile: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(dockerfile.as_bytes());
    hasher.update([0]);
    for entry in entries {
        hasher.update(entry.path.as_bytes());
        hasher.update([0]);
        hasher.update(entry.mode.to_le_bytes());
        if let Some(link) = &entry.link {
            hasher.update(b"link:");
            hasher.update(link.as_bytes());
        }
        hasher.update((entry.contents.len() as u64).to_le_bytes());
        hasher.update(&entry.contents);
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn write_context(entries: &[ContextEntry]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_mtime(0);
        match &entry.link {
            Some(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, &entry.path, target)?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(entry.contents.len() as u64);
                builder.append_data(&mut header, &entry.path, entry.contents.as_slice())?;
            }
        }
    }
    builder.into_inner()
}

/// Where each of the job container's mounts comes from: destination → source on the Docker
/// host, longest destination first so the most specific mount wins.
type MountSources = Vec<(String, String)>;

pub(crate) async fn run(
    docker: &Docker,
    job_container: &str,
    policy: &StepPolicy,
    run: &ContainerRun,
    output: mpsc::Sender<ExecOutput>,
    cancel: &CancellationToken,
) -> Result<ExecExit, DockerError> {
    let inspect = docker
        .inspect_container(job_container, None)
        .await
        .map_err(DockerError::engine(RUN, "inspect job container"))?;
    let labels: HashMap<String, String> = inspect
        .config
        .and_then(|config| config.labels)
        .unwrap_or_default();
    let mut sources: MountSources = inspect
        .mounts
        .unwrap_or_default()
        .into_iter()
        .filter_map(|mount| Some((mount.destination?, mount.source?)))
        .collect();
    sources.sort_by_key(|(destination, _)| std::cmp::Reverse(destination.len()));
    let mut binds = Vec::new();
    for mount in &run.mounts {
        let source =
            host_source(&sources, &mount.source).ok_or_else(|| DockerError::NotShareable {
                path: mount.source.clone(),
            })?;
        binds.push(format!("{source}:{}", mount.target));
    }
    // The job's CA bundle, when it has one, is trusted here too.
    let ca_source = sources
        .iter()
        .find(|(destination, _)| destination == CA_TARGET)
        .map(|(_, source)| source.clone());
    if let Some(source) = &ca_source {
        binds.push(format!("{source}:{CA_TARGET}:ro"));
    }
    let mut mounts = Vec::new();
    if let Some((_, volumes)) = &policy.operator {
        super::container::add_volumes(volumes, &labels, &mut mounts, &mut binds);
    }
    image::ensure_image(
        docker,
        ImageRequest {
            image: &run.image,
            credentials: None,
            policy: &policy.pull,
            log: PullLog::Step(&output),
        },
        cancel,
    )
    .await?;
    let mut body = ContainerCreateBody {
        image: Some(run.image.clone()),
        entrypoint: run.entrypoint.clone().map(|entrypoint| vec![entrypoint]),
        cmd: (!run.args.is_empty()).then(|| run.args.clone()),
        env: Some({
            let env: Vec<String> = run
                .env
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            match ca_source {
                Some(_) => {
                    let mut all = ca::env_entries(&env);
                    all.extend(env);
                    all
                }
                None => env,
            }
        }),
        working_dir: Some(run.workdir.clone()),
        labels: Some(labels),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(HostConfig {
            binds: Some(binds),
            mounts: (!mounts.is_empty()).then_some(mounts),
            network_mode: Some(format!("container:{job_container}")),
            init: Some(true),
            privileged: policy.privileged.then_some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Some((operator, _)) = &policy.operator
        && let Err(error) = options::docker_run::apply(&mut body, operator, None)
    {
        tracing::warn!(%error, "the operator's container.options left out of a step container");
    }
    let created = docker
        .create_container(super::create_options(None, policy.pull.platform()), body)
        .await
        .map_err(DockerError::engine(RUN, &format!("create ({})", run.image)))?;
    let result = attach_and_wait(docker, &created.id, run, output, cancel).await;
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(&created.id, Some(options)).await {
        Err(error) if !is_not_found(&error) => {
            tracing::warn!(container = %created.id, %error, "could not remove a step container");
            result.and(Err(DockerError::Engine {
                operation: "remove step container",
                subject: created.id,
                source: error,
            }))
        }
        _ => result,
    }
}

/// `path` (inside the job container) as a path on the Docker host, through the mount it is on.
fn host_source(sources: &MountSources, path: &str) -> Option<String> {
    sources.iter().find_map(|(destination, source)| {
        let rest = path.strip_prefix(destination.as_str())?;
        if rest.is_empty() {
            Some(source.clone())
        } else if rest.starts_with('/') {
            Some(format!("{}{rest}", source.trim_end_matches('/')))
        } else {
            None
        }
    })
}

async fn attach_and_wait(
    docker: &Docker,
    id: &str,
    run: &ContainerRun,
    output: mpsc::Sender<ExecOutput>,
    cancel: &CancellationToken,
) -> Result<ExecExit, DockerError> {
    // Attached before the start: Docker connects the streams before it answers the attach,
    // so no early output is lost. Not `logs`: Docker replays the log after answering, and
    // output the started container wrote meanwhile would arrive twice (seen under load).
    let options = AttachContainerOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .stream(true)
        .logs(false)
        .build();
    let attached = docker
        .attach_container(id, Some(options))
        .await
        .map_err(DockerError::engine(RUN, &format!("attach ({})", run.image)))?;
    let mut stream = attached.output;
    docker
        .start_container(id, None)
        .await
        .map_err(DockerError::engine(RUN, &format!("start ({})", run.image)))?;
    let deadline = async {
        match run.timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            chunk = stream.next() => match chunk {
                Some(Ok(chunk)) => forward(&output, chunk).await,
                Some(Err(source)) => {
                    let subject = format!("output stream ({})", run.image);
                    return Err(DockerError::engine(RUN, &subject)(source));
                }
                None => break,
            },
            // The caller removes the container (which kills it).
            () = &mut deadline => return Ok(ExecExit::TimedOut),
            () = cancel.cancelled() => return Ok(ExecExit::Cancelled),
        }
    }
    let mut wait = docker.wait_container(id, None);
    let waited = tokio::time::timeout(WAIT_LIMIT, wait.next()).await;
    match waited {
        Ok(Some(Ok(response))) => Ok(ExecExit::Code(
            i32::try_from(response.status_code).unwrap_or(-1),
        )),
        // bollard reports a non-zero exit of `wait` as an error carrying the code.
        Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => {
            Ok(ExecExit::Code(i32::try_from(code).unwrap_or(-1)))
        }
        Ok(Some(Err(source))) => Err(DockerError::engine(RUN, &format!("wait ({})", run.image))(
            source,
        )),
        Ok(None) | Err(_) => Err(DockerError::NoExit {
            image: run.image.clone(),
        }),
    }
}

async fn forward(output: &mpsc::Sender<ExecOutput>, chunk: bollard::container::LogOutput) {
    let message = match chunk {
        bollard::container::LogOutput::StdOut { message } => ExecOutput::Stdout(message.to_vec()),
        bollard::container::LogOutput::StdErr { message }
        | bollard::container::LogOutput::Console { message } => {
            ExecOutput::Stderr(message.to_vec())
        }
        bollard::container::LogOutput::StdIn { .. } => return,
    };
    // A receiver that went away no longer wants output; the container still runs to its end.
    let _ = output.send(message).await;
}

#[cfg(test)]
mod tests {
    use super::host_source;

    #[test]
    fn paths_map_through_the_most_specific_mount() {
        let sources = vec![
            ("/__w/workspace".to_owned(), "/src/repo".to_owned()),
            (
                "/__w".to_owned(),
                "/var/lib/docker/volumes/x/_data".to_owned(),
            ),
        ];
        let cases = [
            ("/__w/workspace", Some("/src/repo")),
            ("/__w/workspace/sub", Some("/src/repo/sub")),
            (
                "/__w/_temp/a",
                Some("/var/lib/docker/volumes/x/_data/_temp/a"),
            ),
            ("/__wx", None),
            ("/github/home", None),
        ];
        for (path, expected) in cases {
            assert_eq!(host_source(&sources, path).as_deref(), expected, "{path}");
        }
    }
}
