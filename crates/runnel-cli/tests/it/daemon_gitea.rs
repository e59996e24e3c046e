//! The Gitea side of the daemon tests: a real Gitea (`tests/gitea/start.sh`, instance
//! `daemon-it`, reused while it lives; `RUNNEL_DAEMON_GITEA_ENV` names another instance's env
//! file), pushing workflows through the contents API, reading jobs and logs back through the
//! REST API (and the web UI's JSON where 1.26 has no REST route), and registered runners in
//! their own directories running `runnel daemon`.
//!
//! Each test registers its own runner with a label unique to the run, and its workflows run
//! only on changes to their own file (`on.push.paths`), so tests share the instance without
//! taking each other's jobs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::{repo_root, runnel};

pub(crate) struct Gitea {
    pub(crate) url: String,
    pub(crate) admin_user: String,
    pub(crate) admin_password: String,
    pub(crate) admin_token: String,
    pub(crate) registration_token: String,
    pub(crate) repo: String,
    /// The server process (from the env file), for tests that stop it.
    pub(crate) pid: Option<u32>,
}

pub(crate) static GITEA: OnceLock<Result<Gitea, String>> = OnceLock::new();

/// The Gitea for `test`, or `None` (with a note) when slow tests are off.
pub(crate) fn gitea(test: &str) -> Option<&'static Gitea> {
    slow_instance(&GITEA, test, obtain)
}

/// The instance kept in `slot` (made by `obtain` on first use) for `test`, or `None` (with a
/// note) when slow tests are off; panics when they are on and the instance is not available.
pub(crate) fn slow_instance(
    slot: &'static OnceLock<Result<Gitea, String>>,
    test: &str,
    obtain: fn() -> Result<Gitea, String>,
) -> Option<&'static Gitea> {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping {test}: needs a real Gitea; set RUN_SLOW_TESTS=1");
        return None;
    }
    match slot.get_or_init(obtain) {
        Ok(gitea) => Some(gitea),
        Err(reason) => panic!("{test}: RUN_SLOW_TESTS is set but no Gitea is available: {reason}"),
    }
}

pub(crate) fn obtain() -> Result<Gitea, String> {
    if let Some(path) = std::env::var_os("RUNNEL_DAEMON_GITEA_ENV") {
        return read_env(Path::new(&path));
    }
    obtain_named("daemon-it")
}

/// Instance `name`: the running one when its env file answers, else a fresh one.
pub(crate) fn obtain_named(name: &str) -> Result<Gitea, String> {
    obtain_version(name, None)
}

/// Instance `name` of the default Gitea, or with `next` (the version `tests/gitea/NEXT_VERSION`
/// names) of the newer one started with `GITEA_VERSION=next`: the running one when its env
/// file answers (and names that version), else a fresh one.
pub(crate) fn obtain_version(name: &str, next: Option<&str>) -> Result<Gitea, String> {
    let cache = std::env::var_os("RUNNEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/runnel")))
        .ok_or("neither RUNNEL_CACHE nor HOME is set")?;
    let env_file = cache.join(format!("gitea/instances/{name}.env"));
    let running_version = std::fs::read_to_string(&env_file).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("GITEA_VERSION=").map(str::to_owned))
    });
    if (next.is_none() || running_version.as_deref() == next)
        && let Ok(gitea) = read_env(&env_file)
        && gitea.api("GET", "/version", None).is_ok()
    {
        return Ok(gitea);
    }
    let script = repo_root().join("tests/gitea/start.sh");
    let mut command = Command::new(&script);
    command.arg(name);
    if next.is_some() {
        command.env("GITEA_VERSION", "next");
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        let prefix = if next.is_some() {
            "GITEA_VERSION=next "
        } else {
            ""
        };
        return Err(format!(
            "{prefix}{} {name} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let gitea = read_env(&env_file)?;
    if let Some(version) = next {
        let served = gitea.api("GET", "/version", None)?;
        if served["version"].as_str() != Some(version.trim_start_matches('v')) {
            return Err(format!("{name} serves {served}, expected {version}"));
        }
    }
    Ok(gitea)
}

pub(crate) fn read_env(path: &Path) -> Result<Gitea, String> {
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
        admin_user: get("GITEA_ADMIN_USER")?,
        admin_password: get("GITEA_ADMIN_PASSWORD")?,
        admin_token: get("GITEA_ADMIN_TOKEN")?,
        registration_token: get("GITEA_REGISTRATION_TOKEN")?,
        repo: get("GITEA_REPO")?,
        pid: vars.get("GITEA_PID").and_then(|p| p.parse().ok()),
    })
}

impl Gitea {
    pub(crate) fn curl(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<String, String> {
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--fail-with-body", "-X", method])
            .arg("-H")
            .arg(format!("Authorization: token {}", self.admin_token))
            .args(["-H", "Content-Type: application/json"]);
        if let Some(body) = body {
            command.arg("--data").arg(body.to_string());
        }
        let output = command
            .arg(url)
            .output()
            .map_err(|e| format!("curl: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "{method} {url}: {}{text}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// The REST API (`/api/v1` + `path`) as the admin.
    pub(crate) fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let text = self.curl(method, &format!("{}/api/v1{path}", self.url), body)?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON ({e}): {text}"))
    }

    /// The runner `id` as the admin API lists it.
    pub(crate) fn runner(&self, id: i64) -> Value {
        self.api("GET", &format!("/admin/actions/runners/{id}"), None)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sets a repository secret unique to the runner `label` (named `<prefix>_<LABEL>`, its
    /// value starting with `value_prefix`); returns its name and value.
    pub(crate) fn new_secret(
        &self,
        prefix: &str,
        label: &str,
        value_prefix: &str,
    ) -> (String, String) {
        let name = format!("{prefix}_{}", label.replace('-', "_").to_uppercase());
        let value = format!("{value_prefix}-{}", unique("v"));
        self.put_secret(&name, &value);
        (name, value)
    }

    /// Sets the repository secret `name` to `value`.
    pub(crate) fn put_secret(&self, name: &str, value: &str) {
        self.api(
            "PUT",
            &format!("/repos/{}/actions/secrets/{name}", self.repo),
            Some(&json!({ "data": value })),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Pushes a workflow file to `main` (retried: parallel tests commit to the same branch).
    pub(crate) fn push_workflow(&self, name: &str, text: &str) {
        // Concurrent commits to one branch through the contents API made Gitea 1.26 start
        // one workflow twice at the same commit (seen in CI); the tests share a repository,
        // so their pushes take turns.
        static PUSHES: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = PUSHES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let body = json!({
            "content": base64(text.as_bytes()),
            "message": format!("add {name}"),
            "branch": "main",
        });
        let path = format!("/repos/{}/contents/.gitea/workflows/{name}.yml", self.repo);
        let mut last = String::new();
        for _ in 0..10 {
            match self.api("POST", &path, Some(&body)) {
                Ok(_) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("push {name}: {last}");
    }

    /// Pushes a workflow that runs on `workflow_dispatch` only, then dispatches it once: unlike
    /// a push trigger, which Gitea 1.26 sometimes fires twice when other processes push to
    /// the same branch at the same time, this makes exactly one run.
    pub(crate) fn dispatch_workflow(&self, name: &str, jobs: &str) {
        self.push_workflow(
            name,
            &format!("name: {name}\non: workflow_dispatch\njobs:\n{jobs}"),
        );
        let path = format!(
            "/repos/{}/actions/workflows/{name}.yml/dispatches",
            self.repo
        );
        let mut last = String::new();
        for _ in 0..10 {
            match self.api("POST", &path, Some(&json!({ "ref": "main" }))) {
                Ok(_) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("dispatch {name}: {last}");
    }

    /// Every job of the repository that this runner ran. Gitea lists jobs oldest first, so a
    /// reused instance's newest jobs are on the last page: read them all.
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

    /// The log of a job: the content of each row, timestamps removed.
    pub(crate) fn log_lines(&self, job_id: i64) -> Result<Vec<String>, String> {
        let text = self.curl(
            "GET",
            &format!(
                "{}/api/v1/repos/{}/actions/jobs/{job_id}/logs",
                self.url, self.repo
            ),
            None,
        )?;
        Ok(text
            .lines()
            .map(|line| line.split_once(' ').map_or(line, |(_, c)| c).to_owned())
            .collect())
    }

    /// The log of `job` (a job as the REST API lists it) as one text.
    pub(crate) fn log_text(&self, job: &Value) -> String {
        self.log_lines(job["id"].as_i64().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"))
            .join("\n")
    }

    /// Logs in to the web UI (its routes need a session) and POSTs `body` to `path`; Gitea
    /// 1.26 has no REST API to cancel a run, and its REST job view reports every step with
    /// the job's conclusion, so those two go through the web UI's own JSON routes.
    pub(crate) fn web_post(&self, dir: &Path, path: &str, body: &str) -> String {
        let jar = dir.join("cookies");
        let jar = jar.to_string_lossy();
        let login = Command::new("curl")
            .args([
                "--silent",
                "-o",
                "/dev/null",
                "-c",
                &jar,
                "-b",
                &jar,
                "-X",
                "POST",
            ])
            .arg("--data-urlencode")
            .arg(format!("user_name={}", self.admin_user))
            .arg("--data-urlencode")
            .arg(format!("password={}", self.admin_password))
            .arg(format!("{}/user/login", self.url))
            .status();
        assert!(
            matches!(login, Ok(s) if s.success()),
            "login failed: {login:?}"
        );
        let output = Command::new("curl")
            .args(["--silent", "--fail", "-b", &jar, "-X", "POST"])
            .args(["-H", "Content-Type: application/json", "--data", body])
            .arg(format!("{}/{}{path}", self.url, self.repo))
            .output()
            .unwrap_or_else(|e| panic!("curl: {e}"));
        assert!(
            output.status.success(),
            "POST {path} failed: {:?}",
            output.status
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub(crate) fn cancel_run(&self, run_id: i64, dir: &Path) {
        self.web_post(dir, &format!("/actions/runs/{run_id}/cancel"), "{}");
    }

    /// The web UI's run view of one job (its JSON: `state.currentJob`, `state.run`, ...).
    pub(crate) fn web_job_view(&self, dir: &Path, run_id: i64, job_id: i64) -> Value {
        let text = self.web_post(
            dir,
            &format!("/actions/runs/{run_id}/jobs/{job_id}"),
            r#"{"logCursors":[]}"#,
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Step names and states as the web UI shows them for one job.
    pub(crate) fn web_steps(&self, dir: &Path, run_id: i64, job_id: i64) -> Vec<(String, String)> {
        self.web_job_view(dir, run_id, job_id)["state"]["currentJob"]["steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .map(|s| {
                        (
                            s["summary"].as_str().unwrap_or_default().to_owned(),
                            s["status"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub(crate) fn base64(bytes: &[u8]) -> String {
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

pub(crate) fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// A registered runner in its own directory, with one host label.
pub(crate) struct Runner {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) label: String,
    pub(crate) id: i64,
}

/// A daemon a failing test did not stop would outlive the test and go on taking jobs from a
/// deleted directory: when the runner goes, every `runnel` process still working in its
/// directory is killed (found through `/proc`, so a pid reused since is never hit).
impl Drop for Runner {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        let runnel = std::path::Path::new(env!("CARGO_BIN_EXE_runnel"));
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let proc = entry.path();
            let in_dir =
                std::fs::read_link(proc.join("cwd")).is_ok_and(|cwd| cwd == self.dir.path());
            let is_runnel = std::fs::read_link(proc.join("exe")).is_ok_and(|exe| exe == runnel);
            if in_dir && is_runnel {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

pub(crate) fn register(gitea: &Gitea, prefix: &str) -> Runner {
    register_with(gitea, prefix, |label| format!("{label}:host"), &[])
}

/// Registers a runner whose one label is `label_spec(name)`, with extra `register` flags.
pub(crate) fn register_with(
    gitea: &Gitea,
    prefix: &str,
    label_spec: impl Fn(&str) -> String,
    extra: &[&str],
) -> Runner {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let label = unique(prefix);
    let id = register_in(gitea, dir.path(), &label, &label_spec(&label), extra);
    Runner { dir, label, id }
}

/// Registers a runner named `name` with the labels `labels` (and extra `register` flags) in
/// the directory `dir`, which keeps its `.runner`; returns the runner's id.
pub(crate) fn register_in(
    gitea: &Gitea,
    dir: &Path,
    name: &str,
    labels: &str,
    extra: &[&str],
) -> i64 {
    let output = runnel()
        .current_dir(dir)
        .args(["register", "--no-interactive", "--instance", &gitea.url])
        .args(["--token", &gitea.registration_token, "--name", name])
        .args(["--labels", labels])
        .args(extra)
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

impl Runner {
    pub(crate) fn daemon(&self, args: &[&str]) -> Child {
        self.daemon_with_env(args, &[])
    }

    /// [`daemon`](Runner::daemon) with extra environment variables.
    pub(crate) fn daemon_with_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Child {
        runnel()
            .current_dir(self.dir.path())
            .arg("daemon")
            .args(args)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("daemon.log"))
                    .map_or(Stdio::null(), Stdio::from),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("runnel daemon: {e}"))
    }

    pub(crate) fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Waits for the daemon to exit (bounded only so a broken test ends).
    pub(crate) fn wait(&self, mut child: Child) -> std::process::ExitStatus {
        for _ in 0..1200 {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!(
            "daemon did not exit within 120 s; its log:\n{}",
            self.daemon_log()
        );
    }

    /// Sends SIGTERM (the daemon's clean stop).
    pub(crate) fn terminate(&self, child: &Child) {
        signal(child.id(), "TERM");
    }

    /// Stops the daemon with SIGTERM and asserts that it ended cleanly.
    pub(crate) fn stop(&self, child: Child) {
        self.terminate(&child);
        let status = self.wait(child);
        assert!(status.success(), "{status}\n{}", self.daemon_log());
    }

    /// Writes `config.yaml` in the runner's directory (`daemon(&["-c", "config.yaml"])`).
    pub(crate) fn write_config(&self, text: &str) {
        std::fs::write(self.dir.path().join("config.yaml"), text)
            .unwrap_or_else(|e| panic!("write config.yaml: {e}"));
    }

    /// Waits until the daemon's log contains `needle` (bounded so a broken test ends).
    pub(crate) fn wait_for_log(&self, needle: &str) {
        for _ in 0..600 {
            if self.daemon_log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("daemon log never showed {needle:?}:\n{}", self.daemon_log());
    }
}

/// Sends `SIG<name>` to `pid`.
pub(crate) fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "kill -{name} {pid}: {status:?}"
    );
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A plain HTTP GET of `url` with curl: (status code, body).
pub(crate) fn http_get(url: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["--silent", "--max-time", "5", "-w", "\n%{http_code}", url])
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// Polls until `count` jobs of `runner` are completed; returns them.
pub(crate) fn completed_jobs(gitea: &Gitea, runner: &Runner, count: usize) -> Vec<Value> {
    for _ in 0..600 {
        // Only the first run: Gitea 1.26 now and then starts a pushed workflow twice when
        // other tests write to the repository at the same moment (seen in CI).
        let jobs = gitea.jobs_of(runner.id);
        let first_run = jobs.iter().filter_map(|j| j["run_id"].as_i64()).min();
        let jobs: Vec<Value> = jobs
            .into_iter()
            .filter(|j| j["run_id"].as_i64() == first_run)
            .collect();
        if jobs.len() >= count && jobs.iter().all(|j| j["status"] == "completed") {
            return jobs;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "jobs of {} not completed; daemon log:\n{}",
        runner.label,
        runner.daemon_log()
    );
}

pub(crate) fn step_states(job: &Value) -> Vec<(String, String)> {
    job["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default().to_owned(),
                        s["conclusion"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn workflow(label: &str, jobs: &str) -> String {
    format!(
        "name: {label}\non:\n  push:\n    paths: ['.gitea/workflows/{label}.yml']\njobs:\n{jobs}"
    )
}

/// Waits until the runner's first job shows `line` in Gitea; returns the job.
pub(crate) fn wait_for_line(gitea: &Gitea, runner: &Runner, line: &str) -> Value {
    for _ in 0..600 {
        if let Some(job) = gitea.jobs_of(runner.id).into_iter().next() {
            let id = job["id"].as_i64().unwrap_or_default();
            if gitea
                .log_lines(id)
                .is_ok_and(|lines| lines.iter().any(|l| l == line))
            {
                return job;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{line:?} never appeared; daemon log:\n{}",
        runner.daemon_log()
    );
}

/// Pushes a job whose second step fails and runs `--once` until it has run (a stray duplicate
/// run, if Gitea ever makes one, goes first); checks the states the web UI shows — Gitea adds
/// "Set up job" and "Complete job" (with the job's result) around the job's own steps — and
/// returns the job.
pub(crate) fn run_the_failing_job(gitea: &Gitea, runner: &Runner) -> Value {
    let label = &runner.label;
    let failing = format!("{label}-fail");
    let jobs = format!(
        "  broken:\n    runs-on: {label}\n    steps:\n      - run: echo before\n      - run: exit 3\n      - run: echo never\n      - if: always()\n        run: echo cleanup\n"
    );
    gitea.push_workflow(&failing, &workflow(&failing, &jobs));
    let mut broken = None;
    for _ in 0..3 {
        let status = runner.wait(runner.daemon(&["--once"]));
        assert!(status.success(), "{status}\n{}", runner.daemon_log());
        broken = gitea
            .jobs_of(runner.id)
            .into_iter()
            .find(|j| j["name"] == "broken" && j["status"] == "completed");
        if broken.is_some() {
            break;
        }
    }
    let job = broken.unwrap_or_else(|| {
        panic!(
            "the broken job did not run; jobs: {:?}",
            gitea.jobs_of(runner.id)
        )
    });
    assert_eq!(job["conclusion"], "failure", "{job}");
    let steps = gitea.web_steps(
        runner.dir.path(),
        job["run_id"].as_i64().unwrap_or_default(),
        job["id"].as_i64().unwrap_or_default(),
    );
    let steps: Vec<(&str, &str)> = steps
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("Set up job", "success"),
            ("Run echo before", "success"),
            ("Run exit 3", "failure"),
            ("Run echo never", "skipped"),
            ("Run echo cleanup", "success"),
            ("Complete job", "failure"),
        ]
    );
    job
}
