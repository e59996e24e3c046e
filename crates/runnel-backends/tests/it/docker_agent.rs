//! The exec agent (the job container's main process runs steps instead of `docker exec`):
//! a process it starts must see exactly what a `docker exec` of the same command line sees,
//! in the same container; images it cannot serve fall back to `docker exec`.

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::RemoveImageOptionsBuilder;
use futures_util::StreamExt;
use runnel_engine::backend::{ExecExit, JobEnvironment};
use tokio_util::sync::CancellationToken;

use super::{backend, container, docker_ready, job_spec, request, run, sh, with_pod};

const DEBIAN: &str = "runnel-test/debian:bookworm";

/// Everything of a process that the way it was started could change.
const PROBE: &str = r#"read -r -a stat </proc/self/stat
echo "leader $([ "${stat[4]}" = "$$" ] && [ "${stat[5]}" = "$$" ] && echo yes) tty ${stat[6]}"
grep -E '^(Sig(Ign|Blk)|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Uid|Gid|Groups)' /proc/self/status
echo "umask $(umask)"
ulimit -a
pwd
cat /proc/self/cgroup /proc/self/oom_score_adj
cat /proc/self/attr/current 2>/dev/null; echo
for n in /proc/self/ns/*; do echo "$n $(readlink "$n")"; done
for f in /proc/$$/fd/*; do echo "${f##*/} $(stat -L -c %F "$f" 2>/dev/null)"; done
env | sort
echo "stdin $(wc -c)""#;

/// `docker exec` of the command line the backend builds (the pid-file wrapper), as the
/// backend ran every process before the agent.
async fn docker_exec(environment: &dyn JobEnvironment, docker: &bollard::Docker) -> String {
    let Some(container) = environment.info().container_id.clone() else {
        panic!("no job container id")
    };
    let cmd = [
        "/bin/sh",
        "-c",
        r#"echo $$ >"$0" 2>/dev/null; exec "$@""#,
        "/__w/_runnel/probe.pid",
        "bash",
        "-c",
        PROBE,
    ];
    let created = docker
        .create_exec(
            &container,
            CreateExecOptions {
                cmd: Some(cmd.iter().map(|arg| (*arg).to_owned()).collect()),
                env: Some(Vec::<String>::new()),
                working_dir: Some("/__w/workspace".to_owned()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await;
    let started = match created {
        Ok(created) => docker.start_exec(&created.id, None).await,
        Err(error) => panic!("create exec: {error}"),
    };
    let Ok(StartExecResults::Attached { mut output, .. }) = started else {
        panic!("start exec: {started:?}")
    };
    let mut stdout = Vec::new();
    while let Some(chunk) = output.next().await {
        if let Ok(bollard::container::LogOutput::StdOut { message }) = chunk {
            stdout.extend_from_slice(&message);
        }
    }
    String::from_utf8_lossy(&stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_processes_see_what_docker_exec_processes_see() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let spec = job_spec("agent", container(DEBIAN), Vec::new());
    with_pod(&backend, &spec, async |environment| {
        // Started by the agent: its parent is the agent's bash, not Docker's runc.
        let parent = sh(environment, "tr '\\0' ' ' </proc/$PPID/cmdline").await;
        assert!(
            parent.stdout.contains("runnel-agent"),
            "not started by the agent: parent `{}`",
            parent.stdout
        );

        let mut probe = request(&["bash", "-c", PROBE]);
        probe.workdir = "/__w/workspace".to_owned();
        let agent = match run(environment, &probe, &CancellationToken::new()).await {
            Ok(ran) => ran,
            Err(error) => panic!("agent run: {error}"),
        };
        assert_eq!(agent.exit, ExecExit::Code(0), "{}", agent.stderr);
        let exec = docker_exec(environment, backend.docker()).await;
        assert_eq!(agent.stdout, exec, "agent (left) and docker exec (right) differ");
        assert!(agent.stdout.starts_with("leader yes tty 0\n"), "{}", agent.stdout);

        // A working directory the agent cannot enter goes to docker exec, which says so.
        let mut missing = request(&["true"]);
        missing.workdir = "/no/such/dir".to_owned();
        let ran = run(environment, &missing, &CancellationToken::new()).await;
        assert!(
            !matches!(&ran, Ok(ran) if ran.exit == ExecExit::Code(0)),
            "{ran:?}"
        );

        // Timeouts still kill the whole process group.
        let script = "echo started; sleep 300 & sleep 301; echo never";
        let mut timed = request(&["sh", "-c", script]);
        timed.timeout = Some(Duration::from_millis(500));
        let ran = run(environment, &timed, &CancellationToken::new()).await;
        assert!(
            matches!(&ran, Ok(ran) if ran.exit == ExecExit::TimedOut && ran.stdout == "started\n"),
            "{ran:?}"
        );
        let left = sh(
            environment,
            "for p in /proc/[0-9]*; do tr '\\0' ' ' <$p/cmdline; echo; done | grep -c '^sleep 30[01]' || true",
        )
        .await;
        assert_eq!(left.stdout.trim(), "0", "processes that survived the kill");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_bin_sh_runs_as_before() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let docker = backend.docker();
    // busybox with `tail` but no /bin/sh, made here and removed at the end.
    let image = format!("runnel-test/no-sh:{}", std::process::id());
    let name = format!("runnel-no-sh-{}", std::process::id());
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker run --name {name} {} rm /bin/sh >/dev/null && docker commit {name} {image} >/dev/null; \
             status=$?; docker rm -f {name} >/dev/null; exit $status",
            super::BUSYBOX
        ))
        .status();
    assert!(
        made.is_ok_and(|status| status.success()),
        "could not make {image}"
    );
    let spec = job_spec("no-sh", container(&image), Vec::new());
    with_pod(&backend, &spec, async |environment| {
        let ran = run(
            environment,
            &request(&["echo", "no shell needed"]),
            &CancellationToken::new(),
        )
        .await;
        assert!(
            matches!(&ran, Ok(ran) if ran.exit == ExecExit::Code(0) && ran.stdout == "no shell needed\n"),
            "{ran:?}"
        );
    })
    .await;
    let removed = docker
        .remove_image(
            &image,
            Some(RemoveImageOptionsBuilder::new().force(true).build()),
            None,
        )
        .await;
    assert!(removed.is_ok(), "{removed:?}");
}
