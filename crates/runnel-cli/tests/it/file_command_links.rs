//! A step that replaces `$GITHUB_OUTPUT`, `$GITHUB_ENV` and `$GITHUB_STEP_SUMMARY` with links
//! to `/etc/passwd` gets the same answer from every backend: the step fails saying each file
//! is a link, and nothing of `/etc/passwd` (the job's or this machine's) reaches outputs, env,
//! summary or the log. One workflow and one set of expectations; the host backend always, the
//! Docker backend with `RUN_SLOW_TESTS=1`, the vm and Kubernetes backends in `run_vm` and
//! `run_kubernetes`.

use std::process::Command;

/// Links the three files, then shows what a later step would see (it must not run).
pub(crate) const WORKFLOW: &str = r#"on: push
jobs:
  links:
    runs-on: linux
    steps:
      - id: out
        run: |
          ln -sf /etc/passwd "$GITHUB_OUTPUT"
          ln -sf /etc/passwd "$GITHUB_ENV"
          ln -sf /etc/passwd "$GITHUB_STEP_SUMMARY"
      - if: always()
        run: |
          echo "outputs: ${{ toJSON(steps.out.outputs) }}"
          echo "env with root: $(env | grep -c 'root:' || true)"
"#;

/// What every backend must say about [`WORKFLOW`]: `all` is the run's stdout and stderr.
pub(crate) fn assert_links_refused(code: Option<i32>, all: &str) {
    assert_eq!(code, Some(1), "the linking step must fail the job:\n{all}");
    for expected in [
        "Unable to process file command 'output' successfully.",
        "Unable to process file command 'env' successfully.",
        "set_output_1",
        "set_env_1",
        "step_summary_1",
        "is a symbolic link: files the runner reads back are read only as regular files, never \
         through a link",
        "outputs: {}",
        "env with root: 0",
    ] {
        assert!(all.contains(expected), "{expected:?} missing:\n{all}");
    }
    // Neither /etc/passwd's lines nor a summary made of them.
    assert!(!all.contains("root:x:0:0"), "/etc/passwd leaked:\n{all}");
    assert!(!all.contains("Invalid format"), "{all}");
}

/// Runs [`WORKFLOW`] with `runnel run -P linux=<platform>`.
pub(crate) fn run_with(platform: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), WORKFLOW).expect("write workflow");
    let output = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["run", "--no-cache-server", "-P"])
        .arg(format!("linux={platform}"))
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".xdg-cache"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run runnel");
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), all)
}

#[test]
fn linked_file_commands_fail_the_step_on_the_host() {
    let (code, all) = run_with("-self-hosted");
    assert_links_refused(code, &all);
}

#[test]
fn linked_file_commands_fail_the_step_in_docker() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping linked file commands in Docker: set RUN_SLOW_TESTS=1");
        return;
    }
    let image = Command::new("docker")
        .args(["image", "inspect", "runnel-test/debian:bookworm"])
        .output();
    assert!(
        image.is_ok_and(|o| o.status.success()),
        "Docker or runnel-test/debian:bookworm is missing: run tests/docker/ensure-dockerd.sh and \
         tests/images/build.sh"
    );
    let (code, all) = run_with("docker://runnel-test/debian:bookworm");
    assert_links_refused(code, &all);
}
