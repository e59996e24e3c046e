use super::*;

fn check(options: &str, role: ContainerRole) -> Result<CheckedOptions, String> {
    check_options(&[options.to_owned()], role, false).map_err(|error| error.to_string())
}

#[test]
fn health_options_become_a_health_config() {
    let checked = check(
        "--health-cmd 'pg_isready -U postgres' --health-interval=500ms --health-timeout 5s \
         --health-retries 10 --health-start-period 1m30s",
        ContainerRole::Service,
    );
    let health = checked.map(|checked| checked.health);
    assert_eq!(
        health,
        Ok(Some(HealthConfig {
            test: Some(vec![
                "CMD-SHELL".to_owned(),
                "pg_isready -U postgres".to_owned()
            ]),
            interval: Some(500_000_000),
            timeout: Some(5_000_000_000),
            retries: Some(10),
            start_period: Some(90_000_000_000),
            start_interval: None,
        }))
    );
}

#[test]
fn allowed_options_are_applied() {
    let checked = check(
        "-e A=1 --env=B=two --cpus 1.5 -m 512m --shm-size 1g --ulimit nofile=1024:2048 \
         --tmpfs /run:size=64m --read-only --init -l team=ci --user 1000 -h box",
        ContainerRole::Job,
    );
    let Ok(checked) = checked else {
        panic!("expected the options to pass: {checked:?}");
    };
    assert_eq!(checked.env, ["A=1", "B=two"]);
    assert_eq!(checked.nano_cpus, Some(1_500_000_000));
    assert_eq!(checked.memory, Some(512 * 1024 * 1024));
    assert_eq!(checked.shm_size, Some(1024 * 1024 * 1024));
    assert_eq!(checked.ulimits.first().and_then(|u| u.hard), Some(2048));
    assert_eq!(
        checked.tmpfs.get("/run").map(String::as_str),
        Some("size=64m")
    );
    assert!(checked.read_only);
    assert_eq!(checked.init, Some(true));
    assert_eq!(checked.user.as_deref(), Some("1000"));
    assert_eq!(checked.hostname.as_deref(), Some("box"));
}

#[test]
fn refused_options_say_why() {
    let cases = [
        (
            "--network host",
            ContainerRole::Job,
            "option `--network` is not allowed: runnel manages the job's network (services share the job container's network namespace)",
        ),
        (
            "-v /:/host",
            ContainerRole::Job,
            "option `-v` is not allowed: use the `volumes:` key (checked against the backend's valid_volumes)",
        ),
        (
            "--privileged",
            ContainerRole::Job,
            "option `--privileged` is not allowed: enable allow_privileged in the backend config to allow it",
        ),
        (
            "--cap-add SYS_ADMIN",
            ContainerRole::Service,
            "option `--cap-add` is not allowed: enable allow_privileged in the backend config to allow it",
        ),
        (
            "--hostname db",
            ContainerRole::Service,
            "option `--hostname` is not allowed: services share the job container's network namespace, hostname and /etc/hosts",
        ),
        (
            "--entrypoint sh",
            ContainerRole::Job,
            "option `--entrypoint` is not allowed: the job container's entrypoint keeps it running between steps",
        ),
        (
            "--pid=host",
            ContainerRole::Job,
            "option `--pid` is not allowed: it would share a host namespace",
        ),
        (
            "--security-opt seccomp=unconfined",
            ContainerRole::Job,
            "option `--security-opt seccomp=unconfined` is not allowed: only `no-new-privileges` is allowed",
        ),
        (
            "--frobnicate",
            ContainerRole::Job,
            "option `--frobnicate` is not allowed (see the Docker backend's allow-list)",
        ),
        (
            "--health-interval soon",
            ContainerRole::Service,
            "option `--health-interval`: `soon` is not a duration like 10s, 1m30s or 500ms",
        ),
        (
            "--health-cmd",
            ContainerRole::Service,
            "option `--health-cmd` needs a value",
        ),
        (
            "--label runnel.pid=1",
            ContainerRole::Job,
            "option `--label`: `runnel.pid=1` is not a label outside runnel.* (runnel owns those)",
        ),
        (
            "--health-cmd 'pg_isready",
            ContainerRole::Service,
            "options `--health-cmd 'pg_isready`: unterminated quote",
        ),
    ];
    for (options, role, expected) in cases {
        assert_eq!(
            check(options, role).err().as_deref(),
            Some(expected),
            "{options}"
        );
    }
    let privileged = check_options(
        &["--privileged --cap-add NET_ADMIN".to_owned()],
        ContainerRole::Job,
        true,
    );
    assert!(privileged.is_ok_and(|checked| checked.privileged && checked.cap_add == ["NET_ADMIN"]));
}

#[test]
fn shell_split_handles_quotes() {
    let cases = [
        ("a b  c", vec!["a", "b", "c"]),
        ("--x 'a b' \"c \\\"d\\\"\"", vec!["--x", "a b", "c \"d\""]),
        ("a\\ b '' x", vec!["a b", "", "x"]),
    ];
    for (text, expected) in cases {
        assert_eq!(
            shell_split(text),
            Ok(expected.iter().map(|s| (*s).to_owned()).collect()),
            "{text}"
        );
    }
}

#[test]
fn ports_parse_like_docker_with_a_local_default() {
    let port = |container: &str, ip: &str, host: &str| PortMapping {
        container_port: container.to_owned(),
        host_ip: ip.to_owned(),
        host_port: host.to_owned(),
    };
    let cases = [
        ("5432", Ok(port("5432/tcp", "127.0.0.1", ""))),
        ("8080:80", Ok(port("80/tcp", "127.0.0.1", "8080"))),
        ("53/udp", Ok(port("53/udp", "127.0.0.1", ""))),
        ("0.0.0.0:8080:80", Ok(port("80/tcp", "0.0.0.0", "8080"))),
        (
            "8000-8010:80",
            Err(
                "port `8000-8010:80`: ports are numbers from 1 to 65535 (ranges are not supported)"
                    .to_owned(),
            ),
        ),
        (
            "80/http",
            Err("port `80/http`: the protocol must be tcp, udp or sctp".to_owned()),
        ),
    ];
    for (spec, expected) in cases {
        assert_eq!(
            parse_port(spec).map_err(|e| e.to_string()),
            expected,
            "{spec}"
        );
    }
}

fn runner_config(job_options: &str, privileged: bool) -> DockerBackendConfig {
    DockerBackendConfig {
        job_options: vec![job_options.to_owned()],
        privileged,
        valid_volumes: vec!["/srv/cache*".to_owned()],
        ..DockerBackendConfig::safe_defaults()
    }
}

/// The job container's create body as JSON, once `options` are applied.
fn job_body(options: &CheckedOptions) -> serde_json::Value {
    // As `pod` builds it: the allow-listed variables first.
    let mut body = bollard::models::ContainerCreateBody {
        env: Some(options.env.clone()),
        labels: Some(options.labels.clone()),
        ..Default::default()
    };
    crate::docker::container::apply_options(&mut body, options, Some("runnel-jobs"));
    serde_json::to_value(&body).unwrap_or_default()
}

#[test]
fn the_runners_job_options_add_to_the_workflows_and_win() {
    let config = runner_config(
        "--memory 1g -e FROM=runner --add-host gitea.lan:host-gateway -v /srv/cache:/cache:ro \
         --volume=/srv/cache2:/cache2 -l team=ops",
        false,
    );
    let workflow = ["--memory 4g -e FROM=workflow -e OWN=1 -l app=x --cpus 2".to_owned()];
    let (options, volumes) = job_options(&workflow, &config).expect("options pass");
    let body = job_body(&options);
    // The runner's memory limit holds; the workflow's CPU count stays.
    assert_eq!(
        body.pointer("/HostConfig/Memory"),
        Some(&serde_json::json!(1024 * 1024 * 1024))
    );
    assert_eq!(
        body.pointer("/HostConfig/NanoCpus"),
        Some(&serde_json::json!(2_000_000_000))
    );
    // Docker keeps the last value of a variable: the runner's.
    assert_eq!(
        body.pointer("/Env"),
        Some(&serde_json::json!([
            "FROM=workflow",
            "OWN=1",
            "FROM=runner"
        ]))
    );
    assert_eq!(
        body.pointer("/HostConfig/ExtraHosts"),
        Some(&serde_json::json!(["gitea.lan:host-gateway"]))
    );
    assert_eq!(
        body.pointer("/Labels"),
        Some(&serde_json::json!({"app": "x", "team": "ops"}))
    );
    assert_eq!(
        volumes,
        [
            VolumeMount::Bind("/srv/cache:/cache:ro".to_owned()),
            VolumeMount::Bind("/srv/cache2:/cache2".to_owned()),
        ]
    );
    assert!(!options.privileged);
}

/// The operator's `container.options` are trusted: options a workflow may not use apply as
/// written, bind sources need no valid_volumes entry; only what cannot apply to a job
/// container at all, the engine's socket without `docker_host`, and `--privileged` without
/// `container.privileged` are refused, naming the option.
#[test]
fn the_runners_job_options_apply_as_written() {
    let config = runner_config(
        "--add-host runnel-test:10.9.8.7 --shm-size 256m --dns 10.0.0.53 --ulimit nofile=512 \
         --runtime runc --gpus all -v /etc/ssl/certs:/certs:ro",
        false,
    );
    let (options, volumes) = job_options(&[], &config).expect("the operator's options pass");
    let body = job_body(&options);
    assert_eq!(
        body.pointer("/HostConfig/ExtraHosts"),
        Some(&serde_json::json!(["runnel-test:10.9.8.7"]))
    );
    assert_eq!(
        body.pointer("/HostConfig/ShmSize"),
        Some(&serde_json::json!(268435456))
    );
    assert_eq!(
        body.pointer("/HostConfig/Runtime"),
        Some(&serde_json::json!("runc"))
    );
    assert!(body.pointer("/HostConfig/DeviceRequests").is_some());
    assert!(
        matches!(volumes.as_slice(), [VolumeMount::Bind(bind)] if bind.ends_with(":/certs:ro"))
    );

    let cases = [
        (
            "--name job",
            "container.options of the runner's config: option `--name` is not allowed: runnel \
             creates, names and removes job containers itself",
        ),
        (
            "-v /var/run/docker.sock:/var/run/docker.sock",
            "container.options of the runner's config: volume \
             `/var/run/docker.sock:/var/run/docker.sock` would mount the Docker engine's socket: \
             container.docker_host decides that",
        ),
        (
            "-v /:/host",
            "container.options of the runner's config: volume `/:/host` would mount the Docker \
             engine's socket",
        ),
        (
            "--privileged",
            "container.options of the runner's config: option `--privileged` is not allowed: \
             set container.privileged: true instead",
        ),
        (
            "-e 'unterminated",
            "container.options of the runner's config: options `-e 'unterminated`: \
             unterminated quote",
        ),
    ];
    for (runner, expected) in cases {
        let error = job_options(&[], &runner_config(runner, false))
            .map(|_| ())
            .map_err(|error| error.to_string());
        assert!(
            error.as_ref().is_err_and(|e| e.starts_with(expected)),
            "{runner}: {error:?}"
        );
    }
    // With docker_host mounting the socket anyway, the operator may mount it too.
    let mut config = runner_config("-v /var/run/docker.sock:/var/run/docker.sock", false);
    config.mount_docker_socket = true;
    assert!(job_options(&[], &config).is_ok());
    // The workflow's own mistakes are not blamed on the runner.
    let error = job_options(&["--network host".to_owned()], &runner_config("", false));
    assert!(error.is_err_and(|e| e.to_string().starts_with("option `--network`")));
}

#[test]
fn the_runners_network_option_names_the_job_network() {
    let config = runner_config("--network ci-net", false);
    assert_eq!(
        operator_network(&config),
        Ok(JobNetwork::Existing("ci-net".to_owned()))
    );
    let mut both = runner_config("--network ci-net", false);
    both.job_network = JobNetwork::Existing("other".to_owned());
    assert_eq!(
        operator_network(&both).map_err(|error| error.to_string()),
        Err(
            "`--network ci-net` and container.network `other` name two networks: keep one"
                .to_owned()
        )
    );
    assert_eq!(
        operator_network(&runner_config("", false)),
        Ok(JobNetwork::Shared)
    );
}

/// `container.workflow_options_allowed` extends the allow-list for workflows, never with an
/// option whose workflow key is checked.
#[test]
fn the_operator_can_allow_more_workflow_options() {
    let workflow = ["--group-add 1234 --gpus=all --memory 1g".to_owned()];
    let refused = job_options(&workflow, &runner_config("", false));
    assert!(refused.is_err_and(|e| {
        e.to_string()
            .starts_with("option `--group-add` is not allowed")
    }),);
    let mut config = runner_config("", false);
    config.workflow_options_allowed = vec!["--group-add".to_owned(), "--gpus".to_owned()];
    let (options, _) = job_options(&workflow, &config).expect("allowed options pass");
    let body = job_body(&options);
    assert_eq!(
        body.pointer("/HostConfig/GroupAdd"),
        Some(&serde_json::json!(["1234"]))
    );
    assert!(body.pointer("/HostConfig/DeviceRequests").is_some());
    assert_eq!(
        body.pointer("/HostConfig/Memory"),
        Some(&serde_json::json!(1024 * 1024 * 1024))
    );
    // Services share the job's network namespace: --dns stays refused for them.
    config.workflow_options_allowed = vec!["--dns".to_owned()];
    assert!(service_options(&["--dns 1.1.1.1".to_owned()], &config).is_err());

    assert_eq!(
        check_allowed_list(&["--gpus".to_owned(), "-e".to_owned()]),
        Ok(())
    );
    let problems = [
        (
            "-v",
            "container.workflow_options_allowed: `-v` is checked through `volumes:` and valid_volumes",
        ),
        (
            "--privileged",
            "container.workflow_options_allowed: `--privileged` is container.privileged's to set",
        ),
        (
            "gpus",
            "container.workflow_options_allowed: `gpus` is not a `docker run` option runnel can apply (write it as docker run does, e.g. --gpus)",
        ),
    ];
    for (entry, expected) in problems {
        assert_eq!(
            check_allowed_list(&[entry.to_owned()]).map_err(|e| e.to_string()),
            Err(expected.to_owned())
        );
    }
}

#[test]
fn a_privileged_runner_makes_job_and_service_containers_privileged() {
    let config = runner_config("", true);
    let (job, _) = job_options(&[], &config).expect("options pass");
    assert!(job.privileged);
    let service = service_options(&["--cap-add SYS_ADMIN".to_owned()], &config);
    let service = service.expect("a privileged runner allows --cap-add");
    assert!(service.privileged);
    assert_eq!(service.cap_add, ["SYS_ADMIN"]);
    // Without it, nothing is privileged and privileged options stay refused.
    let config = runner_config("", false);
    assert!(
        !job_options(&[], &config)
            .expect("options pass")
            .0
            .privileged
    );
    assert!(service_options(&["--privileged".to_owned()], &config).is_err());
}
