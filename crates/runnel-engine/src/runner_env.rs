//! The runner's own environment variables — set for the runner by its service unit, its
//! container image or its operator — that jobs must not inherit: the registration token, the
//! cache store's S3 keys, systemd's sockets. Host backends of a registered runner withhold
//! them; the daemon masks the credentials among them in every job's log.
//!
//! Must not: change the environment.

/// Variables the runner itself reads (set by its service unit, container image or
/// operator) that are not for jobs, besides every `RUNNEL_*` and `GITEA_RUNNER_*` one.
pub const RUNNER_ONLY_VARIABLES: &[&str] = &[
    // The Gitea runner's container image (runnel's image reads the same names).
    "GITEA_INSTANCE_URL",
    "CONFIG_FILE",
    "RUNNER_STATE_FILE",
    // S3 credentials of the cache store.
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    // systemd's hand-over to the service: a job must not notify or use its sockets.
    "NOTIFY_SOCKET",
    "WATCHDOG_PID",
    "WATCHDOG_USEC",
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "CREDENTIALS_DIRECTORY",
];

/// Of those, the ones whose values are credentials: masked in every job's log even when an
/// operator passes one on.
pub const RUNNER_CREDENTIALS: &[&str] = &[
    "GITEA_RUNNER_REGISTRATION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
];

/// Whether `name` is one of the runner's own variables, withheld from host jobs of a
/// registered runner.
pub fn is_runner_only(name: &str) -> bool {
    name.starts_with("RUNNEL_")
        || name.starts_with("GITEA_RUNNER_")
        || RUNNER_ONLY_VARIABLES.contains(&name)
}

/// The values of this process's credential variables ([`RUNNER_CREDENTIALS`]), for masking.
pub fn credential_values() -> Vec<String> {
    RUNNER_CREDENTIALS
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .filter(|value| !value.is_empty())
        .collect()
}
