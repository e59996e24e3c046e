//! Where a Docker job's files live. Normally its `/__w` is a directory of this machine,
//! bind-mounted; when the Docker engine cannot see that directory (it runs on another machine,
//! or this runner runs in a container), jobs fall back to a volume and Docker's archive API.
//! The fallback is exercised for real: the runner runs in a mount namespace of its own where
//! its temp dir is a private tmpfs that dockerd does not see (`unshare -m`, root).

use std::process::Command;

const WORKFLOW: &str = r#"on: push
jobs:
  files:
    runs-on: linux
    steps:
      - id: produce
        run: echo "value=from-step-one" >> "$GITHUB_OUTPUT"
      - run: echo "got ${{ steps.produce.outputs.value }}"
"#;

#[test]
fn jobs_fall_back_to_volumes_when_the_engine_cannot_see_the_job_directory() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping the job files fallback: needs Docker; set RUN_SLOW_TESTS=1");
        return;
    }
    let image = Command::new("docker")
        .args(["image", "inspect", "runnel-test/busybox"])
        .output();
    assert!(
        image.is_ok_and(|o| o.status.success()),
        "Docker or runnel-test/busybox is missing: run tests/docker/ensure-dockerd.sh and tests/images/build.sh busybox"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), WORKFLOW).expect("write workflow");
    let private = dir.path().join("private-tmp");
    std::fs::create_dir_all(&private).expect("create private tmp");
    let runnel = env!("CARGO_BIN_EXE_runnel");
    let script = r#"mount -t tmpfs runnel-private "$1" && TMPDIR="$1" exec "$2" run -P linux=runnel-test/busybox"#;
    let output = Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(&private)
        .arg(runnel)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => panic!("unshare (util-linux) is needed for this test: {error}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("unshare failed") && !stderr.contains("mount:"),
        "this test needs root (a private mount namespace): {stderr}"
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("  got from-step-one\n"), "{stdout}");
}
