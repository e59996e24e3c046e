//! The table of `docker run` options: each name, and how its value reaches the container
//! create body ([`Kind`]); the options refused by name, with the reason.

/// How one option's value becomes part of the body.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Str(&'static [&'static str]),
    Int(&'static [&'static str]),
    Size(&'static [&'static str]),
    Nanos(&'static [&'static str]),
    Flag(&'static [&'static str]),
    List(&'static [&'static str]),
    Map(&'static [&'static str]),
    Cpus,
    MemorySwap,
    Env,
    EnvFile,
    Label,
    LabelFile,
    AddHost,
    Expose,
    Ulimit,
    Device,
    Gpus,
    WeightDevice,
    ThrottleBytes(&'static str),
    ThrottleIops(&'static str),
    Tmpfs,
    Restart,
    HealthCmd,
    NoHealthcheck,
    Volume,
    Mount,
    Network,
    NetworkAlias,
    Privileged,
}

/// Every `docker run` option that maps onto the create call, by every name it has.
pub(super) const OPTIONS: &[(&[&str], Kind)] = &[
    (&["-e", "--env"], Kind::Env),
    (&["--env-file"], Kind::EnvFile),
    (&["-l", "--label"], Kind::Label),
    (&["--label-file"], Kind::LabelFile),
    (&["-u", "--user"], Kind::Str(&["User"])),
    (&["-w", "--workdir"], Kind::Str(&["WorkingDir"])),
    (&["-h", "--hostname"], Kind::Str(&["Hostname"])),
    (&["--domainname"], Kind::Str(&["Domainname"])),
    (&["--stop-signal"], Kind::Str(&["StopSignal"])),
    (&["--stop-timeout"], Kind::Int(&["StopTimeout"])),
    (&["--expose"], Kind::Expose),
    (&["--health-cmd"], Kind::HealthCmd),
    (
        &["--health-interval"],
        Kind::Nanos(&["Healthcheck", "Interval"]),
    ),
    (
        &["--health-timeout"],
        Kind::Nanos(&["Healthcheck", "Timeout"]),
    ),
    (
        &["--health-start-period"],
        Kind::Nanos(&["Healthcheck", "StartPeriod"]),
    ),
    (
        &["--health-start-interval"],
        Kind::Nanos(&["Healthcheck", "StartInterval"]),
    ),
    (
        &["--health-retries"],
        Kind::Int(&["Healthcheck", "Retries"]),
    ),
    (&["--no-healthcheck"], Kind::NoHealthcheck),
    (&["--add-host"], Kind::AddHost),
    (&["--dns"], Kind::List(&["HostConfig", "Dns"])),
    (
        &["--dns-option", "--dns-opt"],
        Kind::List(&["HostConfig", "DnsOptions"]),
    ),
    (&["--dns-search"], Kind::List(&["HostConfig", "DnsSearch"])),
    (&["--link"], Kind::List(&["HostConfig", "Links"])),
    (&["--cap-add"], Kind::List(&["HostConfig", "CapAdd"])),
    (&["--cap-drop"], Kind::List(&["HostConfig", "CapDrop"])),
    (
        &["--security-opt"],
        Kind::List(&["HostConfig", "SecurityOpt"]),
    ),
    (&["--group-add"], Kind::List(&["HostConfig", "GroupAdd"])),
    (
        &["--device-cgroup-rule"],
        Kind::List(&["HostConfig", "DeviceCgroupRules"]),
    ),
    (
        &["--volumes-from"],
        Kind::List(&["HostConfig", "VolumesFrom"]),
    ),
    (
        &["--volume-driver"],
        Kind::Str(&["HostConfig", "VolumeDriver"]),
    ),
    (&["--device"], Kind::Device),
    (&["--gpus"], Kind::Gpus),
    (&["--ipc"], Kind::Str(&["HostConfig", "IpcMode"])),
    (&["--pid"], Kind::Str(&["HostConfig", "PidMode"])),
    (&["--uts"], Kind::Str(&["HostConfig", "UTSMode"])),
    (&["--userns"], Kind::Str(&["HostConfig", "UsernsMode"])),
    (&["--cgroupns"], Kind::Str(&["HostConfig", "CgroupnsMode"])),
    (
        &["--cgroup-parent"],
        Kind::Str(&["HostConfig", "CgroupParent"]),
    ),
    (&["--runtime"], Kind::Str(&["HostConfig", "Runtime"])),
    (
        &["--log-driver"],
        Kind::Str(&["HostConfig", "LogConfig", "Type"]),
    ),
    (
        &["--log-opt"],
        Kind::Map(&["HostConfig", "LogConfig", "Config"]),
    ),
    (&["--sysctl"], Kind::Map(&["HostConfig", "Sysctls"])),
    (&["--storage-opt"], Kind::Map(&["HostConfig", "StorageOpt"])),
    (&["--annotation"], Kind::Map(&["HostConfig", "Annotations"])),
    (&["--tmpfs"], Kind::Tmpfs),
    (&["--ulimit"], Kind::Ulimit),
    (&["--shm-size"], Kind::Size(&["HostConfig", "ShmSize"])),
    (&["-m", "--memory"], Kind::Size(&["HostConfig", "Memory"])),
    (
        &["--memory-reservation"],
        Kind::Size(&["HostConfig", "MemoryReservation"]),
    ),
    (&["--memory-swap"], Kind::MemorySwap),
    (
        &["--memory-swappiness"],
        Kind::Int(&["HostConfig", "MemorySwappiness"]),
    ),
    (
        &["--oom-kill-disable"],
        Kind::Flag(&["HostConfig", "OomKillDisable"]),
    ),
    (
        &["--oom-score-adj"],
        Kind::Int(&["HostConfig", "OomScoreAdj"]),
    ),
    (&["--cpus"], Kind::Cpus),
    (
        &["-c", "--cpu-shares"],
        Kind::Int(&["HostConfig", "CpuShares"]),
    ),
    (&["--cpu-period"], Kind::Int(&["HostConfig", "CpuPeriod"])),
    (&["--cpu-quota"], Kind::Int(&["HostConfig", "CpuQuota"])),
    (
        &["--cpu-rt-period"],
        Kind::Int(&["HostConfig", "CpuRealtimePeriod"]),
    ),
    (
        &["--cpu-rt-runtime"],
        Kind::Int(&["HostConfig", "CpuRealtimeRuntime"]),
    ),
    (&["--cpuset-cpus"], Kind::Str(&["HostConfig", "CpusetCpus"])),
    (&["--cpuset-mems"], Kind::Str(&["HostConfig", "CpusetMems"])),
    (
        &["--blkio-weight"],
        Kind::Int(&["HostConfig", "BlkioWeight"]),
    ),
    (&["--blkio-weight-device"], Kind::WeightDevice),
    (
        &["--device-read-bps"],
        Kind::ThrottleBytes("BlkioDeviceReadBps"),
    ),
    (
        &["--device-write-bps"],
        Kind::ThrottleBytes("BlkioDeviceWriteBps"),
    ),
    (
        &["--device-read-iops"],
        Kind::ThrottleIops("BlkioDeviceReadIOps"),
    ),
    (
        &["--device-write-iops"],
        Kind::ThrottleIops("BlkioDeviceWriteIOps"),
    ),
    (&["--pids-limit"], Kind::Int(&["HostConfig", "PidsLimit"])),
    (&["--restart"], Kind::Restart),
    (&["--init"], Kind::Flag(&["HostConfig", "Init"])),
    (
        &["--read-only"],
        Kind::Flag(&["HostConfig", "ReadonlyRootfs"]),
    ),
    (
        &["-P", "--publish-all"],
        Kind::Flag(&["HostConfig", "PublishAllPorts"]),
    ),
    (&["-v", "--volume"], Kind::Volume),
    (&["--mount"], Kind::Mount),
    (&["--network", "--net"], Kind::Network),
    (&["--network-alias", "--net-alias"], Kind::NetworkAlias),
    (&["--privileged"], Kind::Privileged),
];

/// `docker run` options that cannot apply to a runnel job container, with the reason.
pub(super) const REFUSED: &[(&[&str], &str)] = &[
    (
        &[
            "--name",
            "--rm",
            "-d",
            "--detach",
            "--cidfile",
            "-a",
            "--attach",
        ],
        "runnel creates, names and removes job containers itself",
    ),
    (
        &[
            "-i",
            "--interactive",
            "-t",
            "--tty",
            "-it",
            "-ti",
            "--sig-proxy",
            "--detach-keys",
        ],
        "steps run without a terminal or stdin (see runner.allocate_pty in docs/migrating.md)",
    ),
    (
        &["--entrypoint"],
        "the job container's entrypoint keeps it running between steps",
    ),
    (
        &["-p", "--publish"],
        "a job container publishes its services' ports (`ports:`); a fixed host port would collide between jobs running at once",
    ),
    (
        &["--ip", "--ip6", "--mac-address", "--link-local-ip"],
        "a fixed address would collide between jobs running at once",
    ),
    (
        &["--pull"],
        "use container.force_pull (images are pulled when missing otherwise)",
    ),
    (
        &["--platform"],
        "containers are created for one platform per runner: the engine's own, or `runnel run --container-architecture`",
    ),
    (
        &["--kernel-memory"],
        "Docker removed it (the kernel ignores it since cgroup v2)",
    ),
    (
        &[
            "--cpu-count",
            "--cpu-percent",
            "--io-maxbandwidth",
            "--io-maxiops",
            "--isolation",
        ],
        "it applies to Windows containers only",
    ),
    (
        &[
            "--disable-content-trust",
            "-q",
            "--quiet",
            "--use-api-socket",
        ],
        "it changes the docker command line's behaviour, not the container",
    ),
];
