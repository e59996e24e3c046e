//! `runnel run --ca-bundle FILE`: a job container trusts a CA it would not otherwise. An HTTPS
//! server on this machine with a certificate from a throw-away CA (made with `openssl`) is
//! refused by `curl` in the job container without the bundle and accepted with it, in the job
//! container and in a `docker://` step container.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::{run_expecting, runnel};

pub(crate) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").current_dir(dir).args(args).output();
    match output {
        Ok(output) if output.status.success() => {}
        other => panic!("openssl {args:?}: {other:?}"),
    }
}

/// A CA, a server certificate for `runnel-host` signed by it, and `openssl s_server` on a
/// free port of every address (the job container reaches it through the bridge's gateway).
pub(crate) fn https_server(dir: &Path) -> (Server, u16) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=runnel test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=runnel-host",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:runnel-host\n").expect("write");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    let child = Command::new("openssl")
        .current_dir(dir)
        .args([
            "s_server",
            "-quiet",
            "-www",
            "-cert",
            "server.pem",
            "-key",
            "server.key",
        ])
        .args(["-accept", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    let server = Server(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (server, port);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("openssl s_server did not listen on {port}");
}

#[test]
fn a_configured_ca_bundle_is_trusted_in_job_containers() {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping the CA bundle test: needs Docker; set RUN_SLOW_TESTS=1");
        return;
    }
    let image = Command::new("docker")
        .args(["image", "inspect", "runnel-test/debian:bookworm"])
        .output();
    assert!(
        image.is_ok_and(|o| o.status.success()),
        "Docker or runnel-test/debian:bookworm is missing: run tests/docker/ensure-dockerd.sh and tests/images/build.sh debian"
    );
    let certs = tempfile::tempdir().expect("tempdir");
    let (_server, port) = https_server(certs.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(
        workflows.join("ci.yml"),
        format!(
            r#"on: push
jobs:
  tls:
    runs-on: linux
    container:
      image: runnel-test/debian:bookworm
      options: --add-host=runnel-host:host-gateway
    steps:
      - run: curl -sS -o /dev/null https://runnel-host:{port}/ && echo tls-ok
      - uses: docker://runnel-test/debian:bookworm
        with:
          entrypoint: bash
          args: -c "curl -sS -o /dev/null https://runnel-host:{port}/ && echo action-tls-ok"
"#
        ),
    )
    .expect("write workflow");
    let run = |extra: &[&str], code: i32| {
        let mut command = runnel();
        command
            .current_dir(dir.path())
            .args(["run", "-P", "linux=-self-hosted"])
            .args(extra)
            .env("NO_COLOR", "1");
        let output = run_expecting(command, None, &[code]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let refused = run(&[], 1);
    assert!(!refused.contains("  tls-ok\n"), "{refused}");
    assert!(refused.contains("certificate"), "curl says why: {refused}");
    let bundle = certs.path().join("ca.pem");
    let bundle = bundle.to_str().expect("utf-8 path");
    let trusted = run(&["--ca-bundle", bundle], 0);
    assert!(trusted.contains("  tls-ok\n"), "{trusted}");
    assert!(
        trusted.contains("  action-tls-ok\n"),
        "step containers too: {trusted}"
    );
}
