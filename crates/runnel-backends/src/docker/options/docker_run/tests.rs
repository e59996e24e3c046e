use serde_json::json;

use super::*;

/// The create body `options` make of an empty one, as JSON (fields left `None` dropped).
fn applied(options: &str) -> Result<Value, String> {
    let parsed = parse(&[options.to_owned()]).map_err(|error| error.to_string())?;
    let mut body = ContainerCreateBody::default();
    apply(&mut body, &parsed, Some("runnel-jobs")).map_err(|error| error.to_string())?;
    serde_json::to_value(&body).map_err(|error| error.to_string())
}

/// Each option the Gitea runner's parser takes lands where `docker run` puts it.
#[test]
fn docker_run_options_land_in_the_create_body() {
    let cases: &[(&str, &str, Value)] = &[
        (
            "--add-host runnel-test:10.9.8.7",
            "/HostConfig/ExtraHosts",
            json!(["runnel-test:10.9.8.7"]),
        ),
        (
            "--add-host=a=10.0.0.1",
            "/HostConfig/ExtraHosts",
            json!(["a:10.0.0.1"]),
        ),
        ("--shm-size 256m", "/HostConfig/ShmSize", json!(268435456)),
        (
            "--dns 10.0.0.53 --dns 10.0.0.54",
            "/HostConfig/Dns",
            json!(["10.0.0.53", "10.0.0.54"]),
        ),
        (
            "--dns-option ndots:2",
            "/HostConfig/DnsOptions",
            json!(["ndots:2"]),
        ),
        (
            "--dns-search corp.lan",
            "/HostConfig/DnsSearch",
            json!(["corp.lan"]),
        ),
        (
            "--ulimit nofile=1024:2048",
            "/HostConfig/Ulimits",
            json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}]),
        ),
        ("--runtime nvidia", "/HostConfig/Runtime", json!("nvidia")),
        (
            "--gpus all",
            "/HostConfig/DeviceRequests",
            json!([{"Count": -1, "Capabilities": [["gpu"]]}]),
        ),
        ("--gpus 2", "/HostConfig/DeviceRequests/0/Count", json!(2)),
        (
            "--gpus '\"device=0,1\"'",
            "/HostConfig/DeviceRequests/0/DeviceIDs",
            json!(["0", "1"]),
        ),
        (
            "--gpus count=1,capabilities=utility",
            "/HostConfig/DeviceRequests/0/Capabilities",
            json!([["utility"]]),
        ),
        ("--cpus 1.5", "/HostConfig/NanoCpus", json!(1_500_000_000)),
        ("--memory-swap -1", "/HostConfig/MemorySwap", json!(-1)),
        (
            "--sysctl net.ipv4.ip_forward=1",
            "/HostConfig/Sysctls",
            json!({"net.ipv4.ip_forward": "1"}),
        ),
        (
            "--tmpfs /run:size=64m",
            "/HostConfig/Tmpfs",
            json!({"/run": "size=64m"}),
        ),
        ("--group-add 1234", "/HostConfig/GroupAdd", json!(["1234"])),
        (
            "--device /dev/fuse",
            "/HostConfig/Devices/0/PathInContainer",
            json!("/dev/fuse"),
        ),
        (
            "--security-opt seccomp=unconfined",
            "/HostConfig/SecurityOpt",
            json!(["seccomp=unconfined"]),
        ),
        (
            "--cap-add SYS_PTRACE",
            "/HostConfig/CapAdd",
            json!(["SYS_PTRACE"]),
        ),
        ("--pids-limit 100", "/HostConfig/PidsLimit", json!(100)),
        (
            "--restart on-failure:3",
            "/HostConfig/RestartPolicy",
            json!({"Name": "on-failure", "MaximumRetryCount": 3}),
        ),
        (
            "--device-read-bps /dev/sda:1mb",
            "/HostConfig/BlkioDeviceReadBps",
            json!([{"Path": "/dev/sda", "Rate": 1048576}]),
        ),
        (
            "--log-driver json-file --log-opt max-size=10m",
            "/HostConfig/LogConfig",
            json!({"Type": "json-file", "Config": {"max-size": "10m"}}),
        ),
        ("--init=false", "/HostConfig/Init", json!(false)),
        ("--cgroupns host", "/HostConfig/CgroupnsMode", json!("host")),
        ("-e A=1 --env B", "/Env", json!(["A=1"])),
        ("-l team=ci", "/Labels", json!({"team": "ci"})),
        ("--expose 8080", "/ExposedPorts", json!({"8080/tcp": {}})),
        ("-u 1000:1000 -w /src -h box", "/User", json!("1000:1000")),
        (
            "--health-cmd true --health-interval 2s",
            "/Healthcheck",
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000}),
        ),
        ("--no-healthcheck", "/Healthcheck/Test", json!(["NONE"])),
        (
            "--mount type=tmpfs,target=/scratch,tmpfs-size=1m",
            "/HostConfig/Mounts/0",
            json!({"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1048576}}),
        ),
        (
            "--network-alias ci-box",
            "/NetworkingConfig/EndpointsConfig/runnel-jobs/Aliases",
            json!(["ci-box"]),
        ),
    ];
    for (options, pointer, expected) in cases {
        let body = applied(options).unwrap_or_else(|error| panic!("{options}: {error}"));
        assert_eq!(body.pointer(pointer), Some(expected), "{options}: {body}");
    }
}

#[test]
fn options_that_cannot_apply_to_a_job_container_are_refused_by_name() {
    let cases = [
        (
            "--name x",
            "option `--name` is not allowed: runnel creates, names and removes job containers itself",
        ),
        (
            "-it",
            "option `-it` is not allowed: steps run without a terminal or stdin (see runner.allocate_pty in docs/migrating.md)",
        ),
        (
            "--entrypoint sh",
            "option `--entrypoint` is not allowed: the job container's entrypoint keeps it running between steps",
        ),
        (
            "-p 8080:80",
            "option `-p` is not allowed: a job container publishes its services' ports (`ports:`); a fixed host port would collide between jobs running at once",
        ),
        (
            "--platform linux/arm64",
            "option `--platform` is not allowed: containers are created for one platform per runner: the engine's own, or `runnel run --container-architecture`",
        ),
        (
            "--frobnicate",
            "option `--frobnicate` is not allowed: it is no `docker run` option runnel knows",
        ),
        ("--dns", "option `--dns` needs a value"),
        (
            "--restart sometimes",
            "option `--restart`: `sometimes` is not no, always, on-failure[:N] or unless-stopped",
        ),
        (
            "--cgroupns sideways",
            "the options do not make a container Docker accepts: unknown variant `sideways`, expected one of ``, `private`, `host`",
        ),
    ];
    for (options, expected) in cases {
        assert_eq!(applied(options), Err(expected.to_owned()), "{options}");
    }
}

/// Later options win single values and add to lists, as `docker run` with repeated flags.
#[test]
fn appended_options_win_single_values_and_add_to_lists() {
    let parse_one = |text: &str| parse(&[text.to_owned()]).unwrap_or_else(|e| panic!("{e}"));
    let mut options = parse_one("--shm-size 64m --dns 1.1.1.1 -e A=workflow");
    options.append(parse_one("--shm-size 256m --dns 10.0.0.53 -e A=runner"));
    let mut body = ContainerCreateBody::default();
    assert_eq!(apply(&mut body, &options, None), Ok(()));
    let body = serde_json::to_value(&body).unwrap_or_default();
    assert_eq!(body.pointer("/HostConfig/ShmSize"), Some(&json!(268435456)));
    assert_eq!(
        body.pointer("/HostConfig/Dns"),
        Some(&json!(["1.1.1.1", "10.0.0.53"]))
    );
    assert_eq!(
        body.pointer("/Env"),
        Some(&json!(["A=workflow", "A=runner"]))
    );
}

#[test]
fn names_and_arity() {
    assert_eq!(long_name("-e"), Some("--env"));
    assert_eq!(long_name("--gpus"), Some("--gpus"));
    assert_eq!(long_name("--nope"), None);
    assert_eq!(takes_value("--init"), Some(false));
    assert_eq!(takes_value("--add-host"), Some(true));
    assert_eq!(option_name("--dns=1.1.1.1"), "--dns");
    assert_eq!(option_name("-e"), "-e");
}
