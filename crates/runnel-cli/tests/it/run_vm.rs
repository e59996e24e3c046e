//! The `vm` backend end to end (issue #17): `runnel run -P linux=vm://debian-bookworm` boots a
//! microVM per job from the image `tests/vm/build.sh` builds, and its steps run there through
//! the guest agent. One job covers env files, outputs, masking, `hashFiles` over the shared
//! workspace, the runner's cache server reached through the restricted network's one forward
//! (and nothing else of this machine's loopback, nor its outside address), a failing step with
//! `continue-on-error`, a step timeout and a failing step; one with `RUNNEL_VM_NETWORK=nat`
//! reaching this machine's loopback at the gateway; another, a guest that never comes up
//! (boot timeout); one on the Docker image builds and runs an image with the guest's own engine
//! and reaches its service by name and on localhost; one with services on the plain image
//! fails saying why (the daemon's `vm://` jobs from the real Gitea: `run_vm_daemon`). After
//! each, no QEMU, overlay or socket is left.
//!
//! Slow (a boot under TCG takes 5–60 s depending on the machine's load): behind
//! `RUN_SLOW_TESTS=1`, skipped with a note when QEMU or the image cannot be had (a failure
//! with `RUNNEL_REQUIRE_VM=1`, which `cargo xtask test` sets once it has built the images).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use crate::support::repo_root;

pub(crate) const IMAGE: &str = "debian-bookworm";

const WORKFLOW: &str = r#"on: push
jobs:
  vm:
    runs-on: linux
    steps:
      - id: one
        run: |
          echo "kernel $(uname -r)"
          echo "GREETING=hello from an env file" >> "$GITHUB_ENV"
          echo "value=42" >> "$GITHUB_OUTPUT"
          echo "payload" > made-in-vm.txt
          test "$(cat seed.txt)" = "from the host"
      - run: echo "env=$GREETING output=${{ steps.one.outputs.value }}"
      - run: |
          echo "::add-mask::vm-s3cr3t"
          echo "masked=vm-s3cr3t"
      - run: echo "hash=${{ hashFiles('made-in-vm.txt') }}"
      - run: |
          case "$ACTIONS_CACHE_URL" in http://10.0.2.100:*) echo "cache at the forward" ;; esac
          echo "cache=$(curl -sS -o /dev/null -w '%{http_code}' "${ACTIONS_CACHE_URL}_apis/artifactcache/cache?keys=vm-key&version=1")"
      - run: |
          probe() { if curl -sS --connect-timeout 5 --max-time 10 -o /dev/null "$2"; then echo "$1=reached"; else echo "$1=blocked"; fi; }
          probe loopback http://10.0.2.2:LISTENER_PORT/
          probe outside http://OUTSIDE_ADDRESS:LISTENER_PORT/
          probe other-forward-port http://10.0.2.100:LISTENER_PORT/
      - run: |
          echo "to stderr" >&2
          exit 3
        continue-on-error: true
      - run: sleep 120
        timeout-minutes: 0.05
        continue-on-error: true
      - run: echo "after the timeout"
      - run: exit 7
      - run: echo "never printed"
      - if: always()
        run: echo "always runs"
"#;

/// The image directory, or why the test cannot run.
fn image_dir(image: &str) -> Result<PathBuf, String> {
    let output = Command::new("bash")
        .arg(repo_root().join("tests/vm/build.sh"))
        .arg(image)
        .env("RUNNEL_BIN", env!("CARGO_BIN_EXE_runnel"))
        .output()
        .map_err(|e| format!("cannot run tests/vm/build.sh: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "tests/vm/build.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // The image directory is the last line (a build may print more before it).
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout.lines().last().unwrap_or_default().trim().to_owned();
    let images = Path::new(&dir)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("tests/vm/build.sh printed no directory: {dir}"))?;
    Ok(images)
}

/// The guest agent, built beside the `runnel` binary under test.
pub(crate) fn agent() -> PathBuf {
    let runnel = PathBuf::from(env!("CARGO_BIN_EXE_runnel"));
    let agent = runnel.with_file_name("runnel-vm-agent");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "runnel-vm-agent"])
        .current_dir(repo_root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p runnel-vm-agent failed");
    assert!(
        agent.is_file(),
        "{} missing after the build",
        agent.display()
    );
    agent
}

/// What the VM tests need, or `None` (with a note) when they are skipped.
pub(crate) fn setup(test: &str) -> Option<(PathBuf, PathBuf)> {
    setup_image(test, IMAGE)
}

fn setup_image(test: &str, image: &str) -> Option<(PathBuf, PathBuf)> {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping {test}: boots a VM; set RUN_SLOW_TESTS=1");
        return None;
    }
    match image_dir(image) {
        Ok(images) => Some((images, agent())),
        Err(reason) => {
            let why = format!("{test}: QEMU or the VM image cannot be had here: {reason}");
            // `cargo xtask test` sets it once it has built the images: a skip would hide a
            // broken machine behind a green run.
            assert!(std::env::var_os("RUNNEL_REQUIRE_VM").is_none(), "{why}");
            eprintln!("note: skipping {why}");
            None
        }
    }
}

/// Runs the workflow in `dir` with a private temp dir (where job directories go).
fn run_vm(dir: &Path, images: &Path, agent: &Path, temp: &Path, extra: &[(&str, &str)]) -> Output {
    run_vm_image(IMAGE, dir, images, agent, temp, extra)
}

fn run_vm_image(
    image: &str,
    dir: &Path,
    images: &Path,
    agent: &Path,
    temp: &Path,
    extra: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    command
        .args(["run", "-P", &format!("linux=vm://{image}")])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TMPDIR", temp)
        .env("RUNNEL_VM_IMAGES", images)
        .env("RUNNEL_VM_AGENT", agent);
    for (name, value) in extra {
        command.env(name, value);
    }
    command.output().expect("run runnel")
}

/// Nothing of a VM job left: no job directory under `temp`, no QEMU or `virtiofsd` naming it.
pub(crate) fn assert_nothing_left(temp: &Path) {
    let left: Vec<_> = std::fs::read_dir(temp)
        .expect("read temp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("runnel-vm-"))
        .collect();
    assert!(left.is_empty(), "job directories left: {left:?}");
    let needle = temp.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(
            !((cmdline.starts_with("qemu-system") || cmdline.contains("virtiofsd"))
                && cmdline.contains(&needle)),
            "a QEMU or virtiofsd of the test is still running: {cmdline}"
        );
    }
}

/// A line of the job's output without the `[job]` prefix.
pub(crate) fn step_line(line: &str) -> &str {
    line.strip_prefix("[vm]").unwrap_or(line).trim()
}

pub(crate) fn workflow_dir(workflow: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), workflow).expect("write workflow");
    std::fs::write(dir.path().join("seed.txt"), "from the host\n").expect("write seed");
    dir
}

/// A service on this machine that no VM job may reach unless the operator opts in: listens on
/// every interface (so on the loopback and on the outside address), answers `reached`, and
/// counts its connections.
struct Listener {
    port: u16,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Listener {
    fn start() -> Listener {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind a listener");
        let port = listener.local_addr().expect("its address").port();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\n\r\nreached");
            }
        });
        Listener { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// This machine's address on the way out (no packet is sent), else one nobody has.
fn outside_address() -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| {
            socket.connect("8.8.8.8:53")?;
            socket.local_addr()
        })
        .map(|addr| addr.ip())
        .ok()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .map_or_else(|| "192.0.2.1".to_owned(), |ip| ip.to_string())
}

#[test]
fn a_job_runs_its_steps_in_a_vm_and_leaves_nothing() {
    let Some((images, agent)) = setup("the vm job") else {
        return;
    };
    let listener = Listener::start();
    let outside = outside_address();
    let dir = workflow_dir(
        &WORKFLOW
            .replace("LISTENER_PORT", &listener.port.to_string())
            .replace("OUTSIDE_ADDRESS", &outside),
    );
    let temp = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let output = run_vm(dir.path(), &images, &agent, temp.path(), &[]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "the vm job took {:.1} s:\n{stdout}\n{stderr}",
        took.as_secs_f64()
    );
    assert_eq!(output.status.code(), Some(1), "the job fails at `exit 7`");
    // Debian's kernel, not this machine's: the steps ran in the guest.
    let kernel = stdout
        .lines()
        .find_map(|line| step_line(line).strip_prefix("kernel "))
        .expect("the kernel line");
    assert!(kernel.ends_with("-amd64"), "guest kernel {kernel}");
    for expected in [
        "Booting a VM from image `debian-bookworm` under TCG",
        "VM up in ",
        "env=hello from an env file output=42",
        "masked=***",
        "to stderr",
        "after the timeout",
        "always runs",
        // The runner's cache server, reached from the guest through the restricted network's
        // forward (a miss: 204, so the token was accepted too)…
        "cache at the forward",
        "cache=204",
        // … and nothing else: not a service on this machine's loopback, not this machine's
        // outside address, not another port of the forward's address.
        "loopback=blocked",
        "outside=blocked",
        "other-forward-port=blocked",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
    let hash = stdout
        .lines()
        .find_map(|line| step_line(line).strip_prefix("hash="))
        .expect("the hash line");
    assert_eq!(
        hash.len(),
        64,
        "hashFiles over the shared workspace: {hash:?}"
    );
    assert!(
        !stdout
            .lines()
            .any(|line| step_line(line) == "never printed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: The action 'Run sleep 120' has timed out after 0.05 minutes."),
        "the step timeout is said: {stdout}"
    );
    assert!(!stdout.contains("masked=vm-s3cr3t"), "{stdout}");
    assert_eq!(
        listener.connections(),
        0,
        "the guest reached the listener ({outside}:{})",
        listener.port
    );
    assert!(!stderr.contains("EVERY service"), "{stderr}");
    assert_nothing_left(temp.path());
}

const NAT_WORKFLOW: &str = r#"on: push
jobs:
  vm:
    runs-on: linux
    steps:
      - run: |
          echo "listener=$(curl -sS --max-time 20 http://10.0.2.2:LISTENER_PORT/)"
          case "$ACTIONS_CACHE_URL" in http://10.0.2.2:*) echo "cache at the gateway" ;; esac
          echo "cache=$(curl -sS -o /dev/null -w '%{http_code}' "${ACTIONS_CACHE_URL}_apis/artifactcache/cache?keys=k&version=1")"
"#;

/// `RUNNEL_VM_NETWORK=nat`, the operator's opt-in: QEMU's NAT, this machine's loopback at the
/// gateway (the cache server handed over there), and the warning that says so at start.
#[test]
fn with_nat_asked_a_vm_job_reaches_this_machines_loopback_and_is_warned_about() {
    let Some((images, agent)) = setup("the vm job with NAT") else {
        return;
    };
    let listener = Listener::start();
    let dir = workflow_dir(&NAT_WORKFLOW.replace("LISTENER_PORT", &listener.port.to_string()));
    let temp = tempfile::tempdir().expect("tempdir");
    let output = run_vm(
        dir.path(),
        &images,
        &agent,
        temp.path(),
        &[("RUNNEL_VM_NETWORK", "nat")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for expected in ["listener=reached", "cache at the gateway", "cache=204"] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
    assert!(listener.connections() >= 1);
    assert!(
        stderr.contains("network nat: VM jobs reach the outside and EVERY service"),
        "{stderr}"
    );
    assert_nothing_left(temp.path());
}

const ORPHANS_WORKFLOW: &str = r#"on: push
jobs:
  vm:
    runs-on: linux
    steps:
      - run: |
          sleep 1 &
          (sleep 300 &) ; echo "first step done"
          setsid sh -c 'sleep 2 & exec sleep 1' &
          exit 0
      - run: |
          sleep 4
          # Shell builtins only: a fork costs much under TCG.
          zombies=0
          left=0
          for pid in /proc/[0-9]*; do
            while read -r key value _; do
              if [ "$key" = "State:" ]; then
                [ "$value" = Z ] && zombies=$((zombies + 1))
                break
              fi
            done 2>/dev/null < "$pid/status" || true
            mapfile -d '' argv 2>/dev/null < "$pid/cmdline" || true
            [ "${argv[*]}" = "sleep 300" ] && left=$((left + 1))
          done
          echo "zombies=$zombies"
          echo "sleep 300 left=$left"
"#;

/// A step that leaves processes behind (a background child, a double-forked one still holding
/// the step's output, a daemonised one in a session of its own) ends when its shell exits, not
/// when they do; the agent, PID 1 of the guest, reaps those that exit after the step (no zombie
/// in the next step); one still running lives on into the next step (as on GitHub, whose runner
/// ends leftovers with the job: here the VM's end).
#[test]
fn processes_a_step_leaves_behind_are_reaped_and_do_not_hold_the_step() {
    let Some((images, agent)) = setup("the orphans vm job") else {
        return;
    };
    let dir = workflow_dir(ORPHANS_WORKFLOW);
    let temp = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let output = run_vm(dir.path(), &images, &agent, temp.path(), &[]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "the orphans vm job took {:.1} s:\n{stdout}\n{stderr}",
        took.as_secs_f64()
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for expected in ["first step done", "zombies=0", "sleep 300 left=1"] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
    // Boot (up to ~60 s under TCG on a loaded machine) plus a few seconds of steps; a step held
    // by its leftover `sleep 300` would take more than 300 s.
    assert!(took.as_secs() < 240, "the job took {took:?}");
    assert_nothing_left(temp.path());
}

#[test]
fn a_guest_that_never_answers_is_killed_at_the_boot_timeout() {
    let Some((images, agent)) = setup("the vm boot timeout") else {
        return;
    };
    let dir = workflow_dir(
        "on: push\njobs:\n  vm:\n    runs-on: linux\n    steps:\n      - run: echo never\n",
    );
    let temp = tempfile::tempdir().expect("tempdir");
    let output = run_vm(
        dir.path(),
        &images,
        &agent,
        temp.path(),
        &[("RUNNEL_VM_BOOT_TIMEOUT", "1")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let all = format!("{stdout}\n{stderr}");
    assert_ne!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains("the VM did not come up within 1 s; QEMU was killed"),
        "{all}"
    );
    assert!(!all.contains("never\n"), "{all}");
    assert_nothing_left(temp.path());
}

const LONG_STEP: &str = "on: push\njobs:\n  vm:\n    runs-on: linux\n    steps:\n      - run: echo started-in-vm; sleep 600\n      - if: always()\n        run: echo cleanup-step-ran\n";

/// Starts `runnel run` of [`LONG_STEP`] and waits until its step runs in the guest; returns
/// the child and a receiver of the rest of its output.
fn start_long_job(
    dir: &Path,
    images: &Path,
    agent: &Path,
    temp: &Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    command
        .args(["run", "-P", &format!("linux=vm://{IMAGE}")])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TMPDIR", temp)
        .env("RUNNEL_VM_IMAGES", images)
        .env("RUNNEL_VM_AGENT", agent);
    let (mut child, received) = crate::support::spawn_with_lines(command);
    let deadline = Instant::now() + std::time::Duration::from_secs(400);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) if step_line(&line) == "started-in-vm" => break,
            // Shown when the test fails.
            Ok(line) => eprintln!("{line}"),
            Err(error) => {
                let _ = child.kill();
                panic!("the step never started in the VM: {error}");
            }
        }
    }
    (child, received)
}

fn job_dirs(temp: &Path) -> usize {
    std::fs::read_dir(temp)
        .expect("read temp")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("runnel-vm-"))
        .count()
}

#[test]
fn a_cancelled_job_and_a_killed_runner_leave_nothing() {
    let Some((images, agent)) = setup("the vm cancellation") else {
        return;
    };
    let dir = workflow_dir(LONG_STEP);
    let temp = tempfile::tempdir().expect("tempdir");

    // Ctrl-C: the step is killed, `always()` still runs in the guest, then everything goes.
    let (mut child, rest) = start_long_job(dir.path(), &images, &agent, temp.path());
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let code = child.wait().expect("wait for runnel");
    let rest: Vec<String> = rest.iter().collect();
    assert_ne!(code.code(), Some(0), "{rest:?}");
    assert!(
        rest.iter()
            .any(|line| step_line(line) == "cleanup-step-ran"),
        "{rest:?}"
    );
    assert_nothing_left(temp.path());

    // SIGKILL: QEMU and the job directory stay behind, and the next start removes them.
    let (mut child, _rest) = start_long_job(dir.path(), &images, &agent, temp.path());
    child.kill().expect("SIGKILL runnel");
    child.wait().expect("wait for runnel");
    assert_eq!(job_dirs(temp.path()), 1, "the killed runner's VM is left");
    let output = run_vm(
        dir.path(),
        &images,
        &agent,
        temp.path(),
        &[("RUNNEL_VM_BOOT_TIMEOUT", "1")],
    );
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(all.contains("did not come up within 1 s"), "{all}");
    assert_nothing_left(temp.path());
}

/// QEMU killed mid-step (the OOM killer, an operator): the job fails saying the VM went away,
/// the rest (its `always()` step too) is skipped, and nothing is left.
#[test]
fn a_vm_killed_mid_step_fails_the_job_and_skips_the_rest() {
    let Some((images, agent)) = setup("a vm killed mid-step") else {
        return;
    };
    let dir = workflow_dir(LONG_STEP);
    let temp = tempfile::tempdir().expect("tempdir");
    let (mut child, rest) = start_long_job(dir.path(), &images, &agent, temp.path());
    let needle = temp.path().to_string_lossy().into_owned();
    let qemu: Vec<String> = std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.starts_with("qemu-system") && cmdline.contains(&needle)
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(qemu.len(), 1, "one QEMU for the job: {qemu:?}");
    let killed = Command::new("kill")
        .args(["-KILL", &qemu[0]])
        .status()
        .expect("kill QEMU");
    assert!(killed.success());
    let code = child.wait().expect("wait for runnel");
    let rest: Vec<String> = rest.iter().collect();
    let output = rest.join("\n");
    assert_eq!(code.code(), Some(1), "{output}");
    assert!(output.contains("the guest agent went away"), "{output}");
    assert!(output.contains("The job's environment is gone"), "{output}");
    assert!(
        !rest
            .iter()
            .any(|line| step_line(line) == "cleanup-step-ran"),
        "{output}"
    );
    assert_nothing_left(temp.path());
}

const DOCKER_IMAGE: &str = "debian-bookworm-docker";

/// A job on the Docker image: its own engine (the guest's, named after the guest's host name),
/// the busybox image preloaded from a tarball, a two-line Dockerfile built and run; the host's engine and its
/// containers are not visible. Its service (an httpd image built on this machine's engine,
/// handed to the guest) answers by name and on localhost through its published port.
const DOCKER_WORKFLOW: &str = r#"on: push
jobs:
  vm:
    runs-on: linux
    services:
      web:
        image: runnel-vm-test/httpd:latest
        ports:
          - 8080:80
    steps:
      - run: |
          docker info --format 'engine on {{.Name}}'
          docker ps -a --format 'container {{.Names}}'
          docker images --format 'image {{.Repository}}:{{.Tag}}'
      - run: |
          echo "by name: $(curl -fsS http://web/)"
          echo "on localhost: $(curl -fsS http://localhost:8080/)"
          echo "port=${{ job.services.web.ports['80'] }}"
      - run: |
          printf 'FROM runnel-test/busybox:latest\nRUN echo built-in-the-vm > /built.txt\n' > Dockerfile
          docker build -q -t vm-built . >/dev/null
          echo "ran: $(docker run --rm vm-built cat /built.txt)"
"#;

/// A container on this machine's engine that the guest must not see; removed on drop.
struct HostContainer(String);

impl Drop for HostContainer {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn a_vm_job_builds_and_runs_images_with_its_own_docker_engine() {
    let test = "the vm job with Docker inside";
    let Some((images, agent)) = setup_image(test, DOCKER_IMAGE) else {
        return;
    };
    let busybox = "runnel-test/busybox:latest";
    let host_has_it = Command::new("docker")
        .args(["image", "inspect", busybox])
        .output()
        .is_ok_and(|o| o.status.success());
    if !host_has_it {
        eprintln!(
            "note: skipping {test}: this machine's Docker engine lacks {busybox} \
             (tests/docker/ensure-dockerd.sh, tests/images/build.sh busybox)"
        );
        return;
    }
    // The service's image, built on this machine's engine from the busybox one.
    let context = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM {busybox}\nRUN mkdir /www && echo hello-from-the-service > /www/index.html\n\
             CMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n"
        ),
    )
    .expect("write Dockerfile");
    let built = Command::new("docker")
        .args(["build", "-q", "-t", "runnel-vm-test/httpd:latest", "."])
        .env("DOCKER_BUILDKIT", "0")
        .current_dir(context.path())
        .output()
        .expect("docker build");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let marker = HostContainer(format!("runnel-vm-host-marker-{}", std::process::id()));
    let started = Command::new("docker")
        .args(["run", "-d", "--name", &marker.0, busybox, "sleep", "600"])
        .output()
        .expect("docker run");
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let dir = workflow_dir(DOCKER_WORKFLOW);
    let temp = tempfile::tempdir().expect("tempdir");
    // busybox goes in as a tarball named by path (the service's image comes from the engine).
    let tarball = temp.path().join("busybox.tar");
    let saved = Command::new("docker")
        .args(["save", "-o"])
        .arg(&tarball)
        .arg(busybox)
        .output()
        .expect("docker save");
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let tarball = tarball.display().to_string();
    let clock = Instant::now();
    let output = run_vm_image(
        DOCKER_IMAGE,
        dir.path(),
        &images,
        &agent,
        temp.path(),
        &[
            ("RUNNEL_VM_PRELOAD_IMAGES", &tarball),
            ("RUNNEL_VM_MEMORY_MIB", "1536"),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "the vm docker job took {:.1} s:\n{stdout}\n{stderr}",
        clock.elapsed().as_secs_f64()
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for expected in [
        "Docker engine ready for the job in ",
        "Loaded image: runnel-test/busybox:latest",
        "engine on runnel-vm",
        "Starting service web (runnel-vm-test/httpd:latest) in the VM",
        "by name: hello-from-the-service",
        "on localhost: hello-from-the-service",
        "port=8080",
        "image runnel-test/busybox:latest",
        "ran: built-in-the-vm",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
    // Nothing of this machine's engine: not its containers (the guest's engine has none).
    assert!(!stdout.contains(&marker.0), "{stdout}");
    let containers: Vec<&str> = stdout
        .lines()
        .filter_map(|line| step_line(line).strip_prefix("container "))
        .collect();
    assert_eq!(containers, ["runnel-service-web"], "{stdout}");
    assert_nothing_left(temp.path());
}

/// `services:` need Docker's engine in the guest: on the plain image the job fails saying so
/// after its VM booted, and the VM is torn down like any other.
#[test]
fn services_on_an_image_without_docker_fail_and_leave_nothing() {
    let Some((images, agent)) = setup("the vm services without Docker") else {
        return;
    };
    let dir = workflow_dir(
        "on: push\njobs:\n  vm:\n    runs-on: linux\n    services:\n      web:\n        image: runnel-vm-test/none:1\n    steps:\n      - run: echo never\n",
    );
    let temp = tempfile::tempdir().expect("tempdir");
    let output = run_vm(dir.path(), &images, &agent, temp.path(), &[]);
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_ne!(output.status.code(), Some(0), "{all}");
    assert!(
        all.contains(
            "service `web` needs Docker's engine in the VM, and image `debian-bookworm` has none"
        ),
        "{all}"
    );
    assert!(!all.contains("never\n"), "{all}");
    assert_nothing_left(temp.path());
}

/// The guest agent refuses a link where the runner reads a file back, as every backend does
/// (`file_command_links`).
#[test]
fn linked_file_commands_fail_the_step_in_a_vm() {
    let test = "linked_file_commands_fail_the_step_in_a_vm";
    let Some((images, agent)) = setup(test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(
        workflows.join("ci.yml"),
        crate::file_command_links::WORKFLOW,
    )
    .expect("write workflow");
    let temp = tempfile::tempdir().expect("temp dir");
    let output = run_vm(dir.path(), &images, &agent, temp.path(), &[]);
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    crate::file_command_links::assert_links_refused(output.status.code(), &all);
    assert_nothing_left(temp.path());
}
