//! The vm backend's settings from `config.yaml`'s `vm:` section (issue #17), end to end:
//! `runnel run -c config.yaml` with a label whose own `vm.labels.<name>` entry gives it
//! 2 vCPUs, 1536 MiB and a 3 GiB root disk; the guest sees exactly that (`nproc`,
//! `/proc/meminfo`, `df`), its job directory over 9p as `vm.share: 9p` says; and
//! `vm.share: virtiofs`. Slow (a TCG boot): behind `RUN_SLOW_TESTS=1`, as the other vm tests.

use std::process::Command;

use crate::run_vm::{assert_nothing_left, setup, step_line, workflow_dir};

const WORKFLOW: &str = r#"on: push
jobs:
  vm:
    runs-on: big
    steps:
      - run: |
          echo "nproc=$(nproc)"
          echo "memtotal_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
          echo "root_bytes=$(df -B1 --output=size / | tail -n 1 | tr -d ' ')"
          echo "share=$(grep ' /runnel ' /proc/mounts | cut -d' ' -f3)"
"#;

/// The number after `key=` in the job's output.
fn value(stdout: &str, key: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| step_line(line).strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} line in\n{stdout}"))
}

#[test]
fn a_labels_own_vm_settings_from_config_yaml_reach_its_guest() {
    let Some((images, agent)) = setup("the vm settings job") else {
        return;
    };
    let dir = workflow_dir(WORKFLOW);
    let config = dir.path().join("runner-config.yaml");
    std::fs::write(
        &config,
        format!(
            "vm:\n  images: {}\n  share: 9p\n  cpus: 1\n  memory: 1GiB\n  labels:\n    big: {{cpus: 2, memory: 1536MiB, disk_size: 3GiB}}\n",
            images.display()
        ),
    )
    .expect("write config");
    let temp = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    command
        .args(["run", "-c"])
        .arg(&config)
        .args(["-P", "big=vm://debian-bookworm"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("TMPDIR", temp.path())
        .env("RUNNEL_VM_AGENT", &agent);
    // The file's settings, not the environment's, are under test.
    for name in [
        "RUNNEL_VM_IMAGES",
        "RUNNEL_VM_CPUS",
        "RUNNEL_VM_MEMORY_MIB",
        "RUNNEL_VM_NETWORK",
        "RUNNEL_VM_SHARE",
    ] {
        command.env_remove(name);
    }
    let output = command.output().expect("run runnel");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "2 vCPU(s), 1536 MiB, root disk grown to 3072 MiB, the job's directory over 9p"
        ),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|line| step_line(line) == "share=9p"),
        "{stdout}"
    );
    assert_eq!(value(&stdout, "nproc="), 2);
    // The kernel keeps some of the guest's memory for itself.
    let memory = value(&stdout, "memtotal_kib=");
    assert!(
        (1_300_000..=1_536 * 1024).contains(&memory),
        "MemTotal {memory} KiB"
    );
    // The image's root file system is 2 GiB; grown to the 3 GiB disk (less ext4's own).
    let root = value(&stdout, "root_bytes=");
    assert!(root > 2_900_000_000 && root <= 3 << 30, "root {root} bytes");
    assert_nothing_left(temp.path());
}

/// `virtiofsd`, built by `tests/vm/virtiofsd.sh` (cached; the suite's xtask runs it first), or
/// why not.
fn virtiofsd() -> Result<std::path::PathBuf, String> {
    let output = Command::new("bash")
        .arg(crate::support::repo_root().join("tests/vm/virtiofsd.sh"))
        .output()
        .map_err(|e| format!("cannot run tests/vm/virtiofsd.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "tests/vm/virtiofsd.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(std::path::PathBuf::from(
        stdout.lines().last().unwrap_or_default().trim(),
    ))
}

const VIRTIOFS_WORKFLOW: &str = r#"on: push
jobs:
  vm:
    runs-on: linux
    steps:
      - run: |
          echo "mount: $(grep ' /runnel ' /proc/mounts)"
          echo "written in the guest" > written.txt
          echo "FROM_STEP=over the share" >> "$GITHUB_ENV"
      - run: echo "hash=${{ hashFiles('written.txt') }} env=$FROM_STEP"
"#;

/// `vm.share: virtiofs` (issue #17): the guest mounts the job's directory over virtiofs, a file
/// a step writes there is seen by the runner (`hashFiles` reads the workspace on this machine,
/// the env file is read back), and no `virtiofsd` outlives the job.
#[test]
fn with_virtiofs_asked_the_jobs_directory_is_a_virtiofs_mount_seen_by_the_runner() {
    let Some((images, agent)) = setup("the virtiofs job") else {
        return;
    };
    let virtiofsd = match virtiofsd() {
        Ok(path) => path,
        Err(reason) => {
            // xtask requires the VM tests only when it built the images, not virtiofsd.
            eprintln!("note: skipping the virtiofs job: no virtiofsd: {reason}");
            return;
        }
    };
    let dir = workflow_dir(VIRTIOFS_WORKFLOW);
    let config = dir.path().join("runner-config.yaml");
    std::fs::write(
        &config,
        format!(
            "vm:\n  images: {}\n  share: virtiofs\n  virtiofsd: {}\n",
            images.display(),
            virtiofsd.display()
        ),
    )
    .expect("write config");
    let temp = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    command
        .args(["run", "-c"])
        .arg(&config)
        .args(["-P", "linux=vm://debian-bookworm"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("TMPDIR", temp.path())
        .env("RUNNEL_VM_AGENT", &agent);
    for name in ["RUNNEL_VM_IMAGES", "RUNNEL_VM_SHARE", "RUNNEL_VM_VIRTIOFSD"] {
        command.env_remove(name);
    }
    let output = command.output().expect("run runnel");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the job's directory over virtiofs"),
        "{stdout}"
    );
    let mount = stdout
        .lines()
        .find_map(|line| step_line(line).strip_prefix("mount: "))
        .unwrap_or_else(|| panic!("no mount line in\n{stdout}"));
    assert!(mount.starts_with("runnel-job /runnel virtiofs "), "{mount}");
    // hashFiles: the SHA-256 of the file's SHA-256 (one file), computed here with sha256sum.
    let file_hash = sha256(b"written in the guest\n");
    let digest: Vec<u8> = (0..file_hash.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&file_hash[i..i + 2], 16).expect("hex"))
        .collect();
    let expected = sha256(&digest);
    assert!(
        stdout.contains(&format!("hash={expected} env=over the share")),
        "{stdout}"
    );
    assert_nothing_left(temp.path());
}

/// The SHA-256 of `bytes` in hex, by coreutils' sha256sum.
fn sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write");
    let output = child.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A `virtiofsd` that cannot start fails the job with an error naming its command, and leaves
/// nothing (no QEMU is started).
#[test]
fn a_virtiofsd_that_cannot_start_fails_the_job_naming_the_command() {
    let Some((images, agent)) = setup("the failing virtiofsd job") else {
        return;
    };
    let dir = workflow_dir(VIRTIOFS_WORKFLOW);
    let config = dir.path().join("runner-config.yaml");
    std::fs::write(
        &config,
        format!(
            "vm:\n  images: {}\n  share: virtiofs\n  virtiofsd: /nonexistent/virtiofsd\n",
            images.display()
        ),
    )
    .expect("write config");
    let temp = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    command
        .args(["run", "-c"])
        .arg(&config)
        .args(["-P", "linux=vm://debian-bookworm"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("TMPDIR", temp.path())
        .env("RUNNEL_VM_AGENT", &agent)
        .env("RUNNEL_VM_ACCEL", "tcg");
    for name in ["RUNNEL_VM_IMAGES", "RUNNEL_VM_SHARE", "RUNNEL_VM_VIRTIOFSD"] {
        command.env_remove(name);
    }
    let output = command.output().expect("run runnel");
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_ne!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains("virtiofsd, which shares the job's directory with the guest, did not start")
            && all.contains("`/nonexistent/virtiofsd --socket-path="),
        "{all}"
    );
    assert!(all.contains("no virtiofsd was found"), "{all}");
    assert_nothing_left(temp.path());
}
