//! The vm backend through the daemon against the real Gitea (slow; see `run_vm` for the images):
//! a `vm://` label's job checks out, uploads and downloads an artifact through the guest's
//! forward to Gitea (restricted network) or QEMU's NAT, carries outputs and env between steps,
//! and leaves no QEMU, job directory or forwarder behind.

use std::path::Path;
use std::time::Instant;

use crate::run_vm::{IMAGE, assert_nothing_left, setup};
use crate::support::repo_root;

/// A daemon's VM job from the real Gitea: the checkout stand-in (plain git with the job's
/// token, `fixtures/checkout-action`, served by Gitea as `actions/checkout`) fetches the
/// repository from Gitea through the restricted network's second forward, an artifact goes to
/// Gitea and comes back the same way (the stand-ins around the real `@actions/artifact`,
/// `artifacts_gitea`; the guest's node is Debian's 18, hence the flag), outputs and env files
/// pass between steps, a failing step with `continue-on-error` leaves the job green, and no
/// other port of the forward's address answers.
const DAEMON_JOBS: &str = r#"  vm:
    runs-on: LABEL
    env:
      NODE_OPTIONS: --experimental-global-webcrypto
    steps:
      - uses: actions/checkout@v4
      - run: test -f .gitea/workflows/LABEL.yml && echo "the workflow file is in the workspace"
      - run: mkdir out && echo "made in the vm" > out/report.txt
      - uses: actions/upload-artifact@v4
        with:
          name: vm-report
          path: out
      - uses: actions/download-artifact@v4
        with:
          name: vm-report
          path: got
      - run: echo "artifact=[$(cat got/report.txt)]"
      - id: out
        run: |
          echo "value=42" >> "$GITHUB_OUTPUT"
          echo "CARRIED=over-env-file" >> "$GITHUB_ENV"
      - run: echo "got ${{ steps.out.outputs.value }} $CARRIED"
      - run: |
          echo "server ${GITHUB_SERVER_URL%:*} ${{ github.server_url }}" | sed 's/:[0-9]*$//'
          case "$ACTIONS_RESULTS_URL" in "$GITHUB_SERVER_URL"*) echo "results at the server" ;; esac
          if curl -sS --connect-timeout 5 --max-time 10 -o /dev/null "http://10.0.2.101:1/"; then echo "other port reached"; else echo "other port blocked"; fi
      - run: exit 3
        continue-on-error: true
      - run: echo "after the failure"
"#;

/// Waits for `child` up to `limit` (a TCG boot on a loaded machine is slow); kills it after.
fn wait_daemon(
    runner: &crate::daemon_gitea::Runner,
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the daemon did not finish within {limit:?}:\n{}",
        runner.daemon_log()
    );
}

#[test]
fn the_daemon_runs_a_vm_label_job_from_gitea() {
    daemon_vm_job("the_daemon_runs_a_vm_label_job_from_gitea", "restricted");
}

/// With NAT (the operator's opt-in) the test Gitea, on this machine's loopback, is reached at
/// the guest's gateway: the job is handed Gitea's URLs there.
#[test]
fn the_daemon_runs_a_vm_label_job_from_gitea_with_nat() {
    daemon_vm_job("the_daemon_runs_a_vm_label_job_from_gitea_with_nat", "nat");
}

/// Runs [`DAEMON_JOBS`] through `runnel daemon --once` on a `vm://` label with
/// `RUNNEL_VM_NETWORK=network` and checks its result, its log in Gitea and that nothing is left.
fn daemon_vm_job(test: &str, network: &str) {
    let Some((images, agent)) = setup(test) else {
        return;
    };
    let Some(gitea) = crate::daemon_gitea::gitea(test) else {
        return;
    };
    let actions = tempfile::tempdir().expect("tempdir");
    let checkout = actions.path().join("checkout");
    crate::support::copy_tree(
        &repo_root().join("crates/runnel-cli/tests/fixtures/checkout-action"),
        &checkout,
    );
    crate::artifacts_gitea::publish(gitea, "checkout", &checkout);
    crate::artifacts_gitea::build_actions(actions.path());
    crate::artifacts_gitea::publish(gitea, "upload-artifact", &actions.path().join("upload"));
    crate::artifacts_gitea::publish(gitea, "download-artifact", &actions.path().join("download"));
    let runner =
        crate::daemon_gitea::register_with(gitea, "vm", |l| format!("{l}:vm://{IMAGE}"), &[]);
    let store = runner.dir.path().join("cache");
    runner.write_config(&format!("cache:\n  dir: {}\n", store.display()));
    let label = &runner.label;
    let jobs = DAEMON_JOBS.replace("LABEL", label);
    gitea.push_workflow(label, &crate::daemon_gitea::workflow(label, &jobs));
    let temp = tempfile::tempdir().expect("tempdir");
    let (temp_text, images_text, agent_text) = (
        temp.path().display().to_string(),
        images.display().to_string(),
        agent.display().to_string(),
    );
    let started = Instant::now();
    let daemon = runner.daemon_with_env(
        &["-c", "config.yaml", "--once"],
        &[
            ("TMPDIR", &temp_text),
            ("RUNNEL_VM_IMAGES", &images_text),
            ("RUNNEL_VM_AGENT", &agent_text),
            ("RUNNEL_VM_NETWORK", network),
        ],
    );
    let status = wait_daemon(&runner, daemon, std::time::Duration::from_secs(600));
    eprintln!(
        "the daemon's vm job ({network}) took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = crate::daemon_gitea::completed_jobs(gitea, &runner, 1).remove(0);
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let context = format!("{job}\n{lines:#?}\n{}", runner.daemon_log());
    assert_eq!(job["conclusion"], "success", "{context}");
    let sha = job["head_sha"].as_str().unwrap_or_default();
    let checked_out = format!("checked out {} at {sha}", gitea.repo);
    let guest_address = if network == "nat" {
        "10.0.2.2"
    } else {
        "10.0.2.101"
    };
    let server_line = format!("server http://{guest_address} http://{guest_address}");
    for expected in [
        checked_out.as_str(),
        "the workflow file is in the workspace",
        "uploaded artifact vm-report: id ",
        "artifact=[made in the vm]",
        "got 42 over-env-file",
        // `GITHUB_SERVER_URL`, `github.server_url` and the artifact URLs: the forward, or
        // with NAT the gateway (the test Gitea is on this machine's loopback).
        server_line.as_str(),
        "results at the server",
        "other port blocked",
        "Process completed with exit code 3.",
        "after the failure",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(expected)),
            "{expected:?} missing: {context}"
        );
    }
    // Every step ran (the failing one's `continue-on-error` made it count as a success).
    let steps = crate::daemon_gitea::step_states(&job);
    assert_eq!(steps.len(), 11, "{steps:?}");
    assert!(
        steps.iter().all(|(_, conclusion)| conclusion == "success"),
        "{steps:?}"
    );
    assert_nothing_left(temp.path());
    assert_no_forwarder_left(runner.dir.path());
}

/// No `runnel __vm-forward` of the daemon is left (QEMU runs them in the daemon's directory;
/// each ends when its connection or QEMU does: a few seconds' grace).
fn assert_no_forwarder_left(dir: &Path) {
    let runnel = Path::new(env!("CARGO_BIN_EXE_runnel"));
    let left = || {
        std::fs::read_dir("/proc")
            .expect("read /proc")
            .flatten()
            .filter(|entry| {
                let proc = entry.path();
                let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
                std::fs::read_link(proc.join("exe")).is_ok_and(|exe| exe == runnel)
                    && std::fs::read_link(proc.join("cwd")).is_ok_and(|cwd| cwd == dir)
                    && String::from_utf8_lossy(&cmdline).contains("__vm-forward")
            })
            .count()
    };
    for _ in 0..50 {
        if left() == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{} forwarder(s) of the daemon still running", left());
}
