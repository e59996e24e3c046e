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

#[test]
fn the_runners_job_options_add_to_the_workflows_and_win() {
    let config = runner_config(
        "--memory 1g -e FROM=runner --add-host gitea.lan:host-gateway -v /srv/cache:/cache:ro \
         --volume=/srv/cache2:/cache2 -l team=ops",
        false,
    );
    let workflow = ["--memory 4g -e FROM=workflow -e OWN=1 -l app=x --cpus 2".to_owned()];
    let (options, volumes) = job_options(&workflow, &config).expect("options pass");
    // The runner's memory limit holds; the workflow's CPU count stays.
    assert_eq!(options.memory, Some(1024 * 1024 * 1024));
    assert_eq!(options.nano_cpus, Some(2_000_000_000));
    // Docker keeps the last value of a variable: the runner's.
    assert_eq!(options.env, ["FROM=workflow", "OWN=1", "FROM=runner"]);
    assert_eq!(options.add_hosts, ["gitea.lan:host-gateway"]);
    assert_eq!(options.labels.len(), 2);
    assert_eq!(
        volumes,
        [
            VolumeMount::Bind("/srv/cache:/cache:ro".to_owned()),
            VolumeMount::Bind("/srv/cache2:/cache2".to_owned()),
        ]
    );
    assert!(!options.privileged);
}

#[test]
fn the_runners_job_options_go_through_the_allow_list() {
    let cases = [
        (
            "--network host",
            "container.options of the runner's config: option `--network` is not allowed: \
             runnel manages the job's network",
        ),
        (
            "-v /etc:/host-etc",
            "container.options of the runner's config: volume `/etc:/host-etc` is not allowed",
        ),
        (
            "--privileged",
            "container.options of the runner's config: option `--privileged` is not allowed: \
             enable allow_privileged",
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
    // The workflow's own mistakes are not blamed on the runner.
    let error = job_options(&["--network host".to_owned()], &runner_config("", false));
    assert!(error.is_err_and(|e| e.to_string().starts_with("option `--network`")));
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
