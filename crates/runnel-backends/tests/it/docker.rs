//! The Docker backend against a real engine (slow: `RUN_SLOW_TESTS=1`). The engine and the
//! images come from the project's scripts, `tests/docker/ensure-dockerd.sh` and
//! `tests/images/build.sh`, which these tests run first; nothing is pulled.
//!
//! Every test runs its pod through `with_pod`, which tears down whether the body passed or
//! panicked and then checks through the API that no object with the job's label remains.

#[path = "docker_agent.rs"]
mod agent;
#[path = "docker_config.rs"]
mod config;
#[path = "docker_files.rs"]
mod files;
#[path = "docker_services.rs"]
mod services;

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use futures_util::FutureExt;
use runnel_backends::docker::{DockerBackend, DockerBackendConfig};
use runnel_engine::backend::{
    Backend, BackendError, ContainerSpec, ExecExit, ExecOutput, ExecRequest, JobEnvironment,
    JobSpec, ServiceSpec,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) const BUSYBOX: &str = "runnel-test/busybox";
pub(crate) const POSTGRES: &str = "runnel-test/postgres";

/// `false` (with a note) unless slow tests are on; with them on, a missing engine or image
/// is a failure that names the script to look at.
pub(crate) fn docker_ready() -> bool {
    if std::env::var("RUN_SLOW_TESTS").as_deref() != Ok("1") {
        eprintln!("note: Docker backend tests skipped (set RUN_SLOW_TESTS=1)");
        return false;
    }
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (script, args) in [
            ("tests/docker/ensure-dockerd.sh", &[][..]),
            ("tests/images/build.sh", &["busybox", "postgres"][..]),
        ] {
            let status = Command::new("bash")
                .arg(root.join(script))
                .args(args)
                .status();
            match status {
                Ok(status) if status.success() => {}
                Ok(status) => {
                    return Err(format!(
                        "{script} {args:?} failed ({status}); see its output above"
                    ));
                }
                Err(error) => return Err(format!("could not run {script}: {error}")),
            }
        }
        Ok(())
    });
    if let Err(problem) = ready {
        panic!("RUN_SLOW_TESTS=1 but the Docker prerequisites are missing: {problem}");
    }
    true
}

pub(crate) async fn backend() -> DockerBackend {
    match DockerBackend::connect(DockerBackendConfig::safe_defaults()).await {
        Ok(backend) => backend,
        Err(error) => panic!("cannot connect to Docker: {error}"),
    }
}

pub(crate) fn container(image: &str) -> ContainerSpec {
    ContainerSpec {
        image: image.to_owned(),
        ..Default::default()
    }
}

pub(crate) fn job_spec(job_key: &str, image: ContainerSpec, services: Vec<ServiceSpec>) -> JobSpec {
    // Unique per run: tests in parallel, and leftovers of a crashed earlier run, must not match.
    JobSpec {
        job_key: format!("{job_key}-{}", std::process::id()),
        image: Some(image),
        services,
        workspace_source: None,
        labels: Vec::new(),
    }
}

/// Prepares, runs `body`, tears down (also when `body` panics), then checks nothing is left.
pub(crate) async fn with_pod<F>(backend: &DockerBackend, spec: &JobSpec, body: F)
where
    F: AsyncFnOnce(&dyn JobEnvironment),
{
    let environment = match backend.prepare(spec, &CancellationToken::new()).await {
        Ok(environment) => environment,
        Err(error) => {
            assert_no_leftovers(backend.docker(), &spec.job_key).await;
            panic!("prepare failed: {error}");
        }
    };
    let outcome = AssertUnwindSafe(body(environment.as_ref()))
        .catch_unwind()
        .await;
    let teardown = environment.teardown().await;
    let again = environment.teardown().await;
    assert_no_leftovers(backend.docker(), &spec.job_key).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(teardown.is_ok(), "teardown: {teardown:?}");
    assert!(again.is_ok(), "second teardown: {again:?}");
}

/// Prepare must fail; returns its message after checking it left nothing behind.
pub(crate) async fn prepare_error(backend: &DockerBackend, spec: &JobSpec) -> String {
    let result = backend.prepare(spec, &CancellationToken::new()).await;
    let message = match result {
        Ok(environment) => {
            let _ = environment.teardown().await;
            panic!("prepare unexpectedly succeeded")
        }
        Err(error) => error.to_string(),
    };
    assert_no_leftovers(backend.docker(), &spec.job_key).await;
    message
}

pub(crate) async fn assert_no_leftovers(docker: &Docker, job_key: &str) {
    let label = format!("runnel.job={job_key}");
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await;
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new().filters(&filters).build(),
        ))
        .await;
    let containers = containers.map(|list| list.len());
    let networks = networks.map(|list| list.len());
    let volumes = volumes.map(|list| list.volumes.unwrap_or_default().len());
    assert!(
        matches!((&containers, &networks, &volumes), (Ok(0), Ok(0), Ok(0))),
        "left behind for {job_key}: containers {containers:?}, networks {networks:?}, volumes {volumes:?}"
    );
}

/// What one exec produced.
#[derive(Debug, PartialEq)]
pub(crate) struct Ran {
    pub(crate) exit: ExecExit,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) fn request(argv: &[&str]) -> ExecRequest {
    ExecRequest {
        argv: argv.iter().map(|arg| (*arg).to_owned()).collect(),
        env: BTreeMap::new(),
        workdir: "/".to_owned(),
        timeout: None,
    }
}

pub(crate) async fn run(
    environment: &dyn JobEnvironment,
    request: &ExecRequest,
    cancel: &CancellationToken,
) -> Result<Ran, BackendError> {
    let (sender, mut receiver) = mpsc::channel(64);
    let collect = async {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(chunk) = receiver.recv().await {
            match chunk {
                ExecOutput::Stdout(bytes) => stdout.extend(bytes),
                ExecOutput::Stderr(bytes) => stderr.extend(bytes),
            }
        }
        (stdout, stderr)
    };
    let (exit, (stdout, stderr)) = tokio::join!(environment.exec(request, sender, cancel), collect);
    Ok(Ran {
        exit: exit?,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

pub(crate) async fn sh(environment: &dyn JobEnvironment, script: &str) -> Ran {
    match run(
        environment,
        &request(&["sh", "-c", script]),
        &CancellationToken::new(),
    )
    .await
    {
        Ok(ran) => ran,
        Err(error) => panic!("exec `{script}`: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_output_exit_codes_env_and_workdir() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let spec = job_spec("exec", container(BUSYBOX), Vec::new());
    with_pod(&backend, &spec, async |environment| {
        let info = environment.info();
        assert!(
            info.container_id.is_some() && info.network.is_some(),
            "{info:?}"
        );
        assert!(!info.has_bash, "busybox has no bash");
        assert_eq!(environment.paths().temp, "/__w/_temp");
        let mut with_env = request(&["sh", "-c", "echo \"$GREETING $WHO\"; pwd"]);
        with_env.env = BTreeMap::from([
            ("GREETING".to_owned(), "hello".to_owned()),
            ("WHO".to_owned(), "pod".to_owned()),
        ]);
        with_env.workdir = environment.paths().workspace.clone();
        let cases = [
            (
                request(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
                ExecExit::Code(3),
                "out\n",
                "err\n",
            ),
            (request(&["true"]), ExecExit::Code(0), "", ""),
            (
                with_env,
                ExecExit::Code(0),
                "hello pod\n/__w/workspace\n",
                "",
            ),
            (
                request(&["sh", "-c", "for i in 1 2 3; do echo $i; done; kill -9 $$"]),
                ExecExit::Code(137),
                "1\n2\n3\n",
                "",
            ),
        ];
        for (request, exit, stdout, stderr) in cases {
            let ran = run(environment, &request, &CancellationToken::new()).await;
            let expected = Ran {
                exit,
                stdout: stdout.to_owned(),
                stderr: stderr.to_owned(),
            };
            assert_eq!(ran.ok(), Some(expected), "{:?}", request.argv);
        }
        let missing = run(
            environment,
            &request(&["no-such-program"]),
            &CancellationToken::new(),
        )
        .await;
        assert!(
            matches!(
                &missing,
                Ok(Ran {
                    exit: ExecExit::Code(127),
                    ..
                })
            ),
            "a missing program exits 127 as in a shell: {missing:?}"
        );
        let image_env = environment.default_env();
        assert!(
            image_env
                .get("PATH")
                .is_some_and(|path| path.contains("/bin")),
            "{image_env:?}"
        );
        let found = environment
            .find_program("sh", "/nowhere:/usr/bin:/bin")
            .await;
        assert_eq!(found.ok().flatten().as_deref(), Some("/bin/sh"));
        let absent = environment.find_program("bash", "/usr/bin:/bin").await;
        assert_eq!(absent.ok(), Some(None));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_round_trip_through_the_archive_api() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let spec = job_spec("files", container(BUSYBOX), Vec::new());
    with_pod(&backend, &spec, async |environment| {
        let script = "/__w/_temp/steps/deep/step.sh";
        let written = environment
            .write_file(script, b"#!/bin/sh\necho from script\n", true)
            .await;
        assert!(written.is_ok(), "{written:?}");
        assert_eq!(sh(environment, script).await.stdout, "from script\n");
        let read = environment.read_file(script).await;
        assert_eq!(
            read.ok().flatten().as_deref(),
            Some(&b"#!/bin/sh\necho from script\n"[..])
        );

        let binary: Vec<u8> = (0..=255).cycle().take(100_000).collect();
        let written = environment
            .write_file("/tmp/data.bin", &binary, false)
            .await;
        assert!(written.is_ok(), "{written:?}");
        assert_eq!(
            environment.read_file("/tmp/data.bin").await.ok().flatten(),
            Some(binary)
        );
        // Writing into an existing directory must not reset its mode.
        let modes = sh(
            environment,
            "stat -c '%a %n' /tmp /tmp/data.bin /__w/_temp/steps/deep/step.sh",
        )
        .await;
        assert_eq!(
            modes.stdout,
            "1777 /tmp\n644 /tmp/data.bin\n755 /__w/_temp/steps/deep/step.sh\n"
        );

        assert_eq!(
            environment.read_file("/__w/_temp/missing").await.ok(),
            Some(None)
        );
        assert!(
            environment.read_file("/__w/_temp").await.is_err(),
            "a directory is not a file"
        );
        assert!(
            environment
                .write_file("relative.txt", b"", false)
                .await
                .is_err()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_and_cancel_kill_the_process_group() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let spec = job_spec("timeout", container(BUSYBOX), Vec::new());
    with_pod(&backend, &spec, async |environment| {
        let script = "echo started; sleep 300 & sleep 301; echo never";
        let mut timed = request(&["sh", "-c", script]);
        timed.timeout = Some(Duration::from_millis(500));
        let ran = run(environment, &timed, &CancellationToken::new()).await;
        assert!(
            matches!(&ran, Ok(Ran { exit: ExecExit::TimedOut, stdout, .. }) if stdout == "started\n"),
            "{ran:?}"
        );

        let cancel = CancellationToken::new();
        let canceller = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            canceller.cancel();
        });
        let ran = run(environment, &request(&["sh", "-c", script]), &cancel).await;
        assert!(matches!(&ran, Ok(Ran { exit: ExecExit::Cancelled, .. })), "{ran:?}");

        // Docker's init reaps the killed processes; none of the sleeps may survive.
        let left = sh(environment, "ps -o stat,args | grep 'sleep 30[01]' | grep -v grep || true").await;
        assert_eq!(left.stdout, "", "processes that survived the kill");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_says_how_to_get_one() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let spec = job_spec(
        "missing",
        container("runnel-test/no-such-image:1"),
        Vec::new(),
    );
    let message = prepare_error(&backend, &spec).await;
    for expected in [
        "image `runnel-test/no-such-image:1` is not present and could not be pulled",
        "tests/images/build.sh",
        "-P <label>=-self-hosted",
    ] {
        assert!(message.contains(expected), "`{expected}` not in: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_options_and_volumes_create_nothing() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let cases = [
        (
            ContainerSpec {
                options: vec!["--privileged".to_owned()],
                ..container(BUSYBOX)
            },
            "container: option `--privileged` is not allowed: enable allow_privileged in the backend config to allow it",
        ),
        (
            ContainerSpec {
                volumes: vec!["/var/run/docker.sock:/var/run/docker.sock".to_owned()],
                ..container(BUSYBOX)
            },
            "container: volume `/var/run/docker.sock:/var/run/docker.sock` would mount the Docker socket: enable mount_docker_socket in the backend config to allow it",
        ),
        (
            ContainerSpec {
                volumes: vec!["/etc:/host-etc".to_owned()],
                ..container(BUSYBOX)
            },
            "container: volume `/etc:/host-etc` is not allowed: its source matches none of the backend's valid_volumes (none configured)",
        ),
    ];
    for (index, (container, expected)) in cases.into_iter().enumerate() {
        let spec = job_spec(&format!("refused-{index}"), container, Vec::new());
        let message = prepare_error(&backend, &spec).await;
        assert_eq!(message, format!("prepare Docker job: {expected}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_dead_runner_are_removed() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    // A pid that surely belongs to no running process: one that just exited.
    let dead_pid = match Command::new("true").spawn() {
        Ok(mut child) => {
            let _ = child.wait();
            child.id()
        }
        Err(error) => panic!("spawn true: {error}"),
    };
    let job_key = format!("leftover-{}", std::process::id());
    let labels = [
        format!("runnel.job={job_key}"),
        format!("runnel.pid={dead_pid}"),
    ];
    let label_args: Vec<String> = labels
        .iter()
        .flat_map(|label| ["--label".to_owned(), label.clone()])
        .collect();
    let name = format!("runnel-leftover-{}", std::process::id());
    for args in [
        vec!["network", "create"],
        vec!["volume", "create"],
        vec![
            "create",
            "--name",
            name.as_str(),
            "--network",
            name.as_str(),
        ],
    ] {
        let mut command = Command::new("docker");
        command.args(&args).args(&label_args);
        if args[0] == "create" {
            command.arg(BUSYBOX);
        } else {
            command.arg(&name);
        }
        let status = command.stdout(std::process::Stdio::null()).status();
        assert!(
            status.is_ok_and(|status| status.success()),
            "docker {args:?}"
        );
    }
    // A live pod of this runner must survive the cleanup.
    let spec = job_spec("alive", container(BUSYBOX), Vec::new());
    with_pod(&backend, &spec, async |environment| {
        let report = backend.cleanup_leftovers().await;
        let Ok(report) = report else {
            panic!("cleanup: {report:?}");
        };
        // Another runner process on this machine may have cleaned them first (any `runnel
        // run` does at start): what matters is that they are gone and this pod is not.
        for kind in ["container", "network", "volume"] {
            let exists = Command::new("docker")
                .args([kind, "inspect", name.as_str()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            assert!(!exists, "leftover {kind} {name} survived: {report:?}");
        }
        assert_no_leftovers(backend.docker(), &job_key).await;
        assert_eq!(
            sh(environment, "echo still here").await.stdout,
            "still here\n"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_on_the_shared_network_cannot_reach_each_other() {
    if !docker_ready() {
        return;
    }
    let backend = backend().await;
    let listener = job_spec("listener", container(BUSYBOX), Vec::new());
    let prober = job_spec("prober", container(BUSYBOX), Vec::new());
    with_pod(&backend, &listener, async |listening| {
        let address = sh(
            listening,
            "nc -l -p 8080 -e echo hello >/dev/null 2>&1 & sleep 0.2; hostname -i",
        )
        .await;
        let ip = address.stdout.trim().to_owned();
        assert_eq!(
            sh(listening, "nc -w 2 127.0.0.1 8080 </dev/null")
                .await
                .stdout,
            "hello\n"
        );
        let _ = sh(listening, "nc -l -p 8080 -e echo hello >/dev/null 2>&1 &").await;
        with_pod(&backend, &prober, async |probing| {
            assert_eq!(probing.info().network.as_deref(), Some("runnel-jobs"));
            let probe = sh(
                probing,
                &format!("nc -w 2 {ip} 8080 </dev/null; echo exit=$?"),
            )
            .await;
            assert!(
                !probe.stdout.contains("hello"),
                "another job's port answered: {probe:?}"
            );
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_per_job_is_removed_at_teardown() {
    if !docker_ready() {
        return;
    }
    let config = DockerBackendConfig {
        job_network: runnel_backends::docker::JobNetwork::PerJob,
        ..DockerBackendConfig::safe_defaults()
    };
    let backend = match DockerBackend::connect(config).await {
        Ok(backend) => backend,
        Err(error) => panic!("cannot connect to Docker: {error}"),
    };
    let spec = job_spec("own-network", container(BUSYBOX), Vec::new());
    with_pod(&backend, &spec, async |environment| {
        let network = environment.info().network.clone().unwrap_or_default();
        assert!(
            network.starts_with(&format!("runnel-{}-", std::process::id())),
            "{network}"
        );
        assert_eq!(sh(environment, "echo up").await.stdout, "up\n");
    })
    .await;
}
