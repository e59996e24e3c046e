//! What a workflow may mount: `volumes:` entries (job container and services) and the
//! runner's own `-v` options, checked against the operator's `valid_volumes` globs *after*
//! the source is normalised — `..` refused, `.` and repeated slashes dropped, the symbolic
//! links of the part that exists on this machine resolved — so `/srv/data/../../var/run` or a
//! link under an allowed directory cannot reach past the pattern. The engine's socket, any
//! directory holding it and `/` itself are refused whatever the globs say (the socket alone
//! is allowed when the operator turns on `mount_docker_socket`). The bind Docker receives
//! names the resolved source, so the path checked is the path mounted.
//!
//! Must not: talk to Docker; `pod` puts the mounts into create requests.

use std::path::{Component, Path, PathBuf};

use super::DockerBackendConfig;
use super::options::OptionError;

/// Where Docker's engine socket usually is, besides the configured one.
const WELL_KNOWN_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];

/// A checked `volumes:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VolumeMount {
    /// `/path`: a fresh anonymous volume, removed with the job.
    Anonymous { target: String },
    /// `source:target[:mode]` for `HostConfig.binds` (a resolved host path or a named volume).
    Bind(String),
}

impl VolumeMount {
    /// Where the container sees it.
    pub(crate) fn target(&self) -> &str {
        match self {
            VolumeMount::Anonymous { target } => target,
            VolumeMount::Bind(spec) => spec.split(':').nth(1).unwrap_or(spec),
        }
    }
}

/// What the backend config lets workflows mount.
#[derive(Debug, Clone)]
pub(crate) struct VolumePolicy<'a> {
    pub(crate) valid_volumes: &'a [String],
    pub(crate) mount_docker_socket: bool,
    /// The engine sockets to keep out of jobs: the configured one and the usual places,
    /// each also with its links resolved.
    pub(crate) sockets: Vec<String>,
}

impl<'a> VolumePolicy<'a> {
    pub(crate) fn of(config: &'a DockerBackendConfig) -> VolumePolicy<'a> {
        let configured = config
            .docker_socket_path
            .strip_prefix("unix://")
            .unwrap_or(&config.docker_socket_path);
        let mut sockets = Vec::new();
        for socket in std::iter::once(configured).chain(WELL_KNOWN_SOCKETS) {
            if !socket.starts_with('/') {
                continue;
            }
            for form in [lexical(socket).ok(), Some(resolve_existing(socket))]
                .into_iter()
                .flatten()
            {
                if !sockets.contains(&form) {
                    sockets.push(form);
                }
            }
        }
        VolumePolicy {
            valid_volumes: &config.valid_volumes,
            mount_docker_socket: config.mount_docker_socket,
            sockets,
        }
    }
}

/// Checks one `volumes:` entry: an anonymous volume always passes; a bind or named volume
/// when its normalised source (and, for a host path, the same with links resolved) matches
/// one of `valid_volumes` (globs: `*` any run of characters, `?` one).
pub(crate) fn check_volume(
    spec: &str,
    policy: &VolumePolicy<'_>,
) -> Result<VolumeMount, OptionError> {
    let bad_volume = |problem| OptionError::BadVolume {
        volume: spec.to_owned(),
        problem,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => {
            if !target.starts_with('/') {
                return Err(bad_volume("the target must be an absolute path"));
            }
            return Ok(VolumeMount::Anonymous {
                target: (*target).to_owned(),
            });
        }
        [source, target] => (*source, *target, None),
        [source, target, mode] => (*source, *target, Some(*mode)),
        _ => return Err(bad_volume("expected SOURCE:TARGET[:MODE] or TARGET")),
    };
    if source.is_empty() || !target.starts_with('/') {
        return Err(bad_volume(
            "expected SOURCE:TARGET[:MODE] with an absolute target",
        ));
    }
    if source.starts_with('.') || source.starts_with('~') {
        return Err(bad_volume("a bind mount source must be an absolute path"));
    }
    if !source.starts_with('/') {
        // A named volume: Docker refuses names with `/`, so the name is all there is.
        return match matches_any(policy.valid_volumes, source) {
            true => Ok(VolumeMount::Bind(spec.to_owned())),
            false => Err(not_allowed(spec, policy)),
        };
    }
    let written = lexical(source).map_err(bad_volume)?;
    let resolved = resolve_existing(&written);
    if resolved == "/" || written == "/" {
        return Err(bad_volume(
            "mounting the host's root directory is never allowed",
        ));
    }
    let is_socket = |path: &str| {
        path.ends_with("/docker.sock") || policy.sockets.iter().any(|socket| socket == path)
    };
    if is_socket(&written) || is_socket(&resolved) {
        if !policy.mount_docker_socket {
            return Err(OptionError::DockerSocket {
                volume: spec.to_owned(),
            });
        }
    } else if policy
        .sockets
        .iter()
        .any(|socket| contains(&resolved, socket) || contains(&written, socket))
    {
        return Err(bad_volume(
            "it holds the Docker socket, which would hand the job the host's engine",
        ));
    } else if !(matches_any(policy.valid_volumes, &written)
        && (resolved == written
            || matches_any(policy.valid_volumes, &resolved)
            || matches_any(&resolved_patterns(policy.valid_volumes), &resolved)))
    {
        return Err(not_allowed(spec, policy));
    }
    Ok(VolumeMount::Bind(match mode {
        Some(mode) => format!("{resolved}:{target}:{mode}"),
        None => format!("{resolved}:{target}"),
    }))
}

/// Checks one `-v` of the operator's `container.options`: trusted, so no `valid_volumes`
/// entry is needed, but a source that is (or holds) the engine's socket goes in only when
/// `docker_host` mounts the socket anyway, so the two keys cannot disagree. The bind names
/// the resolved source.
pub(crate) fn check_operator_volume(
    spec: &str,
    policy: &VolumePolicy<'_>,
) -> Result<VolumeMount, OptionError> {
    let bad_volume = |problem| OptionError::BadVolume {
        volume: spec.to_owned(),
        problem,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, rest) = match parts.as_slice() {
        [target] if target.starts_with('/') => {
            return Ok(VolumeMount::Anonymous {
                target: (*target).to_owned(),
            });
        }
        [source, target, ..] if target.starts_with('/') && parts.len() <= 3 => {
            (*source, spec.get(source.len()..).unwrap_or_default())
        }
        _ => return Err(bad_volume("expected SOURCE:TARGET[:MODE] or TARGET")),
    };
    if !source.starts_with('/') {
        // A named volume: nothing of this machine's tree.
        return Ok(VolumeMount::Bind(spec.to_owned()));
    }
    let resolved = check_operator_source(spec, source, policy)?;
    Ok(VolumeMount::Bind(format!("{resolved}{rest}")))
}

/// The resolved form of an operator's bind source, refused when it is (or holds) the
/// engine's socket and `docker_host` does not mount it.
pub(crate) fn check_operator_source(
    spec: &str,
    source: &str,
    policy: &VolumePolicy<'_>,
) -> Result<String, OptionError> {
    let written = lexical(source).map_err(|problem| OptionError::BadVolume {
        volume: spec.to_owned(),
        problem,
    })?;
    let resolved = resolve_existing(&written);
    let touches_socket = |path: &str| {
        path.ends_with("/docker.sock")
            || policy
                .sockets
                .iter()
                .any(|socket| socket == path || contains(path, socket))
    };
    if (touches_socket(&written) || touches_socket(&resolved)) && !policy.mount_docker_socket {
        return Err(OptionError::OperatorSocket {
            volume: spec.to_owned(),
        });
    }
    Ok(resolved)
}

fn not_allowed(spec: &str, policy: &VolumePolicy<'_>) -> OptionError {
    OptionError::VolumeNotAllowed {
        volume: spec.to_owned(),
        patterns: if policy.valid_volumes.is_empty() {
            "none configured".to_owned()
        } else {
            policy.valid_volumes.join(", ")
        },
    }
}

fn matches_any(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|pattern| glob_match(pattern, text))
}

/// Whether directory `dir` holds `path` (at any depth).
fn contains(dir: &str, path: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
}

/// An absolute path without `.`, empty components or a trailing slash; `..` is refused (the
/// glob would see `/srv/data/..` where Docker mounts `/srv`).
fn lexical(path: &str) -> Result<String, &'static str> {
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                return Err("`..` is not allowed in a bind mount source");
            }
            Component::Prefix(_) => return Err("a bind mount source must be an absolute path"),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// `path` with the symbolic links of its longest existing prefix resolved on this machine
/// (the rest appended as written). A path nothing of which exists stays as it is.
fn resolve_existing(path: &str) -> String {
    let mut existing = PathBuf::from(path);
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut resolved = real;
            for part in rest.iter().rev() {
                resolved.push(part);
            }
            return resolved.to_string_lossy().into_owned();
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => return path.to_owned(),
        }
    }
}

/// The patterns with the literal directory before their first wildcard resolved, so an
/// operator's pattern under a linked directory (`/data/*` with `/data -> /mnt/disk/data`)
/// still matches the resolved source.
fn resolved_patterns(patterns: &[String]) -> Vec<String> {
    patterns
        .iter()
        .filter(|pattern| pattern.starts_with('/'))
        .filter_map(|pattern| {
            let wildcard = pattern.find(['*', '?']).unwrap_or(pattern.len());
            let cut = pattern.get(..wildcard)?.rfind('/')?;
            let (dir, rest) = pattern.split_at(cut);
            let dir = if dir.is_empty() { "/" } else { dir };
            let resolved = resolve_existing(&lexical(dir).ok()?);
            Some(format!("{}{rest}", resolved.trim_end_matches('/')))
        })
        .collect()
}

/// `*` matches any run of characters (including `/`), `?` exactly one.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests;
