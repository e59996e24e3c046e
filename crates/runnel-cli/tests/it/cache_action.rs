//! `uses: actions/cache@v4` through the real binary: a workflow keyed on
//! `hashFiles('lock.txt')` with the restore key `deps-` runs three times against one cache
//! store. Run 1 finds nothing and its post step saves; `lock.txt` changes, so run 2 misses its
//! key but the restore key brings back run 1's directory (`cache-hit` false) and the post step
//! saves the new key; run 3, with the same `lock.txt`, hits the key itself (`cache-hit` true)
//! and saves nothing. On the host (cache v2, what `runnel run` offers) and, for the first two
//! runs, in Docker (cache v1: the workflow empties `ACTIONS_CACHE_SERVICE_V2`).
//!
//! GitHub is unreachable, so `actions/cache` (tag `v4`) is a stand-in served from a local bare
//! repository through `--actions-url file:///…`: a node action with the stock action's inputs,
//! `cache-hit` output and `post`/`post-if`, bundled with esbuild from
//! `tests/fixtures/cache-action/` around the real `@actions/cache` 4.1.0, as the stock action
//! bundles it. Each test has its own `XDG_CACHE_HOME`, so its runs share the cache store (and
//! the fetched action) with each other and with no other test.
//!
//! Slow: node, npm (`npm ci` in the fixture directory) and git; the Docker variant also Docker
//! and `runnel-test/debian:bookworm`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cache_support::{require_debian_image, slow_or_skip};
use crate::support::{publish_to_mirror, repo_root, run_expecting, runnel};

pub(crate) const NEEDS: &str = "node, npm and git";

/// Runs `program` in `dir`, panicking with its output when it fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("RUN_SLOW_TESTS=1 but `{program}` could not be started ({e}); install it")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} in {} failed: {}{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Bundles the stand-in `actions/cache` and pushes it, tagged `v4`, to the bare repository
/// `<mirror>/actions/cache`; returns the `--actions-url` serving it.
fn serve_cache_action(mirror: &Path) -> String {
    let work = mirror.join("work");
    build_cache_action(&work);
    publish_to_mirror(mirror, "actions/cache", &work, "v4");
    format!("file://{}", mirror.display())
}

/// Bundles the stand-in `actions/cache` into `work` as an action repository (`action.yml`,
/// `dist/restore.js`, `dist/save.js`).
pub(crate) fn build_cache_action(work: &Path) {
    let fixture = repo_root().join("crates/runnel-cli/tests/fixtures/cache-action");
    let modules = fixture.join("node_modules");
    crate::support::npm_ci(
        &fixture,
        &["node_modules/@actions/cache", "node_modules/.bin/esbuild"],
    );
    let esbuild = modules.join(".bin/esbuild").display().to_string();
    std::fs::create_dir_all(work.join("dist")).unwrap_or_else(|e| panic!("mkdir: {e}"));
    std::fs::copy(fixture.join("action.yml"), work.join("action.yml"))
        .unwrap_or_else(|e| panic!("copy action.yml: {e}"));
    for name in ["restore", "save"] {
        let outfile = format!(
            "--outfile={}",
            work.join(format!("dist/{name}.js")).display()
        );
        run_in(
            &fixture,
            &esbuild,
            &[
                &format!("{name}.js"),
                "--bundle",
                "--platform=node",
                "--target=node18",
                "--log-level=warning",
                &outfile,
            ],
        );
    }
}

/// The workflow: `env` is extra workflow-level `env:` lines (indented for it).
fn workflow(env: &str) -> String {
    format!(
        r#"on: push
env:
  RUNNEL_TEST: cache-action{env}
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: rm -rf deps
      - id: cache
        uses: actions/cache@v4
        with:
          path: deps
          key: deps-${{{{ hashFiles('lock.txt') }}}}
          restore-keys: |
            deps-
      - run: |
          echo "v2=[$ACTIONS_CACHE_SERVICE_V2]"
          echo "hit=[${{{{ steps.cache.outputs.cache-hit }}}}]"
          if [ -f deps/made.txt ]; then echo "restored=[$(cat deps/made.txt)]"; else echo "restored=[none]"; fi
          mkdir -p deps
          cat lock.txt > deps/made.txt
"#
    )
}

/// A workspace with the workflow and `lock.txt`, and the directory that serves as its
/// `XDG_CACHE_HOME`.
pub(crate) struct Project {
    workspace: tempfile::TempDir,
    xdg_cache: tempfile::TempDir,
    actions_url: String,
    _mirror: tempfile::TempDir,
    /// Extra variables of `runnel run` (a test cluster's `KUBECONFIG`).
    pub(crate) env: Vec<(String, String)>,
}

impl Project {
    pub(crate) fn new(env: &str) -> Project {
        let mirror = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let actions_url = serve_cache_action(mirror.path());
        let workspace = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let workflows = workspace.path().join(".gitea/workflows");
        std::fs::create_dir_all(&workflows).unwrap_or_else(|e| panic!("mkdir: {e}"));
        std::fs::write(workflows.join("ci.yml"), workflow(env))
            .unwrap_or_else(|e| panic!("write workflow: {e}"));
        Project {
            workspace,
            xdg_cache: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
            actions_url,
            _mirror: mirror,
            env: Vec::new(),
        }
    }

    /// Writes `lock` to `lock.txt` and runs the workflow; returns its stdout.
    fn run(&self, lock: &str, extra: &[&str]) -> String {
        std::fs::write(self.workspace.path().join("lock.txt"), lock)
            .unwrap_or_else(|e| panic!("write lock.txt: {e}"));
        let mut command = runnel();
        command
            .current_dir(self.workspace.path())
            .args(["run", "--actions-url", &self.actions_url])
            .args(extra)
            .env("XDG_CACHE_HOME", self.xdg_cache.path())
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(name, value)| (name, value)));
        let output = run_expecting(command, None, &[0]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn store(&self) -> PathBuf {
        self.xdg_cache.path().join("runnel/cache")
    }
}

fn assert_has(stdout: &str, wanted: &[&str]) {
    for line in wanted {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
}

/// Runs 1 and 2 (and 3 when `third`), checking each; `v2` is what the jobs see in
/// `ACTIONS_CACHE_SERVICE_V2`.
pub(crate) fn save_fall_back_and_hit(project: &Project, extra: &[&str], v2: &str, third: bool) {
    let first = project.run("lock-1\n", extra);
    let protocol = format!("v2=[{v2}]");
    assert_has(&first, &[&protocol]);
    // Inputs with a `-` in their name (`INPUT_RESTORE-KEYS`) reach the action.
    assert!(
        first.contains(r#", then ["deps-"]"#),
        "the action did not get its restore-keys input:\n{first}"
    );
    // As the stock action: no entry at all leaves `cache-hit` unset.
    assert_has(
        &first,
        &[
            "hit=[]",
            "restored=[none]",
            "saved cache deps-",
            "✓ workflow success",
        ],
    );
    assert!(
        !first.contains("with id -1"),
        "run 1 did not save:\n{first}"
    );
    assert!(
        project.store().is_dir(),
        "no cache store at {}",
        project.store().display()
    );

    let second = project.run("lock-2\n", extra);
    assert_has(
        &second,
        &[
            "hit=[false]",
            "restored=[lock-1]",
            "saved cache deps-",
            "✓ workflow success",
        ],
    );
    assert!(
        !second.contains("with id -1"),
        "run 2 did not save:\n{second}"
    );

    if third {
        let third = project.run("lock-2\n", extra);
        assert_has(
            &third,
            &[
                "hit=[true]",
                "restored=[lock-2]",
                "was restored as it is: not saving",
                "✓ workflow success",
            ],
        );
    }
}

#[test]
fn actions_cache_saves_falls_back_to_a_restore_key_and_hits_on_the_host() {
    if !slow_or_skip(
        "actions_cache_saves_falls_back_to_a_restore_key_and_hits_on_the_host",
        NEEDS,
    ) {
        return;
    }
    let project = Project::new("");
    save_fall_back_and_hit(&project, &[], "true", true);
}

#[test]
fn actions_cache_saves_and_falls_back_to_a_restore_key_in_docker() {
    if !slow_or_skip(
        "actions_cache_saves_and_falls_back_to_a_restore_key_in_docker",
        NEEDS,
    ) {
        return;
    }
    require_debian_image();
    // The image has node 18, whose missing global `crypto` the v2 upload needs: speak v1.
    let project = Project::new("\n  ACTIONS_CACHE_SERVICE_V2: \"\"");
    save_fall_back_and_hit(
        &project,
        &["-P", "ubuntu-latest=runnel-test/debian:bookworm"],
        "",
        false,
    );
}
