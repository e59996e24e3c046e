//! The user's chain end to end (issue #15): one repository whose workflow checks itself out,
//! restores a cache keyed by `hashFiles('**/lockfile')` (a miss on the first run, a hit on the
//! second), uploads an artifact and downloads it in a job that `needs` the first. Here through
//! `runnel run`, on the host and in Docker; `chain_daemon` runs the same workflow through the
//! daemon against the real Gitea. Each mode runs it twice and checks: the first run misses and
//! saves, the second hits the key itself and saves nothing, the dependent job of each run reads
//! the artifact its own run uploaded, and no container of the runner is left behind.
//!
//! GitHub is unreachable, so the actions are the stand-ins built from the real toolkit packages
//! (`@actions/cache` as in `cache_action`, `@actions/artifact` as in `artifacts_gitea`) and, for
//! the daemon, `fixtures/checkout-action` (plain git with the job's token, as the stock action
//! authenticates). `runnel run` skips a checkout of its own repository (the working tree is the
//! workspace), so its mirror serves no checkout at all.
//!
//! Slow: node, npm and git; Docker and `runnel-test/debian:bookworm` for the Docker mode.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cache_support::{require_debian_image, slow_or_skip};
use crate::support::{git, publish_to_mirror, repo_root, runnel};

/// What `lockfile` holds in every run: the cache key stays the same, so run 2 hits.
pub(crate) const LOCKFILE: &str = "lockfile-1\n";

/// The workflow: jobs `build` and `test` on `runs_on`; `env` is extra workflow-level `env:`
/// lines (indented for it).
pub(crate) fn workflow(name: &str, runs_on: &str, env: &str) -> String {
    format!(
        r#"name: {name}
on: push
env:
  CHAIN: "{name}"{env}
jobs:
  build:
    runs-on: {runs_on}
    steps:
      - uses: actions/checkout@v4
      - id: cache
        uses: actions/cache@v4
        with:
          path: deps
          key: deps-${{{{ runner.os }}}}-${{{{ hashFiles('**/lockfile') }}}}
      - name: build
        run: |
          echo "hit=[${{{{ steps.cache.outputs.cache-hit }}}}]"
          if [ -f deps/made.txt ]; then echo "restored=[$(cat deps/made.txt)]"; else echo "restored=[none]"; fi
          mkdir -p deps out
          echo "deps of $(cat lockfile)" > deps/made.txt
          echo "report of $(cat lockfile), note $(cat note.txt)" > out/report.txt
      - uses: actions/upload-artifact@v4
        with:
          name: report
          path: out
  test:
    needs: build
    runs-on: {runs_on}
    steps:
      - uses: actions/download-artifact@v4
        with:
          name: report
          path: got
      - run: echo "artifact=[$(cat got/report.txt)]"
"#
    )
}

/// Workflow `env:` for jobs in `runnel-test/debian:bookworm`, whose node is Debian's 18: the
/// toolkit's uploads (artifacts, cache v2) use node 20's global `crypto`, which node 18 has
/// only behind this flag. (The stock actions would need it there too.)
pub(crate) const NODE18_ENV: &str = "\n  NODE_OPTIONS: --experimental-global-webcrypto";

/// Builds the stand-in actions into `out/<name>` (each an action repository): `cache`,
/// `upload-artifact`, `download-artifact` and `checkout`; returns (name, directory) pairs.
pub(crate) fn build_actions(out: &Path) -> Vec<(&'static str, PathBuf)> {
    crate::cache_action::build_cache_action(&out.join("cache"));
    // Writes `out/upload` and `out/download`.
    crate::artifacts_gitea::build_actions(out);
    let checkout = out.join("checkout");
    crate::support::copy_tree(
        &repo_root().join("crates/runnel-cli/tests/fixtures/checkout-action"),
        &checkout,
    );
    vec![
        ("cache", out.join("cache")),
        ("upload-artifact", out.join("upload")),
        ("download-artifact", out.join("download")),
        ("checkout", checkout),
    ]
}

fn assert_has(log: &str, wanted: &[&str], context: &str) {
    for line in wanted {
        assert!(log.contains(line), "no {line:?} in:\n{log}\n{context}");
    }
}

/// The cache key run `log` looked up: `deps-Linux-` and a SHA-256 in hex (an empty
/// `hashFiles` would leave the key ending in `-`).
fn looked_up_key(log: &str) -> String {
    let start = log
        .find("looking up deps-Linux-")
        .map(|at| at + "looking up ".len())
        .unwrap_or_else(|| panic!("no cache lookup in:\n{log}"));
    let key: String = log[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ',')
        .collect();
    let hash = key.trim_start_matches("deps-Linux-");
    assert!(
        hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "the key {key:?} holds no hashFiles result:\n{log}"
    );
    key
}

/// Checks one run of the chain: `build` and `test` are the logs of its two jobs (the same
/// text when the runner prints both together), `note` what `note.txt` held, `first` whether
/// the cache was still empty. Returns the cache key.
pub(crate) fn check_run(build: &str, test: &str, note: &str, first: bool, context: &str) -> String {
    let key = looked_up_key(build);
    if first {
        // As the stock action: no entry at all leaves `cache-hit` unset.
        assert_has(
            build,
            &[
                "hit=[]",
                "restored=[none]",
                &format!("saved cache {key} with id "),
            ],
            context,
        );
        assert!(
            !build.contains("with id -1"),
            "not saved:\n{build}\n{context}"
        );
    } else {
        assert_has(
            build,
            &[
                "hit=[true]",
                "restored=[deps of lockfile-1]",
                &format!("key {key} was restored as it is: not saving"),
            ],
            context,
        );
    }
    assert_has(build, &["uploaded artifact report: id "], context);
    let artifact = format!("artifact=[report of lockfile-1, note {note}]");
    assert_has(test, &["downloaded artifact report", &artifact], context);
    key
}

/// Containers, networks and volumes Docker still holds for the runnel process `pid`.
pub(crate) fn leftovers_of(pid: u32) -> String {
    let label = format!("label=runnel.pid={pid}");
    let mut found = String::new();
    for args in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"],
        &["volume", "ls", "-q"],
    ] {
        let output = Command::new("docker")
            .args(args)
            .args(["--filter", &label])
            .output()
            .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
        assert!(output.status.success(), "docker {args:?}: {output:?}");
        found.push_str(String::from_utf8_lossy(&output.stdout).trim());
    }
    found
}

/// A working tree with the workflow, `lockfile` and `note.txt` (one commit), the mirror that
/// serves the stand-in actions to `runnel run`, and the `XDG_CACHE_HOME` its runs share (so
/// run 2 finds run 1's cache entry).
struct Project {
    tree: tempfile::TempDir,
    xdg_cache: tempfile::TempDir,
    actions_url: String,
    _mirror: tempfile::TempDir,
}

impl Project {
    fn new(runs_on: &str, env: &str) -> Project {
        let mirror = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let built = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for (name, dir) in build_actions(built.path()) {
            if name != "checkout" {
                publish_to_mirror(mirror.path(), &format!("actions/{name}"), &dir, "v4");
            }
        }
        let tree = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let workflows = tree.path().join(".gitea/workflows");
        std::fs::create_dir_all(&workflows).unwrap_or_else(|e| panic!("mkdir: {e}"));
        std::fs::write(workflows.join("chain.yml"), workflow("chain", runs_on, env))
            .unwrap_or_else(|e| panic!("write workflow: {e}"));
        std::fs::write(tree.path().join("lockfile"), LOCKFILE)
            .unwrap_or_else(|e| panic!("write lockfile: {e}"));
        git(tree.path(), &["init", "-q"]);
        git(tree.path(), &["add", "-A", "."]);
        git(tree.path(), &["commit", "-q", "-m", "chain"]);
        Project {
            tree,
            xdg_cache: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
            actions_url: format!("file://{}", mirror.path().display()),
            _mirror: mirror,
        }
    }

    /// Writes `note` to `note.txt` and runs the workflow; returns its stdout and stderr, after
    /// checking that it succeeded and left no Docker object behind.
    fn run(&self, note: &str, extra: &[&str]) -> (String, String) {
        std::fs::write(self.tree.path().join("note.txt"), format!("{note}\n"))
            .unwrap_or_else(|e| panic!("write note.txt: {e}"));
        let child = runnel()
            .current_dir(self.tree.path())
            .args(["run", "--actions-url", &self.actions_url])
            .args(extra)
            .env("XDG_CACHE_HOME", self.xdg_cache.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("runnel run: {e}"));
        let pid = child.id();
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("runnel run: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "runnel run: {}\n{stdout}\n{stderr}",
            output.status
        );
        assert_has(&stdout, &["✓ workflow success"], &stderr);
        // Only the Docker mode has extra arguments (`-P`); the host mode needs no Docker.
        if !extra.is_empty() {
            assert_eq!(leftovers_of(pid), "", "objects left behind by runnel run");
        }
        (stdout, stderr)
    }
}

/// Runs the chain twice in `project` (with `extra` arguments) and checks both runs.
fn miss_then_hit(project: &Project, extra: &[&str]) {
    let (first, stderr) = project.run("first", extra);
    assert_has(
        &first,
        &["Skipping `actions/checkout@v4`: the workspace is this run's working tree"],
        &stderr,
    );
    let key = check_run(&first, &first, "first", true, &stderr);
    let (second, stderr) = project.run("second", extra);
    assert_eq!(check_run(&second, &second, "second", false, &stderr), key);
}

#[test]
fn the_chain_misses_then_hits_and_passes_its_artifact_with_runnel_run_on_the_host() {
    let test = "the_chain_misses_then_hits_and_passes_its_artifact_with_runnel_run_on_the_host";
    if !slow_or_skip(test, "node, npm and git") {
        return;
    }
    miss_then_hit(&Project::new("ubuntu-latest", ""), &[]);
}

#[test]
fn the_chain_misses_then_hits_and_passes_its_artifact_with_runnel_run_in_docker() {
    let test = "the_chain_misses_then_hits_and_passes_its_artifact_with_runnel_run_in_docker";
    if !slow_or_skip(
        test,
        "node, npm, git, Docker and runnel-test/debian:bookworm",
    ) {
        return;
    }
    require_debian_image();
    let project = Project::new("ubuntu-latest", NODE18_ENV);
    miss_then_hit(
        &project,
        &["-P", "ubuntu-latest=runnel-test/debian:bookworm"],
    );
}
