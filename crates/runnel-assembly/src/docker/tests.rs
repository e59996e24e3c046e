//! The `container:` keys as the Docker backend receives them.

use super::*;

fn parse(text: &str) -> Config {
    match Config::parse("config.yaml", text) {
        Ok(loaded) => loaded.config,
        Err(error) => panic!("{error}"),
    }
}

#[test]
fn container_keys_reach_the_docker_backend() {
    let config = parse(
        "runner:\n  file: /var/lib/runnel/.runner\ncontainer:\n  network: ci-net\n  \
         ca_bundle: /etc/ssl/corp.pem\n  privileged: true\n  valid_volumes: ['/data/**']\n",
    );
    let docker = docker_config(&config, &Purpose::Daemon);
    assert_eq!(docker.ca_bundle, Some(PathBuf::from("/etc/ssl/corp.pem")));
    assert_eq!(
        docker.job_network,
        JobNetwork::Existing("ci-net".to_owned())
    );
    assert!(docker.allow_privileged);
    assert_eq!(docker.valid_volumes, vec!["/data/**".to_owned()]);
    assert_eq!(
        docker.job_files,
        JobFiles::HostDirectory {
            root: Some(PathBuf::from("/var/lib/runnel/docker-jobs"))
        }
    );
    assert!(!docker.mount_docker_socket, "the safe default stays");
}

#[test]
fn docker_host_means_what_it_means_to_the_gitea_runner() {
    let mounted = |text: &str| {
        let docker = docker_config(&parse(text), &Purpose::Daemon);
        (
            docker.docker_host.clone(),
            docker
                .mount_docker_socket
                .then(|| docker.docker_socket_path.clone()),
        )
    };
    // No key: runnel's safe default. `-`: the same, said out loud.
    assert_eq!(mounted("container:\n  network: ''\n"), (None, None));
    assert_eq!(mounted("container:\n  docker_host: '-'\n"), (None, None));
    // Written empty (the Gitea runner's generated config): the engine found, mounted.
    let (engine, socket) = mounted("container:\n  docker_host: ''\n");
    assert_eq!(engine, None);
    assert!(socket.is_some_and(|path| path.ends_with(".sock")));
    // A URL: that engine; a unix socket is mounted, a TCP engine cannot be.
    assert_eq!(
        mounted("container:\n  docker_host: unix:///run/user/1000/docker.sock\n"),
        (
            Some("unix:///run/user/1000/docker.sock".to_owned()),
            Some("/run/user/1000/docker.sock".to_owned())
        )
    );
    assert_eq!(
        mounted("container:\n  docker_host: tcp://10.0.0.5:2375\n"),
        (Some("tcp://10.0.0.5:2375".to_owned()), None)
    );
    // What generate-config writes keeps the socket out.
    let example = docker_config(&parse(runnel_config::EXAMPLE_CONFIG), &Purpose::Daemon);
    assert!(!example.mount_docker_socket);
}

#[test]
fn act_runner_container_keys_are_applied() {
    let config = parse(
        "container:\n  options: '--memory 2g -e CI_OWNER=ops'\n  privileged: true\n  \
         workdir_parent: /ci/\n  force_pull: true\n  force_rebuild: true\n  \
         docker_timeout: 45s\n",
    );
    let docker = docker_config(&config, &Purpose::Daemon);
    assert_eq!(docker.job_options, ["--memory 2g -e CI_OWNER=ops"]);
    assert!(docker.privileged && docker.allow_privileged);
    assert_eq!(docker.workspace_parent.as_deref(), Some("ci"));
    assert!(docker.force_pull && docker.force_rebuild);
    assert_eq!(
        docker.pull_stall_timeout,
        Some(std::time::Duration::from_secs(45))
    );
    assert_eq!(docker.registry_auth, RegistryAuth::DockerConfig);

    // The example config's values change nothing: GitHub's /__w layout, no extra options,
    // nothing privileged, pulls only when missing and without a time limit.
    let example = parse(runnel_config::EXAMPLE_CONFIG);
    let docker = docker_config(&example, &Purpose::Daemon);
    assert!(docker.job_options.is_empty());
    assert_eq!(docker.workspace_parent, None);
    assert!(!docker.privileged && !docker.allow_privileged);
    assert_eq!(docker.pull_stall_timeout, None);
    assert_eq!(
        (docker.force_pull, docker.force_rebuild),
        (example.container.force_pull, false)
    );
}

#[test]
fn container_network_values() {
    for (configured, expected) in [
        ("", JobNetwork::Shared),
        ("  ", JobNetwork::Shared),
        ("bridge", JobNetwork::DefaultBridge),
        ("host", JobNetwork::Existing("host".to_owned())),
        ("my-net", JobNetwork::Existing("my-net".to_owned())),
    ] {
        assert_eq!(job_network(configured), expected, "{configured:?}");
    }
}

#[test]
fn docker_job_directories_live_under_the_runners_work_dir() {
    let config = parse("host:\n  workdir_parent: /srv/runner/work\n");
    assert_eq!(
        docker_jobs_root(&config),
        PathBuf::from("/srv/runner/work/docker-jobs")
    );
    // Default `.runner` in the working directory: an absolute path below it.
    let root = docker_jobs_root(&Config::default());
    assert!(root.is_absolute(), "{}", root.display());
    assert!(root.ends_with("docker-jobs"), "{}", root.display());
    assert_eq!(
        docker_config(&Config::default(), &Purpose::Daemon).ca_bundle,
        None
    );
    assert_eq!(
        docker_config(&Config::default(), &Purpose::Daemon).job_network,
        JobNetwork::Shared
    );
}
