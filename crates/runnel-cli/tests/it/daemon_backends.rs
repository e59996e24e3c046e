//! `runnel daemon` uses the backend features `runnel run` has, against the real Gitea:
//! `services:` of a job on a `host` label run as Docker containers published on 127.0.0.1;
//! a `docker://` label's job trusts `container.ca_bundle`, joins the existing network named by
//! `container.network`, and keeps its job directory under the runner's directory, not /tmp.
//! Nothing is left behind: containers and networks of the daemon, job directories.

use std::path::Path;
use std::process::Command;

use crate::daemon_gitea::{completed_jobs, gitea, register, register_with, unique, workflow};
use crate::run_ca_bundle::https_server;

fn docker_images_required(test: &str, images: &[&str]) {
    let found = Command::new("docker")
        .args(["image", "inspect"])
        .args(images)
        .output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{test}: Docker or the test images {images:?} are missing: run \
         tests/docker/ensure-dockerd.sh and tests/images/build.sh"
    );
}

fn docker(args: &[&str]) -> String {
    match Command::new("docker").args(args).output() {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        other => panic!("docker {args:?}: {other:?}"),
    }
}

/// Containers, networks and volumes of the daemon process `pid`.
fn leftovers_of(pid: u32) -> String {
    let label = format!("label=runnel.pid={pid}");
    ["ps -aq", "network ls -q", "volume ls -q"]
        .iter()
        .map(|command| {
            let mut args: Vec<&str> = command.split(' ').collect();
            args.extend(["--filter", &label]);
            docker(&args)
        })
        .collect::<Vec<_>>()
        .join("")
}

/// A network and a container on it, removed on drop whatever the test did.
struct Network {
    name: String,
    peer: String,
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.peer])
            .output();
        let _ = Command::new("docker")
            .args(["network", "rm", &self.name])
            .output();
    }
}

fn job_lines(gitea: &crate::daemon_gitea::Gitea, job: &serde_json::Value) -> Vec<String> {
    gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_host_label_jobs_services_run_in_docker() {
    let test = "a_host_label_jobs_services_run_in_docker";
    let Some(gitea) = gitea(test) else {
        return;
    };
    docker_images_required(test, &["runnel-test/postgres"]);
    let psql = Command::new("psql").arg("--version").output();
    assert!(
        psql.is_ok_and(|o| o.status.success()),
        "{test}: psql is missing on this machine: apt-get install postgresql-client"
    );
    let runner = register(gitea, "hostsvc");
    let label = &runner.label;
    let jobs = format!(
        r#"  hostdb:
    runs-on: {label}
    services:
      postgres:
        image: runnel-test/postgres
        env:
          POSTGRES_PASSWORD: pw
        ports:
          - 5432
        options: >-
          --health-cmd pg_isready
          --health-interval 1s
          --health-timeout 5s
          --health-retries 60
    steps:
      - run: test "$RUNNER_TEMP" != /__w/_temp && echo on-the-host
      - run: (echo > /dev/tcp/127.0.0.1/${{{{ job.services.postgres.ports['5432'] }}}}) && echo localhost-ok
      - run: PGPASSWORD=pw psql -h localhost -p ${{{{ job.services.postgres.ports['5432'] }}}} -U postgres -tAc 'select 40 + 2'
"#
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon(&["--once"]);
    let pid = daemon.id();
    let status = runner.wait(daemon);
    let leftover = leftovers_of(pid);
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    let lines = job_lines(gitea, &job);
    assert_eq!(
        job["conclusion"],
        "success",
        "{job}\n{lines:#?}\n{}",
        runner.daemon_log()
    );
    for expected in ["on-the-host", "localhost-ok", "42"] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}: {lines:#?}"
        );
    }
    assert_eq!(leftover, "", "objects left behind");
}

#[test]
fn a_docker_label_job_trusts_the_ca_bundle_and_joins_the_configured_network() {
    let test = "a_docker_label_job_trusts_the_ca_bundle_and_joins_the_configured_network";
    let Some(gitea) = gitea(test) else {
        return;
    };
    docker_images_required(
        test,
        &["runnel-test/debian:bookworm", "runnel-test/busybox"],
    );
    let certs = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (_server, port) = https_server(certs.path());
    let network = Network {
        name: unique("runnel-it-net"),
        peer: unique("runnel-it-peer"),
    };
    docker(&["network", "create", &network.name]);
    docker(&[
        "run",
        "-d",
        "--name",
        &network.peer,
        "--network",
        &network.name,
        "runnel-test/busybox",
        "sleep",
        "600",
    ]);
    // This machine as the job container sees it on that network.
    let gateway = docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        &network.name,
    ]);
    assert!(!gateway.is_empty(), "no gateway for {}", network.name);

    let runner = register_with(
        gitea,
        "dockca",
        |l| format!("{l}:docker://runnel-test/debian:bookworm"),
        &[],
    );
    let bundle = certs.path().join("ca.pem");
    runner.write_config(&format!(
        "container:\n  network: {}\n  ca_bundle: {}\n",
        network.name,
        bundle.display()
    ));
    let label = &runner.label;
    let peer = &network.peer;
    let url = format!("https://runnel-host:{port}/");
    let resolve = format!("runnel-host:{port}:{gateway}");
    let jobs = format!(
        r#"  tls:
    runs-on: {label}
    steps:
      - run: test -f /.dockerenv && echo in-a-container
      - run: echo "network=${{{{ job.container.network }}}}"
      - run: getent hosts {peer} >/dev/null && echo peer-resolved
      - run: curl -sS -o /dev/null --resolve {resolve} {url} && echo tls-ok
"#
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon(&["-c", "config.yaml", "--once"]);
    let pid = daemon.id();
    let status = runner.wait(daemon);
    let leftover = leftovers_of(pid);
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    let lines = job_lines(gitea, &job);
    assert_eq!(
        job["conclusion"],
        "success",
        "{job}\n{lines:#?}\n{}",
        runner.daemon_log()
    );
    let network_line = format!("network={}", network.name);
    for expected in ["in-a-container", &network_line, "peer-resolved", "tls-ok"] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}: {lines:#?}"
        );
    }
    assert_eq!(leftover, "", "objects left behind");
    // The job directory lived under the runner's directory, and is gone.
    let root = runner.dir.path().join("docker-jobs");
    assert!(root.is_dir(), "{} was not used", root.display());
    assert_eq!(entries(&root), Vec::<String>::new(), "job directories left");
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_host_label_job_with_services_fails_clearly_without_docker() {
    let test = "a_host_label_job_with_services_fails_clearly_without_docker";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let runner = register(gitea, "hostnodock");
    let socket = runner.dir.path().join("no-docker.sock");
    runner.write_config(&format!(
        "container:\n  docker_host: unix://{}\n",
        socket.display()
    ));
    let label = &runner.label;
    let jobs = format!(
        "  hostdb:\n    runs-on: {label}\n    services:\n      db:\n        image: runnel-test/postgres\n    steps:\n      - run: echo step-ran\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon(&["-c", "config.yaml", "--once"]);
    let status = runner.wait(daemon);
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    let lines = job_lines(gitea, &job).join("\n");
    assert_eq!(job["conclusion"], "failure", "{job}\n{lines}");
    for expected in [
        "start the services of job",
        "(db)",
        "Docker is not available",
        "Start dockerd",
    ] {
        assert!(lines.contains(expected), "{expected:?} in:\n{lines}");
    }
    assert!(!lines.contains("step-ran"), "no step ran:\n{lines}");
}
