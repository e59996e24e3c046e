//! `runnel vm image build|ls|rm` end to end (issue #17): a tiny image built `--from` a busybox
//! root tree (no debootstrap: busybox-static, the guest agent's libraries), listed, a job's
//! echo run in a VM booted from it, built again as a no-op, removed with its content. Slow (a
//! build of the initramfs and disk, and a TCG boot): behind `RUN_SLOW_TESTS=1`, skipped with a
//! note when QEMU, a static busybox or apt cannot be had.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::run_vm::{agent, assert_nothing_left, step_line, workflow_dir};

const WORKFLOW: &str = r#"on: push
jobs:
  vm:
    runs-on: linux
    defaults:
      run:
        shell: sh
    steps:
      - run: |
          echo "hello from $(cat /etc/flavour)"
          echo "kernel $(uname -r)"
"#;

fn runnel(args: &[&str], images: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(args)
        .arg("--images")
        .arg(images)
        .env("NO_COLOR", "1")
        .output()
        .expect("run runnel")
}

/// A root tree of busybox and what the agent (dynamically linked) needs to start.
fn busybox_tree(dir: &Path, agent: &Path) -> Result<(), String> {
    let busybox = Path::new("/bin/busybox");
    let ldd = |path: &Path| Command::new("ldd").arg(path).output();
    match ldd(busybox) {
        Ok(out) if !out.status.success() => {}
        _ => return Err("/bin/busybox is not a static busybox".to_owned()),
    }
    let copy = |from: &Path| -> Result<(), String> {
        let to = dir.join(from.strip_prefix("/").unwrap_or(from));
        std::fs::create_dir_all(to.parent().expect("a parent")).map_err(|e| e.to_string())?;
        std::fs::copy(from, &to)
            .map(|_| ())
            .map_err(|e| format!("copy {}: {e}", from.display()))
    };
    copy(busybox)?;
    for applet in [
        "sh", "echo", "cat", "uname", "ls", "mkdir", "rm", "env", "sleep", "true", "false",
    ] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))
            .map_err(|e| e.to_string())?;
    }
    let out = ldd(agent).map_err(|e| format!("ldd: {e}"))?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`, `/lib64/ld-linux-x86-64.so.2 (0x…)`
        let path = line
            .split("=>")
            .last()
            .and_then(|rest| rest.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(path) = path {
            copy(
                &PathBuf::from(path)
                    .canonicalize()
                    .map_err(|e| e.to_string())?,
            )?;
            // The name the loader looks for, when it is a link to the file copied.
            let link = dir.join(path.trim_start_matches('/'));
            if !link.exists() {
                let target = PathBuf::from(path)
                    .canonicalize()
                    .map_err(|e| e.to_string())?;
                std::fs::create_dir_all(link.parent().expect("a parent"))
                    .map_err(|e| e.to_string())?;
                std::os::unix::fs::symlink(&target, &link).map_err(|e| e.to_string())?;
            }
        }
    }
    std::fs::create_dir_all(dir.join("etc")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("etc/flavour"), "a busybox root\n").map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn a_tiny_image_is_built_from_a_tree_listed_booted_and_removed() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!(
            "note: skipping the vm image test: builds an image and boots it; set RUN_SLOW_TESTS=1"
        );
        return;
    }
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        let why = "no qemu-system-x86_64 (tests/vm/build.sh installs it)";
        assert!(std::env::var_os("RUNNEL_REQUIRE_VM").is_none(), "{why}");
        eprintln!("note: skipping the vm image test: {why}");
        return;
    }
    let agent = agent();
    let tree = tempfile::tempdir().expect("tempdir");
    if let Err(reason) = busybox_tree(tree.path(), &agent) {
        assert!(std::env::var_os("RUNNEL_REQUIRE_VM").is_none(), "{reason}");
        eprintln!("note: skipping the vm image test: {reason}");
        return;
    }
    // The shared images directory, so the kernel package is downloaded once; a name of this
    // run's own (the content, the same for every run, is shared by id).
    let images = std::env::var_os("RUNNEL_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/runnel")))
        .expect("a cache directory")
        .join("vm");
    let name = format!("tiny-busybox-{}", std::process::id());
    let tree_arg = tree.path().to_string_lossy().into_owned();
    let build = runnel(
        &["vm", "image", "build", &name, "--from", &tree_arg],
        &images,
    );
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "build failed:\n{stderr}");
    let dir = String::from_utf8_lossy(&build.stdout).trim().to_owned();
    assert_eq!(PathBuf::from(&dir), images.join(&name), "{stderr}");
    let again = runnel(
        &["vm", "image", "build", &name, "--from", &tree_arg],
        &images,
    );
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success() && again_err.contains("is up to date"),
        "the same recipe again is a no-op:\n{again_err}"
    );

    let ls = runnel(&["vm", "image", "ls"], &images);
    let listed = String::from_utf8_lossy(&ls.stdout);
    let line = listed
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("{name} not in\n{listed}"));
    let id = line.split_whitespace().nth(1).expect("an id").to_owned();
    assert_eq!(id.len(), 12, "{line}");

    let job = workflow_dir(WORKFLOW);
    let temp = tempfile::tempdir().expect("tempdir");
    let run = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["run", "-P", &format!("linux=vm://{name}")])
        .current_dir(job.path())
        .env("NO_COLOR", "1")
        .env("TMPDIR", temp.path())
        .env("RUNNEL_VM_IMAGES", &images)
        .env("RUNNEL_VM_AGENT", &agent)
        .output()
        .expect("run runnel");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let run_err = String::from_utf8_lossy(&run.stderr);
    eprintln!("{stdout}\n{run_err}");
    let removed = runnel(&["vm", "image", "rm", &name], &images);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{run_err}");
    assert!(
        stdout
            .lines()
            .any(|l| step_line(l) == "hello from a busybox root"),
        "{stdout}"
    );
    let kernel = stdout
        .lines()
        .find_map(|l| step_line(l).strip_prefix("kernel "))
        .expect("the kernel line");
    assert!(kernel.ends_with("-amd64"), "{kernel}");
    assert_nothing_left(temp.path());

    let removed_out = String::from_utf8_lossy(&removed.stdout);
    assert!(removed.status.success(), "{removed_out}");
    assert!(
        removed_out.starts_with(&format!("removed {name}")),
        "{removed_out}"
    );
    assert!(!images.join(&name).exists());
    let gone = runnel(&["vm", "image", "rm", &name], &images);
    assert_eq!(gone.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains(&format!("no image `{name}`")),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}

/// `ls` and `rm` through the binary on an images directory of fake images (no build): the
/// columns, an image of the layout before ids, the content kept while another name has it.
#[test]
fn ls_and_rm_print_what_they_see_and_do() {
    let images = tempfile::tempdir().expect("tempdir");
    let root = images.path();
    let id = "0123456789abcdef0123456789abcdef";
    let content = root.join("by-id").join(id);
    std::fs::create_dir_all(&content).expect("create");
    for (file, bytes) in [
        ("vmlinuz", 1024),
        ("initramfs", 1024),
        ("rootfs.qcow2", 2048),
        ("recipe", 0),
    ] {
        std::fs::write(content.join(file), vec![0u8; bytes]).expect("write");
    }
    for name in ["one", "two"] {
        std::os::unix::fs::symlink(Path::new("by-id").join(id), root.join(name)).expect("link");
    }
    std::fs::create_dir_all(root.join("old-style")).expect("create");
    std::fs::write(root.join("old-style/vmlinuz"), "k").expect("write");

    let ls = runnel(&["vm", "image", "ls"], root);
    let out = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.status.success(), "{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "ID", "SIZE", "CREATED"], "{out}");
    assert_eq!(rows[1][..3], ["old-style", "-", "1"], "{out}");
    assert_eq!(rows[2][..4], ["one", "0123456789ab", "4.0", "KiB"], "{out}");
    assert_eq!(rows[3][..2], ["two", "0123456789ab"], "{out}");
    assert!(rows[2][4].ends_with('Z'), "{out}");

    let rm = runnel(&["vm", "image", "rm", "one"], root);
    assert_eq!(String::from_utf8_lossy(&rm.stdout), "removed one\n");
    assert!(content.is_dir(), "`two` still names the content");
    let rm = runnel(&["vm", "image", "rm", "two"], root);
    assert_eq!(
        String::from_utf8_lossy(&rm.stdout),
        "removed two and its content 0123456789ab\n"
    );
    assert!(!content.exists());
    let bad = runnel(&["vm", "image", "rm", "../etc"], root);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is not an image name"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
