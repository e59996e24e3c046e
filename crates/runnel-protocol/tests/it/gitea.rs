//! The real Gitea these tests talk to: started through `tests/gitea/start.sh` (or reused when its
//! env file points at a live instance), plus a few REST API helpers built on `curl`, which the
//! harness scripts need anyway.
//!
//! Owns: the `RUN_SLOW_TESTS` gate. Must not: stop the instance (it is reused by the next run;
//! `tests/gitea/stop.sh NAME` stops it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A running Gitea, as described by its env file.
#[derive(Debug)]
pub(crate) struct Gitea {
    pub(crate) url: String,
    pub(crate) admin_token: String,
    pub(crate) registration_token: String,
    pub(crate) repo: String,
    pub(crate) https: bool,
}

/// Which harness instance.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Instance {
    /// Plain HTTP (Connect over HTTP/1.1, gRPC over h2c).
    Http,
    /// HTTPS with a self-signed certificate.
    Https,
}

static HTTP: OnceLock<Result<Gitea, String>> = OnceLock::new();
static HTTPS: OnceLock<Result<Gitea, String>> = OnceLock::new();

/// The Gitea for `test`, or `None` (after printing a note) when slow tests are off. Panics with
/// the reason when slow tests are on but Gitea cannot be had.
pub(crate) fn gitea(test: &str, instance: Instance) -> Option<&'static Gitea> {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!(
            "note: skipping {test}: needs a real Gitea; set RUN_SLOW_TESTS=1 (builds one with tests/gitea/build.sh)"
        );
        return None;
    }
    let cell = match instance {
        Instance::Http => &HTTP,
        Instance::Https => &HTTPS,
    };
    match cell.get_or_init(|| obtain(instance)) {
        Ok(gitea) => Some(gitea),
        Err(reason) => panic!("{test}: RUN_SLOW_TESTS is set but no Gitea is available: {reason}"),
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn obtain(instance: Instance) -> Result<Gitea, String> {
    let (name, protocol, override_var) = match instance {
        Instance::Http => ("protocol-it", "http", "RUNNEL_GITEA_ENV"),
        Instance::Https => ("protocol-it-tls", "https", "RUNNEL_GITEA_TLS_ENV"),
    };
    if let Some(path) = std::env::var_os(override_var) {
        let gitea = load(Path::new(&path))?;
        return if alive(&gitea) {
            Ok(gitea)
        } else {
            Err(format!(
                "{override_var}={} names a Gitea that does not answer",
                PathBuf::from(path).display()
            ))
        };
    }
    let cache = std::env::var_os("RUNNEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/runnel")))
        .ok_or("neither RUNNEL_CACHE nor HOME is set")?;
    let env_file = cache.join(format!("gitea/instances/{name}.env"));
    if let Ok(gitea) = load(&env_file)
        && alive(&gitea)
    {
        return Ok(gitea);
    }
    let script = repo_root().join("tests/gitea/start.sh");
    let output = Command::new(&script)
        .arg(name)
        .env("GITEA_PROTOCOL", protocol)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} {name} failed ({}):\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    load(&env_file)
}

fn load(path: &Path) -> Result<Gitea, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let get = |key: &str| {
        vars.get(key)
            .map(|v| (*v).to_owned())
            .ok_or_else(|| format!("{} lacks {key}", path.display()))
    };
    Ok(Gitea {
        url: get("GITEA_URL")?,
        admin_token: get("GITEA_ADMIN_TOKEN")?,
        registration_token: get("GITEA_REGISTRATION_TOKEN")?,
        repo: get("GITEA_REPO")?,
        https: get("GITEA_PROTOCOL")? == "https",
    })
}

fn alive(gitea: &Gitea) -> bool {
    gitea.api("GET", "/version", None).is_ok()
}

impl Gitea {
    /// Calls the REST API (`/api/v1` + `path`) as the admin; returns the parsed JSON body.
    pub(crate) fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let text = self.api_text(method, path, body)?;
        if text.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("{method} {path}: not JSON ({e}): {text}"))
    }

    /// Like [`Gitea::api`] but returns the body as text (logs are plain text).
    pub(crate) fn api_text(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<String, String> {
        let mut command = Command::new("curl");
        command
            .args([
                "--silent",
                "--show-error",
                "--fail-with-body",
                "--location",
                "-X",
                method,
            ])
            .arg("-H")
            .arg(format!("Authorization: token {}", self.admin_token))
            .args(["-H", "Content-Type: application/json"]);
        if self.https {
            command.arg("--insecure");
        }
        if let Some(body) = body {
            command.arg("--data").arg(body.to_string());
        }
        command.arg(format!("{}/api/v1{path}", self.url));
        let output = command
            .output()
            .map_err(|e| format!("cannot run curl: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(format!(
                "{method} {path}: {}{}",
                String::from_utf8_lossy(&output.stderr),
                text
            ));
        }
        Ok(text)
    }
}

/// A name unique to this test run, for labels, runner names and workflow files.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}
