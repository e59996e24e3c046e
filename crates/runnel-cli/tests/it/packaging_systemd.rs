//! `runnel.service` under a real systemd (slow): the .deb built from the binary under test is
//! installed in `runnel-test/systemd` (systemd as PID 1 on the Debian test image, built by
//! `tests/images/build.sh systemd`), a runner registered with the real Gitea is put in
//! `/var/lib/runnel/.runner`, and `systemctl` drives the unit: start (active only once the
//! daemon sent `READY=1`, which follows the declare), a job, `reload` with a changed capacity,
//! and `stop` while a job runs (the job finishes and is reported, the daemon exits 0).
//!
//! How systemd runs in a container on this machine (Docker 20.10, cgroup v1, a bounding set
//! without CAP_SYS_RESOURCE, so `--privileged` cannot start a container): CAP_SYS_ADMIN, no
//! seccomp or AppArmor profile, the host's cgroup tree mounted read-write with the host's
//! cgroup namespace (systemd keeps to the container's own cgroup in it), tmpfs on /run and
//! /tmp, and the host's network (Gitea listens on 127.0.0.1). The container is removed,
//! passed or failed.

use std::process::Command;
use std::time::Duration;

use crate::daemon_gitea::{gitea, unique};
use crate::packaging_deb::{Container, build_deb, require_docker_and_debian, run};
use crate::packaging_gitea::register;
use crate::support::repo_root;

const IMAGE: &str = "runnel-test/systemd:latest";

/// A container running systemd; commands run in it with `docker exec`.
struct Machine {
    container: Container,
}

impl Machine {
    /// `bash -c script` in the machine; returns (success, stdout + stderr).
    fn sh(&self, script: &str) -> (bool, String) {
        let output =
            run(Command::new("docker").args(["exec", &self.container.0, "bash", "-c", script]));
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), said)
    }

    /// Like [`Machine::sh`] but the test fails unless `script` succeeds; returns its stdout.
    fn must(&self, script: &str) -> String {
        let (ok, said) = self.sh(script);
        assert!(
            ok,
            "`{script}` failed in the machine:\n{said}\njournal:\n{}",
            self.journal()
        );
        said
    }

    /// The runnel unit's journal, as plain messages.
    fn journal(&self) -> String {
        self.sh("journalctl -u runnel --no-pager -o cat").1
    }

    /// A property of the unit (`systemctl show -p NAME --value`).
    fn property(&self, name: &str) -> String {
        self.must(&format!("systemctl show -p {name} --value runnel"))
            .trim()
            .to_owned()
    }

    /// Waits (up to 60 s) until the unit's status line is `status`.
    fn wait_status(&self, status: &str) {
        let mut last = String::new();
        for _ in 0..300 {
            last = self.property("StatusText");
            if last == status {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the unit's status stayed {last:?}, expected {status:?}; journal:\n{}",
            self.journal()
        );
    }
}

#[test]
fn systemd_starts_reloads_and_drains_the_packaged_unit() {
    let test = "systemd_starts_reloads_and_drains_the_packaged_unit";
    let Some(gitea) = gitea(test) else {
        return;
    };
    require_docker_and_debian(test);
    let built = run(Command::new("bash")
        .arg(repo_root().join("tests/images/build.sh"))
        .arg("systemd"));
    assert!(
        built.status.success(),
        "tests/images/build.sh systemd failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let packages = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let deb = build_deb(packages.path(), "0.0.0-1");
    let registration = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let label = unique("systemd");
    let runner_id = register(gitea, registration.path(), &label);

    let name = unique("runnel-systemd");
    let machine = Machine {
        container: Container(name.clone()),
    };
    let started = run(Command::new("docker")
        .args(["run", "-d", "--name", &name, "--network", "host"])
        .args(["--cap-add", "SYS_ADMIN", "--cgroupns", "host"])
        .args(["--security-opt", "seccomp=unconfined"])
        .args(["--security-opt", "apparmor=unconfined"])
        .args(["-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"])
        .args([
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            "--tmpfs",
            "/tmp",
            "-v",
        ])
        .arg(format!("{}:/pkg:ro", packages.path().display()))
        .arg("-v")
        .arg(format!(
            "{}:/registration:ro",
            registration.path().display()
        ))
        .arg(IMAGE));
    assert!(
        started.status.success(),
        "docker run {IMAGE}: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    // `is-system-running --wait` fails at once while systemd's socket is not there yet.
    let (booted, state) = machine.sh("for i in $(seq 300); do
           state=$(systemctl is-system-running 2>/dev/null) || true
           case $state in running | degraded) echo $state; exit 0 ;; esac
           sleep 0.2
         done
         echo \"still '$state'\"; exit 1");
    assert!(
        booted,
        "systemd did not come up in the container: {state}\n{}",
        machine.sh("systemctl --failed --no-pager").1
    );

    // Installed, registered, and still not started: the operator starts it.
    machine.must(&format!(
        "set -e
dpkg -i /pkg/{deb} >/dev/null
install -o runnel -g runnel -m 0600 /registration/.runner /var/lib/runnel/.runner
systemctl daemon-reload
test \"$(systemctl is-enabled runnel)\" = disabled"
    ));
    assert_eq!(machine.property("ActiveState"), "inactive");

    // `systemctl start` of a Type=notify unit returns once READY=1 came; the daemon sends it
    // only after declaring itself, so the journal has the declare before systemd's "Started".
    machine.must("systemctl start runnel");
    assert_eq!(machine.property("ActiveState"), "active");
    assert_eq!(machine.property("StatusText"), "polling, 0/1 jobs");
    assert_eq!(machine.property("WatchdogUSec"), "2min");
    let journal = machine.journal();
    let declared = journal.find(&format!("declared to {}", gitea.url));
    let ready = journal.find("Started runnel.service");
    assert!(
        matches!((declared, ready), (Some(d), Some(r)) if d < r),
        "the declare must come before readiness:\n{journal}"
    );

    // A job, as the runnel user under the unit's hardening.
    gitea.push_job(
        &label,
        "      - run: test \"$(id -un)\" = runnel && test ! -w /etc/runnel\n",
    );
    let first = gitea.completed_job(runner_id, &|| machine.journal());
    assert_eq!(
        first["conclusion"],
        "success",
        "{first}\n{}",
        machine.journal()
    );

    // `systemctl reload` (SIGHUP) takes a new capacity without a restart.
    let pid = machine.property("MainPID");
    machine.must(
        "sed -i 's/^  capacity: 1$/  capacity: 2/' /etc/runnel/config.yaml && systemctl reload runnel",
    );
    machine.wait_status("polling, 0/2 jobs");
    assert_eq!(machine.property("MainPID"), pid, "reload must not restart");
    assert!(
        machine.journal().contains("runner.capacity: 1 -> 2"),
        "{}",
        machine.journal()
    );

    // `systemctl stop` while a job runs: the job finishes and is reported, then runnel exits 0.
    let second = format!("{label}-drain");
    gitea.push_named_job(&second, &label, "      - run: sleep 6; echo drained\n");
    machine.wait_status("polling, 1/2 jobs");
    machine.must("systemctl stop runnel");
    let first_id = first["id"].clone();
    let drained = gitea.completed_job_where(runner_id, &|job| job["id"] != first_id, &|| {
        machine.journal()
    });
    assert_eq!(
        drained["conclusion"],
        "success",
        "{drained}\n{}",
        machine.journal()
    );
    assert_eq!(machine.property("ActiveState"), "inactive");
    assert_eq!(machine.property("Result"), "success");
    assert_eq!(machine.property("ExecMainStatus"), "0");
    let journal = machine.journal();
    assert!(journal.contains("SIGTERM received"), "{journal}");
}
