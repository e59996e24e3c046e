//! The .deb and the container image, for real (slow): `packaging/deb/build.sh` builds two
//! versions of the package from the binary under test; a throw-away `runnel-test/debian`
//! container installs, upgrades and purges it. `packaging/container/build.sh` builds the image,
//! which registers itself from the environment with the real Gitea and runs a job.
//! Every container is removed, passed or failed.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::daemon_gitea::{gitea, unique};
use crate::packaging_gitea::slow;
use crate::support::repo_root;

const DEBIAN: &str = "runnel-test/debian:bookworm";

/// Removes a container when dropped.
pub(crate) struct Container(pub(crate) String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub(crate) fn run(command: &mut Command) -> Output {
    let description = format!("{command:?}");
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {description}: {e}"))
}

pub(crate) fn require_docker_and_debian(test: &str) {
    let info = run(Command::new("docker").arg("info"));
    assert!(
        info.status.success(),
        "{test}: RUN_SLOW_TESTS is set but Docker does not answer; run tests/docker/ensure-dockerd.sh"
    );
    let image = run(Command::new("docker").args(["image", "inspect", DEBIAN]));
    assert!(
        image.status.success(),
        "{test}: RUN_SLOW_TESTS is set but {DEBIAN} is missing; run tests/images/build.sh debian"
    );
}

/// Packages the binary under test as the `dist` profile's (cargo-deb refuses the dev profile,
/// and building dist here would take minutes): a link to it in `out/target/dist/` stands in.
pub(crate) fn build_deb(out: &Path, version: &str) -> String {
    let binary = Path::new(env!("CARGO_BIN_EXE_runnel"));
    let target = out.join("target");
    let staged = target.join("dist/runnel");
    if !staged.exists() {
        std::fs::create_dir_all(target.join("dist")).unwrap_or_else(|e| panic!("{e}"));
        if std::fs::hard_link(binary, &staged).is_err() {
            std::fs::copy(binary, &staged).unwrap_or_else(|e| {
                panic!("copy {} to {}: {e}", binary.display(), staged.display())
            });
        }
    }
    let output = run(Command::new("bash")
        .arg(repo_root().join("packaging/deb/build.sh"))
        .args([
            "--profile",
            "dist",
            "--no-build",
            "--deb-version",
            version,
            "--out",
        ])
        .arg(out)
        .env("CARGO_TARGET_DIR", &target));
    assert!(
        output.status.success(),
        "packaging/deb/build.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!said.contains("warning"), "cargo-deb warned: {said}");
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let name = Path::new(&path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| panic!("build.sh printed no path: {path:?}"));
    assert!(name.starts_with(&format!("runnel_{version}_")), "{name}");
    name
}

#[test]
fn deb_installs_upgrades_and_purges_in_debian() {
    let test = "deb_installs_upgrades_and_purges_in_debian";
    if !slow(test, "Docker, the Debian test image and cargo-deb") {
        return;
    }
    require_docker_and_debian(test);
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = build_deb(out.path(), "0.0.0-1");
    let second = build_deb(out.path(), "0.0.1-1");
    let script = format!(
        r#"set -eux
# A host with Docker, but no label needs it yet: the runner stays out of the docker group.
groupadd --system docker
dpkg -i /pkg/{first}
runnel --version
runnel generate-config | grep -q '^  capacity: 1$'
test -f /usr/lib/systemd/system/runnel.service
grep -q '^Type=notify$' /usr/lib/systemd/system/runnel.service
getent passwd runnel | grep -q ':/var/lib/runnel:/usr/sbin/nologin$'
! id -nG runnel | grep -qw docker
test "$(stat -c '%U:%G %a' /var/lib/runnel)" = "runnel:runnel 750"
test "$(stat -c '%U:%G %a' /etc/runnel/config.yaml)" = "root:runnel 640"
grep -q '^  file: /var/lib/runnel/.runner$' /etc/runnel/config.yaml
# Nothing started, nothing enabled; the service user's doctor names the missing registration.
! test -e /etc/systemd/system/multi-user.target.wants/runnel.service
set +e
su -s /bin/sh runnel -c 'runnel doctor -c /etc/runnel/config.yaml' >/tmp/doctor.txt
code=$?
set -e
cat /tmp/doctor.txt
test "$code" = 1
grep -q 'FAIL  registration  /var/lib/runnel/.runner is missing' /tmp/doctor.txt
# A Docker label: doctor names the missing group membership and its fix.
sed -i 's|^  labels: \[\]$|  labels:\n    - "ubuntu:docker://runnel-test/debian:bookworm"|' /etc/runnel/config.yaml
grep -q 'ubuntu:docker://' /etc/runnel/config.yaml
set +e
runnel doctor -c /etc/runnel/config.yaml >/tmp/doctor.txt
set -e
cat /tmp/doctor.txt
grep -q 'FAIL  docker group  labels need Docker but user runnel is not in group docker' /tmp/doctor.txt
grep -q 'fix: `usermod -aG docker runnel`' /tmp/doctor.txt
# An operator's edit survives the upgrade, whose postinst sees the label and adds the group.
echo '# edited by the operator' >>/etc/runnel/config.yaml
dpkg -i /pkg/{second}
test "$(dpkg-query -W -f='${{Version}}' runnel)" = 0.0.1-1
grep -q '^# edited by the operator$' /etc/runnel/config.yaml
id -nG runnel | grep -qw docker
dpkg --purge runnel
! test -e /usr/bin/runnel
! test -e /etc/runnel
! test -e /var/lib/runnel
! test -e /usr/lib/systemd/system/runnel.service
echo PACKAGE-OK
"#
    );
    let name = unique("runnel-deb");
    let _container = Container(name.clone());
    let output = run(Command::new("docker")
        .args(["run", "--rm", "--name", &name, "-v"])
        .arg(format!("{}:/pkg:ro", out.path().display()))
        .args([DEBIAN, "bash", "-c", &script]));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.contains("PACKAGE-OK"),
        "install test failed:\n{said}"
    );
}

#[test]
fn container_image_registers_from_env_and_runs_a_job() {
    let test = "container_image_registers_from_env_and_runs_a_job";
    let Some(gitea) = gitea(test) else {
        return;
    };
    require_docker_and_debian(test);
    let tag = "runnel-test/runnel:latest";
    let built = run(Command::new("bash")
        .arg(repo_root().join("packaging/container/build.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_runnel"), "--tag", tag]));
    assert!(
        built.status.success(),
        "packaging/container/build.sh failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let label = unique("image");
    let name = unique("runnel-image");
    let _container = Container(name.clone());
    // Gitea listens on 127.0.0.1 of this machine: the runner shares its network.
    let started = run(Command::new("docker")
        .args(["run", "-d", "--name", &name, "--network", "host", "-v"])
        .arg(format!("{}:/data", data.path().display()))
        .arg("-e")
        .arg(format!("GITEA_INSTANCE_URL={}", gitea.url))
        .arg("-e")
        .arg(format!(
            "GITEA_RUNNER_REGISTRATION_TOKEN={}",
            gitea.registration_token
        ))
        .arg("-e")
        .arg(format!("GITEA_RUNNER_NAME={label}"))
        .arg("-e")
        .arg(format!("GITEA_RUNNER_LABELS={label}:host"))
        .arg(tag));
    assert!(
        started.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    let logs = || {
        let output = run(Command::new("docker").args(["logs", &name]));
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let runner_file = data.path().join(".runner");
    let mut id = None;
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&runner_file)
            && let Ok(value) = serde_json::from_str::<serde_json::Value>(&text)
        {
            id = value["id"].as_i64();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let id = id.unwrap_or_else(|| panic!("the container did not register; logs:\n{}", logs()));
    gitea.push_job(
        &label,
        "      - run: echo \"in the container as $(id -un)\"; test -f /.dockerenv\n",
    );
    let job = gitea.completed_job(id, &logs);
    assert_eq!(job["conclusion"], "success", "{job}\n{}", logs());
    // docker stop: SIGTERM through tini to runnel, which exits 0.
    let stopped = run(Command::new("docker").args(["stop", "-t", "30", &name]));
    assert!(stopped.status.success());
    let code = run(Command::new("docker").args(["inspect", "-f", "{{.State.ExitCode}}", &name]));
    assert_eq!(
        String::from_utf8_lossy(&code.stdout).trim(),
        "0",
        "logs:\n{}",
        logs()
    );
}
