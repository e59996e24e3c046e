//! Docker actions' `pre-entrypoint` and `post-entrypoint` through the real binary in real
//! Docker (slow: `RUN_SLOW_TESTS=1`): a Dockerfile action fetched from a git mirror
//! (`--actions-url file:///…`; local actions have no `pre`, as on GitHub) runs its pre hooks
//! at job start in step order, its main parts as steps, and its post hooks after the steps in
//! reverse order — even though a later step failed (`post-if` defaults to `always()`) —
//! with the same image, args, inputs and env and `STATE_*` passed along; `pre-if`/`post-if`
//! that are false skip the hooks. Fixture: `tests/fixtures/docker-hooks/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{copy_tree, publish_to_mirror, run_expecting, runnel};

const WORKFLOW: &str = r#"on: push
jobs:
  lifecycle-hooks:
    runs-on: box
    steps:
      - uses: acme/lifecycle@v1
        with:
          who: first
      - uses: acme/lifecycle/conditional@v1
      - uses: acme/lifecycle@v1
        with:
          who: second
      - run: echo "failing on purpose"; exit 3
      - run: echo never
"#;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker-hooks")
}

/// A mirror holding `acme/lifecycle` (the fixture) with tag `v1`.
fn mirror() -> tempfile::TempDir {
    let mirror = tempfile::tempdir().expect("mirror");
    let work = tempfile::tempdir().expect("action work tree");
    copy_tree(&fixture(), work.path());
    publish_to_mirror(mirror.path(), "acme/lifecycle", work.path(), "v1");
    mirror
}

/// Docker and the test images, which `RUN_SLOW_TESTS` requires.
fn docker_or_skip(test: &str) -> bool {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping {test}: needs Docker; set RUN_SLOW_TESTS=1");
        return false;
    }
    let images = Command::new("docker")
        .args(["image", "inspect", "runnel-test/busybox"])
        .output();
    assert!(
        images.is_ok_and(|o| o.status.success()),
        "{test}: Docker or the test images are missing: run tests/docker/ensure-dockerd.sh and \
         tests/images/build.sh"
    );
    true
}

/// The containers (step containers included) that carry `label`.
fn containers_with_label(label: &str) -> String {
    let output = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label={label}"),
            "--format",
            "{{.ID}} {{.Image}}",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn docker_action_hooks_run_pre_at_start_and_post_in_reverse_after_a_failure() {
    if !docker_or_skip("docker_action_hooks_run_pre_at_start_and_post_in_reverse_after_a_failure") {
        return;
    }
    let mirror = mirror();
    let workspace = tempfile::tempdir().expect("workspace");
    let workflows = workspace.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("workflow dir");
    std::fs::write(workflows.join("hooks.yml"), WORKFLOW).expect("workflow");
    let cache = tempfile::tempdir().expect("cache");
    let actions_url = format!("file://{}", mirror.path().display());
    let mut command = runnel();
    command
        .current_dir(workspace.path())
        .args(["run", "--no-cache-server", "--actions-url", &actions_url])
        .args(["-P", "box=runnel-test/busybox"])
        .env("XDG_CACHE_HOME", cache.path())
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[1]);
    let stdout = String::from_utf8_lossy(&output.stdout);

    let hook_lines: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("[lifecycle-hooks]   "))
        .filter(|line| line.starts_with("hook ") || line.starts_with("failing"))
        .collect();
    assert_eq!(
        hook_lines,
        [
            "hook pre first arg=first env=runs-env",
            "hook pre second arg=second env=runs-env",
            "hook main first arg=first state=pre-of-first",
            "hook conditional",
            "hook main second arg=second state=pre-of-second",
            "failing on purpose",
            "hook post second arg=second state=pre-of-second,main-of-second",
            "hook post first arg=first state=pre-of-first,main-of-first",
        ],
        "{stdout}"
    );
    for expected in [
        "[lifecycle-hooks] ✓ Pre acme/lifecycle@v1",
        "[lifecycle-hooks] ✓ Post acme/lifecycle@v1",
        "[lifecycle-hooks] ✗ Run echo \"failing on purpose\"; exit 3",
        "[lifecycle-hooks] ✗ job failure",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // `pre-if` false and `post-if: success()` after a failure: no hooks for that step.
    assert!(
        !stdout.contains("Pre acme/lifecycle/conditional@v1"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Post acme/lifecycle/conditional@v1"),
        "{stdout}"
    );
    assert!(!stdout.contains("[lifecycle-hooks]   never"), "{stdout}");
    // The run has ended: any container of the job is a leftover.
    let left = containers_with_label("runnel.job=lifecycle-hooks");
    assert!(left.is_empty(), "containers left behind: {left}");
}
