//! The real Gitea for the packaging and doctor tests: the `daemon-it` instance of
//! `tests/gitea/start.sh` (reused while it lives; `RUNNEL_DAEMON_GITEA_ENV` names another
//! instance's env file), a runner registered per test with a label unique to the run, workflows
//! pushed through the contents API and jobs read back through the REST API.
//!
//! Slow: [`gitea`] returns `None` unless `RUN_SLOW_TESTS` is set, and panics when it is set
//! and no Gitea can be had.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::{repo_root, runnel};

pub(crate) struct Gitea {
    pub(crate) url: String,
    pub(crate) admin_token: String,
    pub(crate) registration_token: String,
    pub(crate) repo: String,
}

static GITEA: OnceLock<Result<Gitea, String>> = OnceLock::new();

/// True when slow tests run; else prints a note naming `test` and what it needs.
pub(crate) fn slow(test: &str, needs: &str) -> bool {
    if std::env::var_os("RUN_SLOW_TESTS").is_some() {
        return true;
    }
    eprintln!("note: skipping {test}: needs {needs}; set RUN_SLOW_TESTS=1");
    false
}

/// The Gitea for `test`, or `None` (with a note) when slow tests are off.
pub(crate) fn gitea(test: &str) -> Option<&'static Gitea> {
    if !slow(test, "a real Gitea") {
        return None;
    }
    match GITEA.get_or_init(obtain) {
        Ok(gitea) => Some(gitea),
        Err(reason) => panic!("{test}: RUN_SLOW_TESTS is set but no Gitea is available: {reason}"),
    }
}

fn obtain() -> Result<Gitea, String> {
    if let Some(path) = std::env::var_os("RUNNEL_DAEMON_GITEA_ENV") {
        return read_env(Path::new(&path));
    }
    let cache = std::env::var_os("RUNNEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/runnel")))
        .ok_or("neither RUNNEL_CACHE nor HOME is set")?;
    let env_file = cache.join("gitea/instances/daemon-it.env");
    if let Ok(gitea) = read_env(&env_file)
        && gitea.api("GET", "/version", None).is_ok()
    {
        return Ok(gitea);
    }
    let script = repo_root().join("tests/gitea/start.sh");
    let output = Command::new(&script)
        .arg("daemon-it")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    read_env(&env_file)
}

fn read_env(path: &Path) -> Result<Gitea, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
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
    })
}

impl Gitea {
    /// The REST API (`/api/v1` + `path`) as the admin.
    pub(crate) fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--fail-with-body", "-X", method])
            .arg("-H")
            .arg(format!("Authorization: token {}", self.admin_token))
            .args(["-H", "Content-Type: application/json"]);
        if let Some(body) = body {
            command.arg("--data").arg(body.to_string());
        }
        let url = format!("{}/api/v1{path}", self.url);
        let output = command
            .arg(&url)
            .output()
            .map_err(|e| format!("curl: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(format!(
                "{method} {url}: {}{text}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON ({e}): {text}"))
    }

    /// Pushes a workflow that runs `steps` on `label`, only when its own file changes.
    pub(crate) fn push_job(&self, label: &str, steps: &str) {
        self.push_named_job(label, label, steps);
    }

    /// Pushes the workflow `name` (a new file) that runs `steps` on `label`, only when its own
    /// file changes: one label can get several jobs.
    pub(crate) fn push_named_job(&self, name: &str, label: &str, steps: &str) {
        let text = format!(
            "name: {name}\non:\n  push:\n    paths: ['.gitea/workflows/{name}.yml']\njobs:\n  job:\n    runs-on: {label}\n    steps:\n{steps}"
        );
        let body = json!({
            "content": base64(text.as_bytes()),
            "message": format!("add {name}"),
            "branch": "main",
        });
        let path = format!("/repos/{}/contents/.gitea/workflows/{name}.yml", self.repo);
        let mut last = String::new();
        // Other tests commit to the same branch at the same time: retry a conflict.
        for _ in 0..10 {
            match self.api("POST", &path, Some(&body)) {
                Ok(_) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("push {name}: {last}");
    }

    /// The jobs of the repository that the runner `runner_id` ran (newest pages included).
    pub(crate) fn jobs_of(&self, runner_id: i64) -> Vec<Value> {
        const PAGE: usize = 50;
        let mut mine = Vec::new();
        for page in 1.. {
            let listed = self
                .api(
                    "GET",
                    &format!("/repos/{}/actions/jobs?limit={PAGE}&page={page}", self.repo),
                    None,
                )
                .unwrap_or_else(|e| panic!("{e}"));
            let jobs = listed["jobs"].as_array().cloned().unwrap_or_default();
            let last_page = jobs.len() < PAGE;
            mine.extend(
                jobs.into_iter()
                    .filter(|job| job["runner_id"].as_i64() == Some(runner_id)),
            );
            if last_page {
                break;
            }
        }
        mine
    }

    /// Waits (up to 2 minutes) for a completed job of `runner_id`; `log` explains a timeout.
    pub(crate) fn completed_job(&self, runner_id: i64, log: &dyn Fn() -> String) -> Value {
        self.completed_job_where(runner_id, &|_| true, log)
    }

    /// Waits (up to 2 minutes) for a completed job of `runner_id` that `wanted` accepts.
    pub(crate) fn completed_job_where(
        &self,
        runner_id: i64,
        wanted: &dyn Fn(&Value) -> bool,
        log: &dyn Fn() -> String,
    ) -> Value {
        for _ in 0..600 {
            if let Some(job) = self
                .jobs_of(runner_id)
                .into_iter()
                .find(|j| j["status"] == "completed" && wanted(j))
            {
                return job;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("no completed job of runner {runner_id}; log:\n{}", log());
    }
}

/// A name unique to this run: `prefix-PID-NANOS`.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Registers a runner named `label` with the one label `label:host` in `dir`; returns its id.
pub(crate) fn register(gitea: &Gitea, dir: &Path, label: &str) -> i64 {
    let output = runnel()
        .current_dir(dir)
        .args(["register", "--no-interactive", "--instance", &gitea.url])
        .args(["--token", &gitea.registration_token, "--name", label])
        .args(["--labels", &format!("{label}:host")])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("runnel register: {e}"));
    assert!(
        output.status.success(),
        "runnel register failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = std::fs::read_to_string(dir.join(".runner"))
        .unwrap_or_else(|e| panic!(".runner not written: {e}"));
    let file: Value = serde_json::from_str(&file).unwrap_or_else(|e| panic!(".runner: {e}"));
    file["id"]
        .as_i64()
        .unwrap_or_else(|| panic!(".runner without id: {file}"))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let at = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (at(0) << 16) | (at(1) << 8) | at(2);
        for i in 0..4 {
            let index = ((n >> (18 - 6 * i)) & 63) as usize;
            match ALPHABET.get(index) {
                Some(c) if i <= chunk.len() => out.push(char::from(*c)),
                _ => out.push('='),
            }
        }
    }
    out
}
