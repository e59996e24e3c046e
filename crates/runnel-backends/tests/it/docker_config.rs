//! What the runner's config (act_runner's `container:` keys) does to a pod, against the real
//! engine: its `options` reach the job container, a `workspace_parent` moves the workspace
//! (shared with step containers, in a job directory or a volume), and `force_pull` of an image
//! no registry has keeps the copy present.

use std::collections::BTreeMap;

use bollard::query_parameters::InspectContainerOptions;
use runnel_backends::docker::{DockerBackend, DockerBackendConfig, JobFiles};
use runnel_engine::backend::{ContainerMount, ContainerRun, ExecExit, ExecOutput, JobEnvironment};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{BUSYBOX, container, docker_ready, job_spec, sh, with_pod};

async fn connect(config: DockerBackendConfig) -> DockerBackend {
    match DockerBackend::connect(config).await {
        Ok(backend) => backend,
        Err(error) => panic!("cannot connect to Docker: {error}"),
    }
}

/// Runs `script` in a busybox step container that sees `source` at `/github/workspace`.
async fn step_output(environment: &dyn JobEnvironment, source: &str, script: &str) -> String {
    let run = ContainerRun {
        image: BUSYBOX.to_owned(),
        entrypoint: Some("sh".to_owned()),
        args: vec!["-c".to_owned(), script.to_owned()],
        env: BTreeMap::new(),
        workdir: "/github/workspace".to_owned(),
        mounts: vec![ContainerMount {
            source: source.to_owned(),
            target: "/github/workspace".to_owned(),
        }],
        timeout: None,
    };
    let (sender, mut receiver) = mpsc::channel(16);
    let collect = async {
        let mut text = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            let (ExecOutput::Stdout(bytes) | ExecOutput::Stderr(bytes)) = chunk;
            text.extend(bytes);
        }
        String::from_utf8_lossy(&text).into_owned()
    };
    let cancel = CancellationToken::new();
    let (exit, text) = tokio::join!(environment.run_container(&run, sender, &cancel), collect);
    assert!(matches!(exit, Ok(ExecExit::Code(0))), "{exit:?}: {text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_workspace_is_the_jobs_and_its_step_containers() {
    if !docker_ready() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    for (name, job_files) in [
        (
            "moved-host",
            JobFiles::HostDirectory {
                root: Some(root.path().to_path_buf()),
            },
        ),
        ("moved-volume", JobFiles::Volume),
    ] {
        let backend = connect(DockerBackendConfig {
            workspace_parent: Some("/ci/".to_owned()),
            job_files,
            ..DockerBackendConfig::safe_defaults()
        })
        .await;
        let spec = job_spec(name, container(BUSYBOX), Vec::new());
        with_pod(&backend, &spec, async |environment| {
            let workspace = environment.paths().workspace.clone();
            assert_eq!(workspace, "/ci/workspace", "{name}");
            let written = environment
                .write_file("/ci/workspace/from-engine.txt", b"engine\n", false)
                .await;
            assert!(written.is_ok(), "{name}: {written:?}");
            let ran = sh(
                environment,
                "cat /ci/workspace/from-engine.txt && echo step > /ci/workspace/from-step.txt",
            )
            .await;
            assert_eq!(ran.stdout, "engine\n", "{name}: {ran:?}");
            let text =
                step_output(environment, &workspace, "cat from-engine.txt from-step.txt").await;
            assert_eq!(text, "engine\nstep\n", "{name}");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runners_options_reach_the_job_container_and_force_pull_keeps_a_local_image() {
    if !docker_ready() {
        return;
    }
    let backend = connect(DockerBackendConfig {
        job_options: vec!["-e FROM_RUNNER=yes --label ci.owner=ops --memory 256m".to_owned()],
        // runnel-test/busybox is in no registry: the forced pull fails, the local copy is used.
        force_pull: true,
        ..DockerBackendConfig::safe_defaults()
    })
    .await;
    let mut job = container(BUSYBOX);
    job.options = vec!["--memory".to_owned(), "1g".to_owned()];
    let spec = job_spec("runner-options", job, Vec::new());
    let docker = backend.docker().clone();
    with_pod(&backend, &spec, async |environment| {
        let ran = sh(environment, "echo \"from=$FROM_RUNNER\"").await;
        assert_eq!(ran.stdout, "from=yes\n", "{ran:?}");
        let id = environment.info().container_id.clone().unwrap_or_default();
        let inspect = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .expect("inspect the job container");
        let labels = inspect
            .config
            .and_then(|config| config.labels)
            .unwrap_or_default();
        assert_eq!(labels.get("ci.owner").map(String::as_str), Some("ops"));
        // The runner's limit wins over the workflow's.
        let memory = inspect.host_config.and_then(|host| host.memory);
        assert_eq!(memory, Some(256 * 1024 * 1024));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_runner_options_stop_the_backend_at_connect() {
    if !docker_ready() {
        return;
    }
    // The operator's options are trusted config (applied as written, as the Gitea runner
    // does): `--pid host` is taken; an option that cannot apply to a job container is not.
    let trusted = DockerBackend::connect(DockerBackendConfig {
        job_options: vec!["--pid host".to_owned()],
        ..DockerBackendConfig::safe_defaults()
    })
    .await;
    assert!(
        trusted.is_ok(),
        "{:?}",
        trusted.err().map(|e| e.to_string())
    );
    let connected = DockerBackend::connect(DockerBackendConfig {
        job_options: vec!["--name fixed".to_owned()],
        ..DockerBackendConfig::safe_defaults()
    })
    .await;
    let error = connected.err().map(|error| error.to_string());
    assert!(
        error.as_deref().is_some_and(|error| error
            .contains("container.options of the runner's config: option `--name` is not allowed")),
        "{error:?}"
    );
}
