//! The agent without Docker: its bash script runs on this machine (bash, `env`, `setsid`),
//! in a temporary directory standing in for `/__w/_runnel`. The Docker tests compare it with
//! `docker exec` inside real containers.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bollard::Docker;
use runnel_engine::backend::{ExecExit, ExecOutput, ExecRequest};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AGENT, Agent, Outcome, open_exec_dir, quote, request_script};
use crate::docker::exec::ExecTarget;

/// A started agent; killed when dropped.
struct Running {
    child: Child,
    root: tempfile::TempDir,
    agent: Agent,
    docker: Docker,
    pid_file: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent as a container would start it: the environment Docker gives, plus the `PWD`
/// that `/bin/sh` adds when it launches bash.
fn start() -> Running {
    let root = tempfile::tempdir().expect("test setup");
    let exec_dir = root.path().join("_runnel");
    std::fs::create_dir(&exec_dir).expect("test setup");
    let Some(agent) = Agent::prepare(root.path().to_path_buf()) else {
        panic!("no agent FIFO")
    };
    // A container's main process starts with default signal dispositions; this test may
    // not (a suite started as `nohup … &` ignores SIGINT and SIGQUIT): start it as Docker
    // would.
    let child = Command::new("env")
        .args(["--default-signal", "bash", "-c", AGENT, "runnel-agent"])
        .arg(&exec_dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOSTNAME", "pod")
        .env("FROM_IMAGE", "image value")
        .env("PWD", "/added/by/sh")
        .current_dir(root.path())
        .stdin(Stdio::null())
        .spawn()
        .expect("bash runs");
    let docker = match Docker::connect_with_unix(
        &root.path().display().to_string(),
        1,
        bollard::API_DEFAULT_VERSION,
    ) {
        Ok(docker) => docker,
        Err(error) => panic!("client: {error}"),
    };
    let pid_file = exec_dir.join("exec-1.pid").display().to_string();
    Running {
        child,
        root,
        agent,
        docker,
        pid_file,
    }
}

struct Ran {
    exit: ExecExit,
    stdout: String,
    stderr: String,
}

async fn run(running: &Running, request: &ExecRequest) -> Option<Ran> {
    let target = ExecTarget {
        docker: &running.docker,
        container: "none",
        pid_file: Some(running.pid_file.clone()),
    };
    let (sender, mut receiver) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let outcome = running.agent.run(&target, request, &sender, &cancel);
    let outcome = tokio::time::timeout(Duration::from_secs(20), outcome).await;
    drop(sender);
    let outcome = match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => panic!("agent run: {error}"),
        Err(_) => panic!("agent run hangs"),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(chunk) = receiver.recv().await {
        match chunk {
            ExecOutput::Stdout(bytes) => stdout.extend(bytes),
            ExecOutput::Stderr(bytes) => stderr.extend(bytes),
        }
    }
    match outcome {
        Outcome::Exited(exit) => Some(Ran {
            exit,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }),
        Outcome::Fallback => None,
    }
}

fn request(argv: &[&str], workdir: &Path) -> ExecRequest {
    ExecRequest {
        argv: argv.iter().map(|arg| (*arg).to_owned()).collect(),
        env: BTreeMap::new(),
        workdir: workdir.display().to_string(),
        timeout: None,
    }
}

#[tokio::test]
async fn runs_processes_with_their_output_exit_status_and_environment() {
    let running = start();
    let workdir = running.root.path().to_path_buf();
    let ran = run(
        &running,
        &request(&["sh", "-c", "echo out; echo err >&2; exit 3"], &workdir),
    )
    .await;
    let Some(ran) = ran else {
        panic!("the agent handed a plain request to docker exec")
    };
    assert_eq!(
        (ran.exit, ran.stdout.as_str(), ran.stderr.as_str()),
        (ExecExit::Code(3), "out\n", "err\n")
    );

    // The container's environment under the request's, names sh cannot keep included; the
    // `PWD` the launcher added is gone (the pid-file wrapper sets the real one).
    let mut with_env = request(&["env"], &workdir);
    with_env.env = BTreeMap::from([
        ("FROM_IMAGE".to_owned(), "step value".to_owned()),
        (
            "MULTI".to_owned(),
            "a 'quoted'\nsecond line $HOME".to_owned(),
        ),
        ("INPUT_RESTORE-KEYS".to_owned(), "k".to_owned()),
    ]);
    let Some(ran) = run(&running, &with_env).await else {
        panic!("fallback")
    };
    let mut lines: Vec<&str> = ran.stdout.lines().collect();
    lines.sort_unstable();
    let expected_pwd = format!("PWD={}", workdir.display());
    for line in [
        "FROM_IMAGE=step value",
        "MULTI=a 'quoted'",
        "second line $HOME",
        "INPUT_RESTORE-KEYS=k",
        "HOSTNAME=pod",
        expected_pwd.as_str(),
    ] {
        assert!(lines.contains(&line), "{line} missing from {lines:?}");
    }
    assert!(!ran.stdout.contains("/added/by/sh"), "{}", ran.stdout);

    // Its own session and group; stdin empty.
    let probe = r#"read -r -a stat </proc/self/stat
[ "${stat[4]}" = "$$" ] && [ "${stat[5]}" = "$$" ] && echo leader
cat"#;
    let Some(ran) = run(&running, &request(&["bash", "-c", probe], &workdir)).await else {
        panic!("fallback")
    };
    assert_eq!(ran.stdout, "leader\n", "{}", ran.stderr);
    // Open descriptors as the agent's parent left them (here this test process, in a
    // container Docker): the agent's FIFOs do not leak. SIGINT and SIGQUIT are not ignored,
    // as sh would for a background job. (The Docker tests compare everything with `docker
    // exec`.)
    let probe = "ls /proc/$$/fd";
    let Some(ran) = run(&running, &request(&["bash", "-c", probe], &workdir)).await else {
        panic!("fallback")
    };
    let direct = Command::new("bash")
        .args(["-c", probe])
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    assert_eq!(ran.stdout, String::from_utf8_lossy(&direct.stdout));
    let probe = "sed -n 's/^SigIgn:[[:space:]]*//p' /proc/self/status";
    let Some(ran) = run(&running, &request(&["sh", "-c", probe], &workdir)).await else {
        panic!("fallback")
    };
    let ignored = u64::from_str_radix(ran.stdout.trim(), 16);
    assert!(
        ignored.is_ok_and(|mask| mask & 0b110 == 0),
        "SigIgn {}",
        ran.stdout
    );
    let pid = std::fs::read_to_string(&running.pid_file).unwrap_or_default();
    assert!(pid.trim().parse::<u32>().is_ok(), "pid file: {pid:?}");

    // Killed by a signal: 128 + the signal, as Docker reports it.
    let Some(ran) = run(&running, &request(&["sh", "-c", "kill -9 $$"], &workdir)).await else {
        panic!("fallback")
    };
    assert_eq!(ran.exit, ExecExit::Code(137));

    // The output ends when the last holder closes it, not when the process exits.
    let Some(ran) = run(
        &running,
        &request(
            &["sh", "-c", "(sleep 0.3; echo late) & echo early"],
            &workdir,
        ),
    )
    .await
    else {
        panic!("fallback")
    };
    assert_eq!(
        (ran.exit, ran.stdout.as_str()),
        (ExecExit::Code(0), "early\nlate\n")
    );
}

#[tokio::test]
async fn what_the_agent_cannot_start_goes_to_docker_exec() {
    let running = start();
    let missing = running.root.path().join("no-such-dir");
    assert!(
        run(&running, &request(&["true"], &missing)).await.is_none(),
        "a working directory that does not exist is Docker's to report"
    );
    let relative = ExecRequest {
        workdir: "relative".to_owned(),
        ..request(&["true"], &missing)
    };
    assert!(run(&running, &relative).await.is_none());
    // Still serving afterwards.
    let Some(ran) = run(&running, &request(&["true"], running.root.path())).await else {
        panic!("fallback")
    };
    assert_eq!(ran.exit, ExecExit::Code(0));
}

#[tokio::test]
async fn no_agent_answer_no_agent() {
    let root = tempfile::tempdir().expect("test setup");
    std::fs::create_dir(root.path().join("_runnel")).expect("test setup");
    std::fs::write(root.path().join("_runnel/agent.ready"), "no\n").expect("test setup");
    let Some(agent) = Agent::prepare(root.path().to_path_buf()) else {
        panic!("no agent FIFO")
    };
    assert!(agent.sender().await.is_none());
}

#[test]
fn a_linked_exec_dir_is_not_followed() {
    let root = tempfile::tempdir().expect("test setup");
    let elsewhere = tempfile::tempdir().expect("test setup");
    std::os::unix::fs::symlink(elsewhere.path(), root.path().join("_runnel")).expect("setup");
    assert!(open_exec_dir(root.path()).is_err());
    assert!(Agent::prepare(root.path().to_path_buf()).is_none());
    assert!(!elsewhere.path().join("agent.fifo").exists());
}

#[test]
fn requests_round_trip_through_bash() {
    let values = [
        "plain",
        "",
        "it's",
        "a\nb",
        "$HOME `x` \\ \"q\" '' *",
        "-dash",
    ];
    let owned: Vec<String> = values.iter().map(|value| (*value).to_owned()).collect();
    let script = request_script("/w d", &owned, &owned, Some("/p'q"));
    let root = tempfile::tempdir().expect("test setup");
    let file = root.path().join("req");
    std::fs::write(&file, &script).expect("test setup");
    let printed = Command::new("bash")
        .arg("-c")
        .arg(r#". "$1" && printf '%s\0' "$wd" "$pwd" "${envs[@]}" -- "${argv[@]}""#)
        .arg("bash")
        .arg(&file)
        .output()
        .expect("bash runs");
    let mut expected = vec!["/w d", "/p'q"];
    expected.extend(values);
    expected.push("--");
    expected.extend(values);
    let mut joined = expected.join("\0");
    joined.push('\0');
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        joined,
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert_eq!(quote("a'b"), r"'a'\''b'");
}
