//! `runnel doctor` through the real binary: a table of broken setups, each named with its fix
//! and exit 1, (slow) a setup registered with the real Gitea that passes, and (slow) the cache
//! reached, not reached and not checkable from a job container.

use std::path::Path;

use crate::daemon_gitea::{gitea, unique};
use crate::packaging_deb::require_docker_and_debian;
use crate::packaging_gitea::{register, slow};
use crate::support::runnel;

/// Runs `runnel doctor -c config.yaml` in `dir`; returns the exit code and stdout.
fn doctor(dir: &Path) -> (i32, String) {
    let output = runnel()
        .current_dir(dir)
        .args(["doctor", "-c", "config.yaml"])
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("runnel doctor: {e}"));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

struct Case {
    name: &'static str,
    config: &'static str,
    /// `.runner` contents; `{closed}` becomes a URL where nothing listens.
    runner_file: Option<&'static str>,
    /// Lines (substrings) the output must contain, in order.
    expect: &'static [&'static str],
}

#[test]
fn broken_setups_are_named_with_their_fix() {
    let cases = [
        Case {
            name: "config with a type error",
            config: "runner:\n  capacity: lots\n",
            runner_file: None,
            expect: &[
                "FAIL  config        config file config.yaml is not valid:",
                "config.yaml:2:13",
                "fix: correct the file at the positions shown",
            ],
        },
        Case {
            name: "unknown key warns, missing registration fails",
            config: "runner:\n  capasity: 2\n",
            runner_file: None,
            expect: &[
                "ok    config        config.yaml parses",
                "WARN  config        config.yaml:2:3",
                "FAIL  registration  .runner is missing: the runner is not registered",
                "fix: runnel register -c config.yaml --instance URL --token REGISTRATION_TOKEN",
                "skip  gitea         not checked: no registration to check it with",
            ],
        },
        Case {
            name: "unreadable registration",
            config: "log:\n  level: info\n",
            runner_file: Some("this is not json"),
            expect: &[
                "FAIL  registration",
                "fix: run doctor as the user the daemon runs as",
            ],
        },
        Case {
            name: "unreachable server",
            config: "log:\n  level: info\n",
            runner_file: Some(
                r#"{"id": 7, "uuid": "00000000-0000-0000-0000-000000000007", "name": "r", "token": "t", "address": "{closed}", "labels": ["linux:host"]}"#,
            ),
            expect: &[
                "ok    registration  .runner holds runner \"r\" (id 7)",
                "ok    labels        linux:host",
                "FAIL  gitea         {closed} does not answer",
                "fix: check that Gitea runs and that this machine reaches it",
                "skip  docker        not needed: no docker:// label",
                "ok    disk          work dir",
            ],
        },
        Case {
            name: "docker label with an engine that does not answer",
            config: "container:\n  docker_host: unix:///nonexistent/docker.sock\nrunner:\n  labels: ['ubuntu:docker://runnel-test/debian:bookworm']\n",
            runner_file: Some(
                r#"{"id": 7, "uuid": "00000000-0000-0000-0000-000000000007", "name": "r", "token": "t", "address": "{closed}", "labels": ["linux:host"]}"#,
            ),
            expect: &[
                "ok    labels        ubuntu:docker://runnel-test/debian:bookworm",
                "FAIL  docker",
                "fix: start the Docker engine; make sure this user may use unix:///nonexistent/docker.sock",
            ],
        },
    ];
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| format!("http://{a}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    for case in cases {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("config.yaml"), case.config)
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(text) = case.runner_file {
            std::fs::write(
                dir.path().join(".runner"),
                text.replace("{closed}", &closed),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let (code, out) = doctor(dir.path());
        let mut rest = out.as_str();
        let mut missing = None;
        for line in case.expect {
            let line = line.replace("{closed}", &closed);
            match rest.find(&line) {
                Some(at) => rest = &rest[at + line.len()..],
                None => {
                    missing = Some(line);
                    break;
                }
            }
        }
        if code != 1 || missing.is_some() {
            failures.push(format!(
                "{}: exit {code}, missing {missing:?}; output:\n{out}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_registered_runner_passes_against_gitea() {
    let Some(gitea) = gitea("a_registered_runner_passes_against_gitea") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let label = unique("doctor");
    let runner_id = register(gitea, dir.path(), &label);
    std::fs::write(dir.path().join("config.yaml"), "log:\n  level: info\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, out) = doctor(dir.path());
    assert_eq!(code, 0, "{out}");
    let accepted = format!("accepts runner \"{label}\" (id {runner_id})");
    assert!(out.contains(&accepted), "{out}");
    assert!(out.contains("ok    host tools    git"), "{out}");
    assert!(out.contains("\n0 failed, "), "{out}");

    // The runner deleted in Gitea: its token is refused, and doctor says to register again.
    gitea
        .api(
            "DELETE",
            &format!("/admin/actions/runners/{runner_id}"),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, out) = doctor(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no longer accepts this runner")
            && out.contains("run `runnel register` again"),
        "{out}"
    );
}

#[test]
fn cache_reach_is_checked_from_a_job_container() {
    let test = "cache_reach_is_checked_from_a_job_container";
    if !slow(test, "Docker and the Debian test image") {
        return;
    }
    require_docker_and_debian(test);
    let label = |image: &str| format!("runner:\n  labels: ['ubuntu:docker://{image}']\n");
    let cases = [
        (
            label("runnel-test/debian:bookworm"),
            "ok    cache reach   a container of runnel-test/debian:bookworm on network ",
        ),
        (
            // TEST-NET-1: nothing answers there.
            format!(
                "{}cache:\n  host: 192.0.2.1\n",
                label("runnel-test/debian:bookworm")
            ),
            "FAIL  cache reach   a container of runnel-test/debian:bookworm on network ",
        ),
        (
            label("runnel-test/absent:none"),
            "skip  cache reach   not checked: runnel-test/absent:none is not present",
        ),
    ];
    for (config, expected) in cases {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("config.yaml"), &config).unwrap_or_else(|e| panic!("{e}"));
        let (_, out) = doctor(dir.path());
        assert!(out.contains(expected), "{config}\n{out}");
    }
    let leftovers = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", "name=runnel-doctor-"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(leftovers.stdout.is_empty(), "a probe container was left");
}
