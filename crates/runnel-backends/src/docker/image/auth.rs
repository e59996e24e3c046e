//! Which credentials a pull sends: the container's `credentials:` when the workflow gives them,
//! else the Docker client config of the user running runnel (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`: `auths`, `credHelpers`, `credsStore`), as `docker pull` and act do,
//! so `docker login REGISTRY` as the runner's user is enough for private images. The file is
//! read at each pull, so a later `docker login` needs no restart.
//!
//! Must not: log or return a secret in any text; [`Source`] says where credentials came from,
//! never what they are.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use bollard::auth::DockerCredentials;

/// Where a pull without `credentials:` looks for registry credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    /// The Docker client config of the user running runnel: `$DOCKER_CONFIG/config.json`,
    /// else `$HOME/.docker/config.json`.
    DockerConfig,
    /// The `config.json` in this directory.
    DockerConfigDir(PathBuf),
    /// None: such pulls are anonymous.
    Off,
}

/// Docker Hub's name in client configs and credential helpers.
const HUB_SERVER: &str = "https://index.docker.io/v1/";
/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the credentials of a pull came from, for the log and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The container's `credentials:` in the workflow.
    Workflow,
    /// An `auths` entry of a Docker client config.
    ClientConfig {
        path: PathBuf,
    },
    /// A credential helper (`docker-credential-NAME`) the client config names.
    Helper {
        program: String,
    },
    None,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Workflow => f.write_str("the credentials of the container's `credentials:`"),
            Source::ClientConfig { path } => {
                write!(f, "the credentials in {}", path.display())
            }
            Source::Helper { program } => write!(f, "the credentials from {program}"),
            Source::None => f.write_str("no credentials"),
        }
    }
}

/// Credentials for one pull, and where they came from.
pub(crate) struct Credentials {
    pub(crate) docker: Option<DockerCredentials>,
    pub(crate) source: Source,
    /// Why the client config could not be used, when it exists but could not be read.
    pub(crate) problem: Option<String>,
}

/// The credentials for a pull from `registry` (a host, `docker.io` for Docker Hub).
pub(crate) async fn credentials(
    registry: &str,
    workflow: Option<&(String, String)>,
    auth: &RegistryAuth,
) -> Credentials {
    let server = server_address(registry);
    if let Some((username, password)) = workflow {
        return Credentials {
            docker: Some(DockerCredentials {
                username: Some(username.clone()),
                password: Some(password.clone()),
                serveraddress: Some(server),
                ..Default::default()
            }),
            source: Source::Workflow,
            problem: None,
        };
    }
    let none = |problem| Credentials {
        docker: None,
        source: Source::None,
        problem,
    };
    let Some(path) = config_path(auth) else {
        return none(None);
    };
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return none(None),
        Err(error) => return none(Some(format!("reading {}: {error}", path.display()))),
    };
    let config: serde_json::Value = match serde_json::from_str(&text) {
        Ok(config) => config,
        Err(error) => return none(Some(format!("{} is not JSON: {error}", path.display()))),
    };
    match lookup(&config, registry) {
        Lookup::Found(mut docker) => {
            docker.serveraddress = Some(server);
            Credentials {
                docker: Some(docker),
                source: Source::ClientConfig { path },
                problem: None,
            }
        }
        Lookup::Helper(name) => {
            let program = format!("docker-credential-{name}");
            match run_helper(Path::new(&program), &server).await {
                Ok(Some(mut docker)) => {
                    docker.serveraddress = Some(server);
                    Credentials {
                        docker: Some(docker),
                        source: Source::Helper { program },
                        problem: None,
                    }
                }
                Ok(None) => none(None),
                Err(problem) => none(Some(problem)),
            }
        }
        Lookup::Missing => none(None),
    }
}

fn config_path(auth: &RegistryAuth) -> Option<PathBuf> {
    let dir = match auth {
        RegistryAuth::Off => return None,
        RegistryAuth::DockerConfigDir(dir) => dir.clone(),
        RegistryAuth::DockerConfig => match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(std::env::var_os("HOME")?).join(".docker"),
        },
    };
    Some(dir.join("config.json"))
}

/// What the client config says about a registry.
#[derive(Debug, PartialEq)]
enum Lookup {
    Found(DockerCredentials),
    /// Ask `docker-credential-NAME`.
    Helper(String),
    Missing,
}

/// As the Docker CLI decides: a `credHelpers` entry for the registry, else `credsStore`, else
/// an `auths` entry (`auth` = base64 of `user:password`, or `username`/`password`, or an
/// `identitytoken`).
fn lookup(config: &serde_json::Value, registry: &str) -> Lookup {
    let text = |value: &serde_json::Value, key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    let helper = config
        .get("credHelpers")
        .and_then(serde_json::Value::as_object)
        .and_then(|helpers| {
            helpers
                .iter()
                .find(|(key, _)| same_registry(key, registry))
                .and_then(|(_, name)| name.as_str())
        })
        .map(str::to_owned)
        .or_else(|| text(config, "credsStore"));
    if let Some(name) = helper {
        return Lookup::Helper(name);
    }
    let entry = config
        .get("auths")
        .and_then(serde_json::Value::as_object)
        .and_then(|auths| {
            auths
                .iter()
                .find(|(key, _)| same_registry(key, registry))
                .map(|(_, entry)| entry)
        });
    let Some(entry) = entry else {
        return Lookup::Missing;
    };
    let mut found = DockerCredentials {
        username: text(entry, "username"),
        password: text(entry, "password"),
        identitytoken: text(entry, "identitytoken"),
        ..Default::default()
    };
    let decoded = text(entry, "auth").and_then(|auth| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let pair = String::from_utf8(bytes).ok()?;
        let (username, password) = pair.split_once(':')?;
        Some((username.to_owned(), password.to_owned()))
    });
    if let Some((username, password)) = decoded {
        found.username = Some(username);
        found.password = Some(password);
    }
    if found.username.is_none() && found.identitytoken.is_none() {
        return Lookup::Missing;
    }
    Lookup::Found(found)
}

/// Whether a client config key (`https://index.docker.io/v1/`, `ghcr.io`,
/// `http://127.0.0.1:5000`) names `registry`.
fn same_registry(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    let hub = |name: &str| {
        matches!(
            name,
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        )
    };
    host.eq_ignore_ascii_case(registry) || (hub(host) && hub(registry))
}

/// The server name credentials are stored under.
fn server_address(registry: &str) -> String {
    if registry == "docker.io" {
        HUB_SERVER.to_owned()
    } else {
        registry.to_owned()
    }
}

/// `PROGRAM get` with the server on stdin: `{"Username": …, "Secret": …}` (a `<token>`
/// username means the secret is an identity token). `Ok(None)`: the helper has nothing for
/// this server.
async fn run_helper(program: &Path, server: &str) -> Result<Option<DockerCredentials>, String> {
    use tokio::io::AsyncWriteExt;
    let shown = program.display();
    let mut child = tokio::process::Command::new(program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("running {shown} (the Docker client config names it): {error}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes()).await;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "{shown} did not answer within {} s",
                HELPER_TIMEOUT.as_secs()
            )
        })?
        .map_err(|error| format!("{shown}: {error}"))?;
    if !output.status.success() {
        // "credentials not found in native keychain": nothing stored for this server.
        return Ok(None);
    }
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("{shown} answered something that is not JSON: {error}"))?;
    let field = |key: &str| answer.get(key).and_then(serde_json::Value::as_str);
    let (Some(username), Some(secret)) = (field("Username"), field("Secret")) else {
        return Ok(None);
    };
    Ok(Some(if username == "<token>" {
        DockerCredentials {
            identitytoken: Some(secret.to_owned()),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(username.to_owned()),
            password: Some(secret.to_owned()),
            ..Default::default()
        }
    }))
}

#[cfg(test)]
mod tests;
