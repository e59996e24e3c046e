//! Where the job container's `/__w` and `HOME` live: a job directory on this machine
//! (bind-mounted; files are plain file IO) or a volume (files through the archive API), and
//! that links a step plants there are never followed on this machine.

use std::path::PathBuf;

use runnel_backends::docker::{DockerBackend, DockerBackendConfig, JobFiles};
use runnel_engine::backend::JobEnvironment;

use super::{BUSYBOX, container, docker_ready, job_spec, sh, with_pod};

async fn backend_with(job_files: JobFiles) -> DockerBackend {
    let config = DockerBackendConfig {
        job_files,
        ..DockerBackendConfig::safe_defaults()
    };
    match DockerBackend::connect(config).await {
        Ok(backend) => backend,
        Err(error) => panic!("cannot connect to Docker: {error}"),
    }
}

fn entries(root: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

/// Step-made files reach the engine, and engine-made files the steps, either way.
async fn round_trip(environment: &dyn JobEnvironment) {
    let output = "/__w/_temp/_runner_file_commands/set_output_1";
    assert!(environment.write_file(output, b"", false).await.is_ok());
    let step = format!("echo greeting=hi >> {output}; echo x > /github/home/in-home");
    assert_eq!(
        sh(environment, &step).await.exit,
        runnel_engine::backend::ExecExit::Code(0)
    );
    assert_eq!(
        environment
            .read_file(output)
            .await
            .ok()
            .flatten()
            .as_deref(),
        Some(&b"greeting=hi\n"[..])
    );
    assert_eq!(
        environment
            .read_file("/github/home/in-home")
            .await
            .ok()
            .flatten()
            .as_deref(),
        Some(&b"x\n"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_files_live_in_a_host_directory_removed_at_teardown() {
    if !docker_ready() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let backend = backend_with(JobFiles::HostDirectory {
        root: Some(root.path().to_path_buf()),
    })
    .await;
    let spec = job_spec("host-files", container(BUSYBOX), Vec::new());
    with_pod(&backend, &spec, async |environment| {
        round_trip(environment).await;
        let job_dirs = entries(root.path());
        assert_eq!(job_dirs.len(), 1, "{job_dirs:?}");
        let on_host = job_dirs[0].join("w/_temp/_runner_file_commands/set_output_1");
        assert!(on_host.is_file(), "{on_host:?}");
        // Directories a step makes as root inside; removed at teardown all the same.
        sh(
            environment,
            "mkdir -p /__w/_temp/deep/er && touch /__w/_temp/deep/er/f",
        )
        .await;

        // A link planted by a step is never followed on this machine.
        let host_secret = root.path().join("secret");
        std::fs::write(&host_secret, "host secret").expect("write");
        let plant = format!("ln -s {} /__w/_temp/to-host", host_secret.display());
        sh(environment, &plant).await;
        let through = environment.read_file("/__w/_temp/to-host").await;
        assert!(
            !matches!(&through, Ok(Some(bytes)) if bytes == b"host secret"),
            "{through:?}"
        );
        assert!(
            environment
                .write_file("/__w/_temp/to-host", b"pwned", false)
                .await
                .is_ok()
        );
        assert_eq!(
            std::fs::read_to_string(&host_secret).ok().as_deref(),
            Some("host secret")
        );
        std::fs::remove_file(&host_secret).expect("remove");
    })
    .await;
    assert_eq!(
        entries(root.path()),
        Vec::<PathBuf>::new(),
        "job directory left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_files_in_a_volume_go_through_the_archive_api() {
    if !docker_ready() {
        return;
    }
    let backend = backend_with(JobFiles::Volume).await;
    let spec = job_spec("volume-files", container(BUSYBOX), Vec::new());
    with_pod(&backend, &spec, async |environment| {
        round_trip(environment).await;
        let modes = sh(
            environment,
            "stat -c '%a' /__w/_temp /__w/workspace /github/home",
        )
        .await;
        assert_eq!(modes.stdout, "1777\n1777\n1777\n");
    })
    .await;
}
