//! The S3 store through the real binary, against a real S3 server (versitygw from
//! `tests/s3/start.sh`). Two `runnel run` processes with separate local cache directories share
//! one bucket (`--cache-s3`): the first saves with the real `@actions/cache`, the second
//! restores it by a restore-key prefix. `runnel cache ls|rm|prune` manage the bucket's entries
//! (`--s3`, or `cache.s3` of `-c config.yaml`). Slow: needs Go (to build versitygw once), node
//! and npm.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::cache_support::{
    S3Server, curl_workflow, keys, node_packages, slow_or_skip, write_cache_job, write_workflow,
};
use crate::support::{run_expecting, runnel};

fn run_once(server: &S3Server, modules: &Path, mode: &str, key: &str) -> String {
    let dir = tempfile::tempdir().expect("workspace");
    let script = write_cache_job(dir.path());
    write_workflow(
        dir.path(),
        &format!(
            "on: push\njobs:\n  cache:\n    runs-on: ubuntu-latest\n    steps:\n      - run: node {} {mode} {key} runnel-s3-\n        env:\n          NODE_PATH: {}\n",
            script.display(),
            modules.display()
        ),
    );
    // Each process has its own local directory: only the bucket is shared.
    let local = tempfile::tempdir().expect("cache dir");
    let mut command = runnel();
    command
        .current_dir(dir.path())
        .args(["run", "--cache-server-path"])
        .arg(local.path())
        .args(["--cache-s3", &server.url("it-prefix")])
        .env("NO_COLOR", "1");
    server.credentials(&mut command);
    let output = run_expecting(command, None, &[0]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn two_runnel_processes_share_one_s3_cache() {
    if !slow_or_skip(
        "two_runnel_processes_share_one_s3_cache",
        "Go, node and npm",
    ) {
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

/// `runnel cache ARGS --s3 <bucket>/manage`.
fn cache(server: &S3Server, args: &[&str], codes: &[i32]) -> Output {
    let mut command = runnel();
    command
        .arg("cache")
        .args(args)
        .args(["--s3", &server.url("manage")]);
    server.credentials(&mut command);
    run_expecting(command, None, codes)
}

fn listed(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn listed_keys(server: &S3Server) -> Vec<String> {
    listed(&cache(server, &["ls", "--format", "json"], &[0]))
        .iter()
        .map(|entry| entry["key"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn cache_ls_rm_and_prune_manage_an_s3_cache() {
    if !slow_or_skip("cache_ls_rm_and_prune_manage_an_s3_cache", "Go and curl") {
        return;
    }
    let server = S3Server::start();
    let empty = cache(&server, &["ls"], &[0]);
    assert_eq!(
        String::from_utf8_lossy(&empty.stdout).trim(),
        "no cache entries"
    );

    // Saved one after the other by the curl client (cache v1): the S3 store lists and prunes
    // in creation order, oldest first.
    let workspace = tempfile::tempdir().expect("workspace");
    let saved = keys(&["npm-a", "npm-b", "pip", "cargo", "go"]);
    write_workflow(workspace.path(), &curl_workflow(&saved, &[]));
    let local = tempfile::tempdir().expect("cache dir");
    let mut run = runnel();
    run.current_dir(workspace.path())
        .args(["run", "--cache-server-path"])
        .arg(local.path())
        .args(["--cache-s3", &server.url("manage")])
        .env("NO_COLOR", "1");
    server.credentials(&mut run);
    run_expecting(run, None, &[0]);
    assert_eq!(listed_keys(&server), saved);
    let entries = listed(&cache(&server, &["ls", "--format", "json"], &[0]));
    assert!(
        entries.iter().all(|e| e["repository"] == "local/repo"
            && e["size"].as_u64() == Some(5 + e["key"].as_str().map_or(0, |k| k.len() as u64))),
        "{entries:?}"
    );
    let text = String::from_utf8_lossy(&cache(&server, &["ls", "--key", "npm-"], &[0]).stdout)
        .into_owned();
    assert!(text.contains("npm-a") && !text.contains("pip"), "{text}");
    assert!(text.contains("2 entries"), "{text}");

    // By key, and by id.
    let removed = cache(&server, &["rm", "npm-a"], &[0]);
    assert!(
        String::from_utf8_lossy(&removed.stdout).contains("removed 1 entries"),
        "{removed:?}"
    );
    let pip = entries
        .iter()
        .find(|e| e["key"] == "pip")
        .and_then(|e| e["id"].as_u64())
        .expect("pip's id");
    cache(&server, &["rm", "--id", &pip.to_string()], &[0]);
    assert_eq!(listed_keys(&server), keys(&["npm-b", "cargo", "go"]));
    let missing = cache(&server, &["rm", "no-such-key"], &[2]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no cache entry matches"),
        "{missing:?}"
    );

    // The oldest go first until the rest fits: "go" (7 bytes) stays.
    cache(&server, &["prune", "--max-size", "10"], &[0]);
    assert_eq!(listed_keys(&server), keys(&["go"]));
    // Nothing is a week old; everything is older than 0 s.
    cache(&server, &["prune", "--older-than", "7d"], &[0]);
    assert_eq!(listed_keys(&server), keys(&["go"]));

    // `-c config.yaml` with `cache.s3` names the same bucket.
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "cache:\n  s3:\n    endpoint: {}\n    bucket: {}\n    prefix: manage/\n    access_key: {}\n    secret_key: {}\n",
            server.get("S3_ENDPOINT"),
            server.get("S3_BUCKET"),
            server.get("AWS_ACCESS_KEY_ID"),
            server.get("AWS_SECRET_ACCESS_KEY"),
        ),
    )
    .expect("write config");
    let mut command = runnel();
    command.current_dir(dir.path()).args([
        "cache",
        "prune",
        "--older-than",
        "0s",
        "-c",
        "config.yaml",
    ]);
    let pruned = run_expecting(command, None, &[0]);
    assert!(
        String::from_utf8_lossy(&pruned.stdout).contains("removed 1 entries"),
        "{pruned:?}"
    );
    assert!(listed_keys(&server).is_empty());
}
