//! `runnel register` and `runnel daemon` against a real Gitea (`tests/gitea/start.sh`, instance
//! `daemon-it`, reused while it lives; `RUNNEL_DAEMON_GITEA_ENV` names another instance's env
//! file). Workflows are pushed through the contents API and results read back through
//! Gitea's REST API, as a user would see them.
//!
//! Each test registers its own runner with a label unique to the run, and its workflows run
//! only on changes to their own file (`on.push.paths`), so tests share the instance without
//! taking each other's jobs. Slow: they return early unless `RUN_SLOW_TESTS` is set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::{repo_root, runnel};

struct Gitea {
    url: String,
    admin_user: String,
    admin_password: String,
    admin_token: String,
    registration_token: String,
    repo: String,
}

static GITEA: OnceLock<Result<Gitea, String>> = OnceLock::new();

/// The Gitea for `test`, or `None` (with a note) when slow tests are off.
fn gitea(test: &str) -> Option<&'static Gitea> {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping {test}: needs a real Gitea; set RUN_SLOW_TESTS=1");
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
        admin_user: get("GITEA_ADMIN_USER")?,
        admin_password: get("GITEA_ADMIN_PASSWORD")?,
        admin_token: get("GITEA_ADMIN_TOKEN")?,
        registration_token: get("GITEA_REGISTRATION_TOKEN")?,
        repo: get("GITEA_REPO")?,
    })
}

impl Gitea {
    fn curl(&self, method: &str, url: &str, body: Option<&Value>) -> Result<String, String> {
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
    fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let text = self.curl(method, &format!("{}/api/v1{path}", self.url), body)?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| format!("{path}: not JSON ({e}): {text}"))
    }

    /// Pushes a workflow file to `main` (retried: parallel tests commit to the same branch).
    fn push_workflow(&self, name: &str, text: &str) {
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

    /// Every job of the repository that this runner ran. Gitea lists jobs oldest first, so a
    /// reused instance's newest jobs are on the last page: read them all.
    fn jobs_of(&self, runner_id: i64) -> Vec<Value> {
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
    fn log_lines(&self, job_id: i64) -> Result<Vec<String>, String> {
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

    /// Logs in to the web UI (its routes need a session) and POSTs `body` to `path`; Gitea
    /// 1.26 has no REST API to cancel a run, and its REST job view reports every step with
    /// the job's conclusion, so those two go through the web UI's own JSON routes.
    fn web_post(&self, dir: &Path, path: &str, body: &str) -> String {
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

    fn cancel_run(&self, run_id: i64, dir: &Path) {
        self.web_post(dir, &format!("/actions/runs/{run_id}/cancel"), "{}");
    }

    /// Step names and states as the web UI shows them for one job.
    fn web_steps(&self, dir: &Path, run_id: i64, job_id: i64) -> Vec<(String, String)> {
        let text = self.web_post(
            dir,
            &format!("/actions/runs/{run_id}/jobs/{job_id}"),
            r#"{"logCursors":[]}"#,
        );
        let view: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        view["state"]["currentJob"]["steps"]
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

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// A registered runner in its own directory, with one host label.
struct Runner {
    dir: tempfile::TempDir,
    label: String,
    id: i64,
}

fn register(gitea: &Gitea, prefix: &str) -> Runner {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let label = unique(prefix);
    let output = runnel()
        .current_dir(dir.path())
        .args(["register", "--no-interactive", "--instance", &gitea.url])
        .args(["--token", &gitea.registration_token, "--name", &label])
        .args(["--labels", &format!("{label}:host")])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("runnel register: {e}"));
    assert!(
        output.status.success(),
        "runnel register failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = std::fs::read_to_string(dir.path().join(".runner"))
        .unwrap_or_else(|e| panic!(".runner not written: {e}"));
    let file: Value = serde_json::from_str(&file).unwrap_or_else(|e| panic!(".runner: {e}"));
    let id = file["id"]
        .as_i64()
        .unwrap_or_else(|| panic!(".runner without id: {file}"));
    Runner { dir, label, id }
}

impl Runner {
    fn daemon(&self, args: &[&str]) -> Child {
        runnel()
            .current_dir(self.dir.path())
            .arg("daemon")
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join("daemon.log"))
                    .map_or(Stdio::null(), Stdio::from),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("runnel daemon: {e}"))
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Waits for the daemon to exit (bounded only so a broken test ends).
    fn wait(&self, mut child: Child) -> std::process::ExitStatus {
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
    fn terminate(&self, child: &Child) {
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert!(matches!(status, Ok(s) if s.success()));
    }
}

/// Polls until `count` jobs of `runner` are completed; returns them.
fn completed_jobs(gitea: &Gitea, runner: &Runner, count: usize) -> Vec<Value> {
    for _ in 0..600 {
        let jobs = gitea.jobs_of(runner.id);
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

fn step_states(job: &Value) -> Vec<(String, String)> {
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

fn workflow(label: &str, jobs: &str) -> String {
    format!(
        "name: {label}\non:\n  push:\n    paths: ['.gitea/workflows/{label}.yml']\njobs:\n{jobs}"
    )
}

#[test]
fn register_writes_the_runner_file_and_gitea_lists_the_runner() {
    let Some(gitea) = gitea("register_writes_the_runner_file_and_gitea_lists_the_runner") else {
        return;
    };
    let runner = register(gitea, "reg");
    let listed = gitea
        .api(
            "GET",
            &format!("/admin/actions/runners/{}", runner.id),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed["name"], runner.label.as_str(), "{listed}");
    let labels: Vec<&str> = listed["labels"]
        .as_array()
        .map(|l| l.iter().filter_map(|l| l["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        labels,
        [runner.label.as_str()],
        "only the name goes to Gitea"
    );
    // Registering again over an existing file is refused.
    let again = runnel()
        .current_dir(runner.dir.path())
        .args(["register", "--no-interactive", "--instance", &gitea.url])
        .args(["--token", &gitea.registration_token, "--labels", "x"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds the registration"));
}

#[test]
fn a_passing_and_a_failing_job_with_step_states_logs_and_live_latency() {
    let Some(gitea) = gitea("a_passing_and_a_failing_job_with_step_states_logs_and_live_latency")
    else {
        return;
    };
    let runner = register(gitea, "pass");
    let label = &runner.label;
    let jobs = format!(
        "  hello:\n    runs-on: {label}\n    steps:\n      - run: echo hello from runnel\n      - name: ticks\n        run: |\n          for i in $(seq 1 15); do echo \"tick $i $(date +%s%N)\"; sleep 0.2; done\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&["--once"]);
    // While the job runs, read its log as a user would and note when each tick appears.
    let mut seen: HashMap<String, u128> = HashMap::new();
    let started = Instant::now();
    let mut job_id = None;
    while started.elapsed() < Duration::from_secs(60) && seen.len() < 15 {
        if job_id.is_none() {
            job_id = gitea
                .jobs_of(runner.id)
                .first()
                .and_then(|j| j["id"].as_i64());
        }
        if let Some(id) = job_id
            && let Ok(lines) = gitea.log_lines(id)
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            for line in lines.iter().filter(|l| l.starts_with("tick ")) {
                seen.entry(line.clone()).or_insert(now);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = runner.wait(child);
    assert!(
        status.success(),
        "daemon: {status}\n{}",
        runner.daemon_log()
    );
    let mut latencies: Vec<f64> = seen
        .iter()
        .filter_map(|(line, at)| {
            let written: u128 = line.split(' ').nth(2)?.parse().ok()?;
            Some(at.saturating_sub(written) as f64 / 1e6)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "measure: line written -> readable through Gitea's API: n={} p50={:.0} ms p95={:.0} ms max={:.0} ms (includes this test's ~20 ms polling and curl)",
        latencies.len(),
        pick(0.5),
        pick(0.95),
        pick(1.0)
    );

    let job = completed_jobs(gitea, &runner, 1).remove(0);
    assert_eq!(job["conclusion"], "success", "{job}");
    assert_eq!(
        step_states(&job),
        [
            (
                "Run echo hello from runnel".to_owned(),
                "success".to_owned()
            ),
            ("ticks".to_owned(), "success".to_owned())
        ]
    );
    let id = job["id"].as_i64().unwrap_or_default();
    let lines = gitea.log_lines(id).unwrap_or_else(|e| panic!("{e}"));
    assert!(lines.iter().any(|l| l == "hello from runnel"), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("tick ")).count(),
        15,
        "{lines:?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("Job success"));

    // A failing step fails the job; the step after it is skipped, `always()` still runs.
    let failing = format!("{label}-fail");
    let jobs = format!(
        "  broken:\n    runs-on: {label}\n    steps:\n      - run: echo before\n      - run: exit 3\n      - run: echo never\n      - if: always()\n        run: echo cleanup\n"
    );
    gitea.push_workflow(&failing, &workflow(&failing, &jobs));
    // `--once` takes whichever queued job of this label comes first: run it until the job
    // under test has run (a stray duplicate run, if Gitea ever makes one, goes first).
    let mut broken = None;
    for _ in 0..3 {
        let status = runner.wait(runner.daemon(&["--once"]));
        assert!(
            status.success(),
            "daemon: {status}\n{}",
            runner.daemon_log()
        );
        let jobs = gitea.jobs_of(runner.id);
        broken = jobs
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
    let job = &job;
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
    // Gitea adds "Set up job" (rows before the first step) and "Complete job" (after the last,
    // with the job's result) around the job's own steps.
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
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(lines.iter().any(|l| l == "cleanup"), "{lines:?}");
    assert!(!lines.iter().any(|l| l == "never"), "{lines:?}");
}

#[test]
fn secrets_are_masked_and_outputs_cross_needs() {
    let Some(gitea) = gitea("secrets_are_masked_and_outputs_cross_needs") else {
        return;
    };
    let runner = register(gitea, "needs");
    let label = &runner.label;
    let secret_name = format!("S_{}", label.replace('-', "_").to_uppercase());
    let secret_value = format!("hush-{}", unique("v"));
    gitea
        .api(
            "PUT",
            &format!("/repos/{}/actions/secrets/{secret_name}", gitea.repo),
            Some(&json!({ "data": secret_value })),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let jobs = format!(
        "  first:\n    runs-on: {label}\n    outputs:\n      answer: ${{{{ steps.compute.outputs.answer }}}}\n    steps:\n      - id: compute\n        run: |\n          echo \"answer=42\" >> \"$GITHUB_OUTPUT\"\n          echo \"the secret is ${{{{ secrets.{secret_name} }}}}\"\n  second:\n    needs: first\n    runs-on: {label}\n    steps:\n      - run: echo \"got ${{{{ needs.first.outputs.answer }}}} after ${{{{ needs.first.result }}}}\"\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&[]);
    let jobs = completed_jobs(gitea, &runner, 2);
    runner.terminate(&child);
    let status = runner.wait(child);
    assert!(
        status.success(),
        "SIGTERM ends the daemon cleanly: {status}"
    );
    let by_name = |name: &str| {
        jobs.iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in {jobs:?}"))
    };
    let first = by_name("first");
    let second = by_name("second");
    assert_eq!(first["conclusion"], "success", "{first}");
    assert_eq!(second["conclusion"], "success", "{second}");
    let first_log = gitea
        .log_lines(first["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"))
        .join("\n");
    assert!(first_log.contains("the secret is ***"), "{first_log}");
    assert!(
        !first_log.contains(&secret_value),
        "secret leaked: {first_log}"
    );
    let second_log = gitea
        .log_lines(second["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"))
        .join("\n");
    assert!(second_log.contains("got 42 after success"), "{second_log}");
}

#[test]
fn a_run_cancelled_in_gitea_stops_the_job() {
    let Some(gitea) = gitea("a_run_cancelled_in_gitea_stops_the_job") else {
        return;
    };
    let runner = register(gitea, "cancel");
    let label = &runner.label;
    let jobs = format!(
        "  sleepy:\n    runs-on: {label}\n    steps:\n      - run: echo started; sleep 120; echo woke\n      - run: echo after\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&["--once"]);
    let mut running = None;
    for _ in 0..600 {
        let job = gitea.jobs_of(runner.id).into_iter().next();
        if let Some(job) = job {
            let id = job["id"].as_i64().unwrap_or_default();
            let started = gitea
                .log_lines(id)
                .is_ok_and(|lines| lines.iter().any(|l| l == "started"));
            if started {
                running = Some(job);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let job = running.unwrap_or_else(|| panic!("job never started: {}", runner.daemon_log()));
    let run_id = job["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no run_id: {job}"));
    let cancelled_at = Instant::now();
    gitea.cancel_run(run_id, runner.dir.path());
    let status = runner.wait(child);
    println!(
        "measure: cancel in Gitea -> daemon exited after the job stopped: {:.2} s",
        cancelled_at.elapsed().as_secs_f64()
    );
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    assert_eq!(job["conclusion"], "cancelled", "{job}");
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !lines.iter().any(|l| l == "woke" || l == "after"),
        "{lines:?}"
    );
}
