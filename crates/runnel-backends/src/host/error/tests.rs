use super::*;

/// The job's error text of `error`, as the engine prints it (`{}`).
fn check(error: HostError, expect: &str) {
    assert_eq!(BackendError::from(error).to_string(), expect);
}

// The texts below are the ones the `BackendError::Failed` literals built.
#[test]
fn messages_read_as_before() {
    check(
        HostError::ContainerNeedsDocker {
            job_key: "build".to_owned(),
            image: "debian:12".to_owned(),
        },
        "prepare job build: job containers need the Docker backend (the job asks for image \
         `debian:12`)",
    );
    check(
        HostError::DockerMissing {
            job_key: "test".to_owned(),
            services: vec!["db".to_owned(), "cache".to_owned()],
            reason: "no socket".to_owned(),
        },
        "start the services of job `test` (db, cache): the job's steps run on this machine and \
         its services run as Docker containers, but Docker is not available: no socket. Start \
         dockerd (or set DOCKER_HOST), or remove `services:` from the job",
    );
    check(
        HostError::OutsideJob {
            access: "write",
            path: "/etc/passwd".to_owned(),
        },
        "write /etc/passwd: path is outside the job directory and the workspace",
    );
    check(HostError::EmptyCommand, "exec: empty command line");
    check(
        HostError::NotOnPath {
            program: "node".to_owned(),
            path: "/usr/bin".to_owned(),
        },
        "exec node: `node` was not found on PATH (/usr/bin)",
    );
}
