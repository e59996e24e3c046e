//! What the cache tests share: the real `@actions/cache` (npm packages under
//! `crates/runnel-cache/tests/node`) and the one job script that drives it, the curl client of
//! the v1 calls, a throw-away S3 server (versitygw, `tests/s3/`) and a `runnel cache-server`
//! process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::support::{repo_root, runnel};

/// Whether slow tests run; prints why `test` is skipped when they do not.
pub(crate) fn slow_or_skip(test: &str, needs: &str) -> bool {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping {test}: needs {needs}; set RUN_SLOW_TESTS=1");
        return false;
    }
    true
}

/// Fails unless Docker answers and has the test image the Docker variants run in.
pub(crate) fn require_debian_image() {
    let images = Command::new("docker")
        .args(["image", "inspect", "runnel-test/debian:bookworm"])
        .output();
    assert!(
        images.is_ok_and(|o| o.status.success()),
        "Docker or runnel-test/debian:bookworm is missing: run tests/docker/ensure-dockerd.sh and tests/images/build.sh"
    );
}

/// `crates/runnel-cache/tests/<dir>` with its `node_modules` installed (`npm ci` when missing).
pub(crate) fn node_packages(dir: &str, marker: &str) -> PathBuf {
    let dir = repo_root().join("crates/runnel-cache/tests").join(dir);
    crate::support::npm_ci(&dir, &[&format!("node_modules/{marker}")]);
    dir.join("node_modules")
}

/// A job step's script around `@actions/cache`: `node cache_job.js save KEY` saves a small
/// directory under KEY; `node cache_job.js restore KEY [RESTORE-PREFIX]` restores it. Prints
/// `CACHE_URL set|unset`, then `SAVED ok|skipped` or `RESTORED <matched key> <content>`.
const CACHE_JOB: &str = r#"'use strict';
const fs = require('fs');
const cache = require('@actions/cache');
const [mode, key, prefix] = process.argv.slice(2);
async function main() {
  console.log('CACHE_URL ' + (process.env.ACTIONS_CACHE_URL ? 'set' : 'unset'));
  if (mode === 'save') {
    fs.mkdirSync('payload', { recursive: true });
    fs.writeFileSync('payload/a.txt', 'saved-by-' + key);
    const id = await cache.saveCache(['payload'], key);
    console.log('SAVED ' + (id > 0 ? 'ok' : 'skipped'));
  } else {
    fs.rmSync('payload', { recursive: true, force: true });
    const hit = await cache.restoreCache(['payload'], key, prefix ? [prefix] : []);
    const text = fs.existsSync('payload/a.txt') ? fs.readFileSync('payload/a.txt', 'utf8') : 'none';
    console.log('RESTORED ' + hit + ' ' + text);
  }
}
main().catch((e) => { console.error('FAILED', e); process.exit(1); });
"#;

/// Writes the `@actions/cache` job script into `dir`; returns its path.
pub(crate) fn write_cache_job(dir: &Path) -> PathBuf {
    let script = dir.join("cache_job.js");
    std::fs::write(&script, CACHE_JOB).unwrap_or_else(|e| panic!("write cache_job.js: {e}"));
    script
}

/// The claims of a job token (a JWT), read without checking its signature.
pub(crate) fn token_claims(token: &str) -> serde_json::Value {
    let payload = token.trim().split('.').nth(1).expect("a JWT");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (mut bits, mut count, mut bytes) = (0u32, 0, Vec::new());
    for c in payload.bytes() {
        let value = alphabet.iter().position(|a| *a == c).expect("base64url");
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
        }
    }
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Writes `.gitea/workflows/ci.yml` under `workspace`.
pub(crate) fn write_workflow(workspace: &Path, text: &str) {
    let workflows = workspace.join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).unwrap_or_else(|e| panic!("create workflow dir: {e}"));
    std::fs::write(workflows.join("ci.yml"), text).unwrap_or_else(|e| panic!("write: {e}"));
}

/// The v1 calls `@actions/cache` makes, with curl (bearer and the token in the URL, as the
/// runner hands them out): `save KEY` stores `data-KEY`, `restore KEY` prints `GOT KEY <bytes>`.
const CURL_CLIENT: &str = r#"set -eu
api="${ACTIONS_CACHE_URL}_apis/artifactcache"
auth="Authorization: Bearer $ACTIONS_RUNTIME_TOKEN"
save() {
  data="data-$1"
  id=$(curl -sSf -X POST -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"key\":\"$1\",\"version\":\"v1\"}" "$api/caches" | sed 's/.*"cacheId":\([0-9]*\).*/\1/')
  curl -sSf -X PATCH -H "$auth" -H 'Content-Type: application/octet-stream' \
    -H "Content-Range: bytes 0-$((${#data} - 1))/*" --data-binary "$data" "$api/caches/$id"
  curl -sSf -X POST -H "$auth" -H 'Content-Type: application/json' -d "{\"size\":${#data}}" "$api/caches/$id"
}
restore() {
  url=$(curl -sSf -H "$auth" "$api/cache?keys=$1&version=v1" | sed 's/.*"archiveLocation":"\([^"]*\)".*/\1/')
  echo "GOT $1 $(curl -sSf "$url")"
}
"#;

/// A step's script that saves each key of `save`, then restores each of `restore`, through
/// [`CURL_CLIENT`]; each line indented by `indent` spaces (for a `run: |` block).
pub(crate) fn curl_script(save: &[String], restore: &[String], indent: usize) -> String {
    let mut script = String::from(CURL_CLIENT);
    for key in save {
        script.push_str(&format!("save {key}\n"));
    }
    for key in restore {
        script.push_str(&format!("restore {key}\n"));
    }
    let pad = " ".repeat(indent);
    script.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// A one-job workflow whose host step saves each key of `save`, then restores each of
/// `restore`, through [`CURL_CLIENT`].
pub(crate) fn curl_workflow(save: &[String], restore: &[String]) -> String {
    let indented = curl_script(save, restore, 10);
    format!(
        "on: push\njobs:\n  cache:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n{indented}"
    )
}

pub(crate) fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| (*k).to_owned()).collect()
}

/// A versitygw instance from `tests/s3/start.sh`, stopped on drop.
pub(crate) struct S3Server {
    name: String,
    env: Vec<(String, String)>,
}

impl S3Server {
    pub(crate) fn start() -> Self {
        let name = format!("cli-it-{}-{}", std::process::id(), unique_suffix());
        let output = Command::new("bash")
            .arg(repo_root().join("tests/s3/start.sh"))
            .arg(&name)
            .output()
            .unwrap_or_else(|e| panic!("run tests/s3/start.sh: {e}"));
        assert!(
            output.status.success(),
            "tests/s3/start.sh could not start versitygw (it needs Go and the module proxy):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let env_file = stdout.lines().last().unwrap_or_default().trim().to_owned();
        let text = std::fs::read_to_string(&env_file)
            .unwrap_or_else(|e| panic!("read the S3 env file {env_file}: {e}"));
        let env = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { name, env }
    }

    pub(crate) fn get(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{key} missing in the S3 env file"))
    }

    /// `--cache-s3`/`--s3` URL of the bucket under `prefix`.
    pub(crate) fn url(&self, prefix: &str) -> String {
        format!(
            "{}/{}/{prefix}",
            self.get("S3_ENDPOINT"),
            self.get("S3_BUCKET")
        )
    }

    /// The access keys, for a command talking to the bucket.
    pub(crate) fn credentials(&self, command: &mut Command) {
        command
            .env("AWS_ACCESS_KEY_ID", self.get("AWS_ACCESS_KEY_ID"))
            .env("AWS_SECRET_ACCESS_KEY", self.get("AWS_SECRET_ACCESS_KEY"));
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("tests/s3/stop.sh"))
            .arg(&self.name)
            .output();
    }
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000)
        .unwrap_or_default()
}

/// A running `runnel cache-server` on 127.0.0.1 and a free port; SIGTERM and a wait on drop.
pub(crate) struct CacheServerProcess {
    child: Option<Child>,
    /// Kept open: a closed pipe would make the server's next print fail.
    _stdout: Option<BufReader<ChildStdout>>,
    /// `http://127.0.0.1:PORT/`, as it printed.
    pub(crate) url: String,
    log: tempfile::NamedTempFile,
}

impl CacheServerProcess {
    /// Starts `runnel cache-server --addr 127.0.0.1 ARGS...` in `dir` and waits for its
    /// "listening on" line.
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("log file: {e}"));
        let stderr = log
            .reopen()
            .unwrap_or_else(|e| panic!("reopen the log file: {e}"));
        let mut child = runnel()
            .current_dir(dir)
            .args(["cache-server", "--addr", "127.0.0.1"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("runnel cache-server: {e}"));
        let mut line = String::new();
        let mut stdout = child.stdout.take().map(BufReader::new);
        if let Some(stdout) = stdout.as_mut() {
            let _ = stdout.read_line(&mut line);
        }
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .map(str::to_owned);
        let mut server = Self {
            child: Some(child),
            _stdout: stdout,
            url: String::new(),
            log,
        };
        match url {
            Some(url) => server.url = url,
            None => {
                let status = server.stop();
                panic!(
                    "runnel cache-server did not start ({status}): {line}\n{}",
                    server.log()
                );
            }
        }
        server
    }

    /// What it logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// SIGTERM, then its exit status (bounded so a broken test ends).
    pub(crate) fn stop(&mut self) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("the cache server was already stopped");
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("runnel cache-server did not stop within 30 s of SIGTERM");
    }
}

impl Drop for CacheServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
