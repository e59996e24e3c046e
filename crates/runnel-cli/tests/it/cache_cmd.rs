//! `runnel cache ls|rm|prune` through the real binary, and two `runnel run` processes sharing
//! one cache directory. Entries are saved by host jobs of `runnel run` speaking cache v1 with
//! curl (the wire calls `@actions/cache` makes), so these need only the binary and curl.

use std::path::Path;
use std::process::{Command, Output};

use crate::cache_support::{curl_workflow as workflow, keys, write_workflow};
use crate::support::{run_expecting, runnel};

/// A `runnel run` of a workflow in a fresh workspace, sharing the cache directory `store`.
fn run_command(workspace: &Path, store: &Path, text: &str) -> Command {
    write_workflow(workspace, text);
    let mut command = runnel();
    command
        .current_dir(workspace)
        .arg("run")
        .arg("--cache-server-path")
        .arg(store)
        .env("NO_COLOR", "1");
    command
}

fn cache(store: &Path, args: &[&str], codes: &[i32]) -> Output {
    let mut command = runnel();
    command.arg("cache").args(args).arg("--dir").arg(store);
    run_expecting(command, None, codes)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn listed_keys(store: &Path) -> Vec<String> {
    let out = stdout(&cache(store, &["ls", "--format", "json"], &[0]));
    out.lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            value["key"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn ls_rm_and_prune_manage_the_entries_runnel_run_saved() {
    let store = tempfile::tempdir().expect("cache dir");
    // Nothing there yet: an empty listing, and nothing is created just to look.
    assert_eq!(
        stdout(&cache(store.path(), &["ls"], &[0])).trim(),
        "no cache entries"
    );
    assert!(!store.path().join("index.json").exists());

    let workspace = tempfile::tempdir().expect("workspace");
    let saved = keys(&["npm-linux-a", "npm-linux-b", "pip-linux", "cargo-x"]);
    let text = workflow(&saved, &[]);
    run_expecting(
        run_command(workspace.path(), store.path(), &text),
        None,
        &[0],
    );

    let text_listing = stdout(&cache(store.path(), &["ls"], &[0]));
    assert!(text_listing.contains("4 entries"), "{text_listing}");
    // The scope: the ref of the run that saved it (not a git work tree: refs/heads/main).
    assert!(
        text_listing.contains("REF") && text_listing.contains("refs/heads/main"),
        "{text_listing}"
    );
    assert!(text_listing.contains("npm-linux-b"), "{text_listing}");
    assert_eq!(listed_keys(store.path()), saved);
    let line = stdout(&cache(
        store.path(),
        &["ls", "--key", "npm-", "--format", "json"],
        &[0],
    ));
    let first: serde_json::Value =
        serde_json::from_str(line.lines().next().expect("a line")).expect("JSON");
    assert_eq!(first["key"], "npm-linux-a");
    assert_eq!(first["ref"], "refs/heads/main");
    assert_eq!(first["size"], "data-npm-linux-a".len());
    assert!(
        first["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let repo = first["repository"].as_str().expect("repository").to_owned();
    assert_eq!(line.lines().count(), 2);
    assert_eq!(
        stdout(&cache(store.path(), &["ls", "--repo", "nobody/else"], &[0])).trim(),
        "no cache entries"
    );

    // By key (and repository), then by id.
    let removed = stdout(&cache(
        store.path(),
        &["rm", "pip-linux", "--repo", &repo],
        &[0],
    ));
    assert!(removed.contains("removed 1 entries"), "{removed}");
    let id = first["id"].as_u64().expect("id").to_string();
    cache(store.path(), &["rm", "--id", &id], &[0]);
    assert_eq!(listed_keys(store.path()), keys(&["npm-linux-b", "cargo-x"]));
    let missing = cache(store.path(), &["rm", "no-such-key"], &[2]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no cache entry matches"),
        "{missing:?}"
    );

    // Prune to a size keeps the most recently used; --older-than 0s empties the rest.
    let size = "data-cargo-x".len().to_string();
    let pruned = stdout(&cache(store.path(), &["prune", "--max-size", &size], &[0]));
    assert!(pruned.contains("npm-linux-b"), "{pruned}");
    assert_eq!(listed_keys(store.path()), keys(&["cargo-x"]));
    cache(store.path(), &["prune"], &[2]);
    cache(store.path(), &["prune", "--older-than", "0s"], &[0]);
    assert!(listed_keys(store.path()).is_empty());
    let archives = std::fs::read_dir(store.path().join("entries"))
        .expect("entries dir")
        .count();
    assert_eq!(archives, 0, "rm and prune delete the archives too");
}

#[test]
fn the_directory_comes_from_the_config_file() {
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("daemon-cache");
    std::fs::write(
        dir.path().join("config.yaml"),
        format!("cache:\n  dir: {}\n", store.display()),
    )
    .expect("write config");
    let workspace = tempfile::tempdir().expect("workspace");
    let text = workflow(&keys(&["from-config"]), &[]);
    run_expecting(run_command(workspace.path(), &store, &text), None, &[0]);
    let mut command = runnel();
    command
        .current_dir(dir.path())
        .args(["cache", "ls", "-c", "config.yaml", "--format", "json"]);
    let out = stdout(&run_expecting(command, None, &[0]));
    assert!(out.contains(r#""key":"from-config""#), "{out}");
}

#[test]
fn two_runnel_runs_share_one_cache_directory() {
    let store = tempfile::tempdir().expect("cache dir");
    let names: [Vec<String>; 2] = [
        (0..15).map(|i| format!("first-{i}")).collect(),
        (0..15).map(|i| format!("second-{i}")).collect(),
    ];
    let workspaces = [
        tempfile::tempdir().expect("workspace"),
        tempfile::tempdir().expect("workspace"),
    ];
    // Both processes start, save their keys and restore them at the same time.
    let children: Vec<_> = names
        .iter()
        .zip(&workspaces)
        .map(|(keys, workspace)| {
            run_command(workspace.path(), store.path(), &workflow(keys, keys))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn runnel run")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("wait");
        assert!(
            output.status.success(),
            "a runnel run failed: {}\n{}",
            stdout(&output),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // A third run restores every key of both.
    let all: Vec<String> = names.concat();
    let workspace = tempfile::tempdir().expect("workspace");
    let output = run_expecting(
        run_command(workspace.path(), store.path(), &workflow(&[], &all)),
        None,
        &[0],
    );
    let out = stdout(&output);
    for key in &all {
        assert!(
            out.contains(&format!("GOT {key} data-{key}")),
            "{key}:\n{out}"
        );
    }
    assert_eq!(listed_keys(store.path()).len(), 30);
}

#[test]
fn cache_size_limit_evicts_the_least_recently_used() {
    let store = tempfile::tempdir().expect("cache dir");
    let workspace = tempfile::tempdir().expect("workspace");
    // Entries are 12 or 13 bytes ("data-first-k", ...): 30 bytes hold two of the three.
    let saved = keys(&["first-k", "second-k", "third-k"]);
    let mut command = run_command(workspace.path(), store.path(), &workflow(&saved, &[]));
    command.args(["--cache-size-limit", "30"]);
    run_expecting(command, None, &[0]);
    assert_eq!(listed_keys(store.path()), keys(&["second-k", "third-k"]));
    let mut bad = runnel();
    bad.args(["run", "--cache-size-limit", "lots"]);
    let refused = run_expecting(bad, None, &[2]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is not a size"),
        "{refused:?}"
    );
}
