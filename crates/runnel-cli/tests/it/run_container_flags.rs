//! act's container flags on `runnel run`, through the real binary and Docker: `--network`,
//! `--privileged`, `--container-cap-add/-drop`, `--container-options` and `--userns` reach the
//! job container (they are `config.yaml`'s `container:` keys, as for the daemon), and
//! `--container-architecture` creates it for that platform, or fails saying the image is for
//! another one.

use std::process::Command;

use crate::run::{docker_or_skip, run_in, write_workflow};

const IMAGE: &str = "ubuntu-latest=runnel-test/debian:bookworm";

/// The job's effective capabilities (`CapEff` of its step's shell), as printed by the workflow
/// below.
fn capabilities(stdout: &str) -> u64 {
    let hex = stdout
        .lines()
        .find_map(|line| line.split("CapEff:").nth(1))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no CapEff line in:\n{stdout}"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("CapEff {hex:?} in:\n{stdout}"))
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_SYS_ADMIN: u64 = 1 << 21;
const CAP_SYS_TIME: u64 = 1 << 25;

/// A Docker network with one peer container on it, removed when dropped.
struct Network {
    name: String,
    peer: String,
}

impl Network {
    fn create() -> Network {
        let name = format!("runnel-flags-{}", std::process::id());
        let peer = format!("{name}-peer");
        docker(&["network", "create", &name]);
        docker(&[
            "run",
            "-d",
            "--rm",
            "--name",
            &peer,
            "--network",
            &name,
            "runnel-test/busybox",
            "sleep",
            "120",
        ]);
        Network { name, peer }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.peer])
            .output();
        let _ = Command::new("docker")
            .args(["network", "rm", &self.name])
            .output();
    }
}

fn docker(args: &[&str]) {
    let output = Command::new("docker").args(args).output().expect("docker");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn network_caps_and_options_reach_the_job_container() {
    if !docker_or_skip("network_caps_and_options_reach_the_job_container") {
        return;
    }
    let network = Network::create();
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        &format!(
            "on: push\njobs:\n  flags:\n    runs-on: ubuntu-latest\n    steps:\n      \
             - run: grep CapEff /proc/self/status\n      \
             - run: getent hosts runnel-test\n      \
             - run: getent hosts {peer} && echo peer-found\n",
            peer = network.peer
        ),
    );
    let (stdout, stderr) = run_in(
        dir.path(),
        &[
            "-P",
            IMAGE,
            "--network",
            &network.name,
            "--container-cap-add",
            "SYS_TIME",
            "--container-cap-drop",
            "CHOWN",
            "--container-options=--add-host runnel-test:10.9.8.7",
            "--userns",
            "host",
        ],
        0,
    );
    let caps = capabilities(&stdout);
    assert!(caps & CAP_SYS_TIME != 0, "SYS_TIME added: {caps:x}");
    assert!(caps & CAP_CHOWN == 0, "CHOWN dropped: {caps:x}");
    assert!(caps & CAP_SYS_ADMIN == 0, "not privileged: {caps:x}");
    assert!(stdout.contains("10.9.8.7"), "--container-options: {stdout}");
    assert!(
        stdout.contains("peer-found"),
        "--network {}: the peer on it answers by name:\n{stdout}\n{stderr}",
        network.name
    );
}

/// Where the engine's own bounding set lacks capabilities (this project's CI machine: Docker
/// 20.10 without CAP_SYS_RESOURCE, see `packaging_systemd`), Docker cannot start a privileged
/// container at all; the job then fails with the engine's refusal to apply the capabilities,
/// which is as much as that machine can show.
#[test]
fn privileged_gives_the_job_container_every_capability() {
    if !docker_or_skip("privileged_gives_the_job_container_every_capability") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  flags:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - run: grep CapEff /proc/self/status\n",
    );
    let mut command = crate::support::runnel();
    command
        .current_dir(dir.path())
        .args(["run", "-P", IMAGE, "--privileged"])
        .env("NO_COLOR", "1");
    let output = crate::support::run(command, None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() {
        let caps = capabilities(&stdout);
        assert!(caps & CAP_SYS_ADMIN != 0, "privileged: {caps:x}");
    } else {
        assert!(
            stdout.contains("unable to apply caps"),
            "a privileged job container, refused only by this engine's bounding set:\n{stdout}"
        );
    }
}

#[test]
fn container_architecture_creates_for_that_platform_or_says_why_not() {
    if !docker_or_skip("container_architecture_creates_for_that_platform_or_says_why_not") {
        return;
    }
    let native = Command::new("docker")
        .args([
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}}",
            "runnel-test/debian:bookworm",
        ])
        .output()
        .expect("docker image inspect");
    let native = String::from_utf8_lossy(&native.stdout).trim().to_owned();
    let foreign = if native == "linux/arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  arch:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - run: echo \"machine=$(uname -m)\"\n",
    );
    let (stdout, _) = run_in(
        dir.path(),
        &["-P", IMAGE, "--container-architecture", &native],
        0,
    );
    assert!(stdout.contains("machine="), "{native}: {stdout}");

    let (stdout, stderr) = run_in(
        dir.path(),
        &["-P", IMAGE, "--container-architecture", foreign],
        1,
    );
    let output = format!("{stdout}{stderr}");
    assert!(
        output.contains(&format!(
            "image runnel-test/debian:bookworm is for {native}, not {foreign}"
        )),
        "a clear error naming both platforms:\n{output}"
    );
    assert!(!output.contains("machine="), "no step ran: {output}");
}
