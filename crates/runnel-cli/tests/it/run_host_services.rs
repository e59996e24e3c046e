//! `services:` of a job whose steps run on this machine (`-P LABEL=-self-hosted`): the
//! services run as Docker containers publishing their `ports:` on 127.0.0.1, as on a GitHub
//! VM, and are gone when the run ends. Without Docker the job fails naming the job and the fix.

use std::path::Path;
use std::process::Command;

use crate::support::{run_expecting, runnel};

fn write_workflow(dir: &Path, text: &str) {
    let workflows = dir.join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), text).expect("write workflow");
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)], code: i32) -> String {
    let mut command = runnel();
    command
        .current_dir(dir)
        .arg("run")
        .args(args)
        .env("NO_COLOR", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = run_expecting(command, None, &[code]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const WORKFLOW: &str = r#"on: push
jobs:
  hostdb:
    runs-on: linux
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
      - run: echo "port=${{ job.services.postgres.ports['5432'] }}"
      - run: (echo > /dev/tcp/127.0.0.1/${{ job.services.postgres.ports['5432'] }}) && echo localhost-ok
      - run: PGPASSWORD=pw psql -h localhost -p ${{ job.services.postgres.ports['5432'] }} -U postgres -tAc 'select 40 + 2'
"#;

/// Containers and networks still carrying the job's label.
fn leftovers(job: &str) -> String {
    let label = format!("label=runnel.job={job}");
    let mut found = String::new();
    for args in [
        &["ps", "-aq", "--filter", label.as_str()][..],
        &["network", "ls", "-q", "--filter", label.as_str()][..],
        &["volume", "ls", "-q", "--filter", label.as_str()][..],
    ] {
        let output = Command::new("docker").args(args).output();
        match output {
            Ok(output) if output.status.success() => {
                found.push_str(&String::from_utf8_lossy(&output.stdout));
            }
            other => panic!("docker {args:?}: {other:?}"),
        }
    }
    found
}

#[test]
fn host_job_services_publish_their_ports_on_localhost() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping host services: needs Docker; set RUN_SLOW_TESTS=1");
        return;
    }
    let image = Command::new("docker")
        .args(["image", "inspect", "runnel-test/postgres"])
        .output();
    assert!(
        image.is_ok_and(|o| o.status.success()),
        "Docker or runnel-test/postgres is missing: run tests/docker/ensure-dockerd.sh and tests/images/build.sh postgres"
    );
    let psql = Command::new("psql").arg("--version").output();
    assert!(
        psql.is_ok_and(|o| o.status.success()),
        "psql is missing on this machine: apt-get install postgresql-client"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(dir.path(), WORKFLOW);
    let stdout = run_in(dir.path(), &["-P", "linux=-self-hosted"], &[], 0);
    let leftover = leftovers("hostdb");
    assert!(stdout.contains("on-the-host"), "{stdout}");
    assert!(stdout.contains("localhost-ok"), "{stdout}");
    assert!(stdout.contains("  42\n"), "{stdout}");
    let port = stdout
        .lines()
        .find_map(|line| line.strip_prefix("[hostdb]   port="))
        .and_then(|port| port.trim().parse::<u16>().ok());
    assert!(
        port.is_some(),
        "job.services.postgres.ports['5432'] is a port: {stdout}"
    );
    assert_eq!(leftover, "", "objects left behind");
}

#[test]
fn host_job_services_without_docker_say_how_to_fix_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(dir.path(), WORKFLOW);
    let socket = dir.path().join("no-docker.sock");
    let docker_host = format!("unix://{}", socket.display());
    let stdout = run_in(
        dir.path(),
        &["-P", "linux=-self-hosted"],
        &[("DOCKER_HOST", &docker_host)],
        1,
    );
    for expected in [
        "job `hostdb`",
        "postgres",
        "Docker is not available",
        "Start dockerd",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("on-the-host"), "no step ran: {stdout}");
}
