//! Two `runnel run` processes with separate local cache directories share one S3 cache
//! (`--cache-s3`, versitygw from `tests/s3/start.sh`): the first saves with the real
//! `@actions/cache`, the second restores it by a restore-key prefix. Slow: needs Go (to build
//! versitygw once), node and npm.

use std::path::Path;
use std::process::Command;

use crate::cache::node_packages;
use crate::support::{repo_root, run_expecting, runnel};

/// A versitygw instance, stopped on drop.
struct S3Server {
    name: String,
    env: Vec<(String, String)>,
}

impl S3Server {
    fn start() -> Self {
        let name = format!("cli-it-{}", std::process::id());
        let output = Command::new("bash")
            .arg(repo_root().join("tests/s3/start.sh"))
            .arg(&name)
            .output()
            .expect("run tests/s3/start.sh");
        assert!(
            output.status.success(),
            "tests/s3/start.sh could not start versitygw (it needs Go and the module proxy):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let env_file = stdout.lines().last().unwrap_or_default().trim().to_owned();
        let text = std::fs::read_to_string(&env_file).expect("read the S3 env file");
        let env = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { name, env }
    }

    fn get(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{key} missing in the S3 env file"))
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

const SCRIPT: &str = r#"'use strict';
const fs = require('fs');
const cache = require('@actions/cache');
const [mode, key] = process.argv.slice(2);
async function main() {
  if (mode === 'save') {
    fs.mkdirSync('payload', { recursive: true });
    fs.writeFileSync('payload/a.txt', 'saved-by-' + key);
    const id = await cache.saveCache(['payload'], key);
    console.log('SAVED ' + (id > 0 ? 'ok' : 'skipped'));
  } else {
    fs.rmSync('payload', { recursive: true, force: true });
    const hit = await cache.restoreCache(['payload'], key, ['runnel-s3-']);
    const text = fs.existsSync('payload/a.txt') ? fs.readFileSync('payload/a.txt', 'utf8') : 'none';
    console.log('RESTORED ' + hit + ' ' + text);
  }
}
main().catch((e) => { console.error('FAILED', e); process.exit(1); });
"#;

fn run_once(server: &S3Server, modules: &Path, mode: &str, key: &str) -> String {
    let dir = tempfile::tempdir().expect("workspace");
    let script = dir.path().join("cache_job.js");
    std::fs::write(&script, SCRIPT).expect("write script");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    let text = format!(
        "on: push\njobs:\n  cache:\n    runs-on: ubuntu-latest\n    steps:\n      - run: node {} {mode} {key}\n        env:\n          NODE_PATH: {}\n",
        script.display(),
        modules.display()
    );
    std::fs::write(workflows.join("ci.yml"), text).expect("write workflow");
    // Each process has its own local directory: only the bucket is shared.
    let local = tempfile::tempdir().expect("cache dir");
    let url = format!(
        "{}/{}/it-prefix",
        server.get("S3_ENDPOINT"),
        server.get("S3_BUCKET")
    );
    let mut command = runnel();
    command
        .current_dir(dir.path())
        .args(["run", "--cache-server-path"])
        .arg(local.path())
        .args(["--cache-s3", &url])
        .env("AWS_ACCESS_KEY_ID", server.get("AWS_ACCESS_KEY_ID"))
        .env("AWS_SECRET_ACCESS_KEY", server.get("AWS_SECRET_ACCESS_KEY"))
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[0]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn two_runnel_processes_share_one_s3_cache() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping two_runnel_processes_share_one_s3_cache; set RUN_SLOW_TESTS=1");
        return;
    }
    let server = S3Server::start();
    let modules = node_packages("node", "@actions/cache");
    let saved = run_once(&server, &modules, "save", "runnel-s3-1");
    assert!(saved.contains("SAVED ok"), "{saved}");
    let restored = run_once(&server, &modules, "restore", "runnel-s3-missing");
    assert!(
        restored.contains("RESTORED runnel-s3-1 saved-by-runnel-s3-1"),
        "{restored}"
    );
}
