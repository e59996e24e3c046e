//! The host backend on its own: exact environment, path checks, copy mode, teardown.

use std::collections::BTreeMap;

use runnel_backends::host::{HostBackend, HostConfig, WorkspaceMode};
use runnel_engine::backend::{Backend, ExecExit, ExecOutput, ExecRequest, JobSpec};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn spec(source: Option<&std::path::Path>) -> JobSpec {
    JobSpec {
        job_key: "unit/test job".to_owned(),
        image: None,
        services: Vec::new(),
        workspace_source: source.map(std::path::Path::to_path_buf),
        labels: Vec::new(),
    }
}

#[tokio::test]
async fn exec_gets_exactly_the_given_environment() {
    let root = tempfile::tempdir().expect("root");
    let backend = HostBackend::new(HostConfig {
        root: Some(root.path().to_path_buf()),
        ..HostConfig::default()
    });
    let cancel = CancellationToken::new();
    let env = backend
        .prepare(&spec(None), &cancel)
        .await
        .expect("prepare");
    let mut vars = BTreeMap::new();
    vars.insert("PATH".to_owned(), "/usr/bin:/bin".to_owned());
    vars.insert("ONLY_THIS".to_owned(), "yes".to_owned());
    let request = ExecRequest {
        argv: vec!["env".to_owned()],
        env: vars,
        workdir: env.paths().temp.clone(),
        timeout: None,
    };
    let (sender, mut receiver) = mpsc::channel(16);
    let exit = env.exec(&request, sender, &cancel).await.expect("exec");
    assert_eq!(exit, ExecExit::Code(0));
    let mut out = Vec::new();
    while let Ok(chunk) = receiver.try_recv() {
        if let ExecOutput::Stdout(bytes) = chunk {
            out.extend(bytes);
        }
    }
    let mut lines: Vec<String> = String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    assert_eq!(lines, ["ONLY_THIS=yes", "PATH=/usr/bin:/bin"]);
    env.teardown().await.expect("teardown");
    env.teardown().await.expect("teardown twice");
}

#[tokio::test]
async fn files_stay_inside_the_job() {
    let root = tempfile::tempdir().expect("root");
    let backend = HostBackend::new(HostConfig {
        root: Some(root.path().to_path_buf()),
        ..HostConfig::default()
    });
    let env = backend
        .prepare(&spec(None), &CancellationToken::new())
        .await
        .expect("prepare");
    let temp = env.paths().temp.clone();
    env.write_file(&format!("{temp}/a/b.txt"), b"data", false)
        .await
        .expect("write inside");
    assert_eq!(
        env.read_file(&format!("{temp}/a/b.txt"))
            .await
            .expect("read"),
        Some(b"data".to_vec())
    );
    assert_eq!(
        env.read_file(&format!("{temp}/missing"))
            .await
            .expect("read"),
        None
    );
    for bad in [
        format!("{temp}/../../escape"),
        "/etc/passwd".to_owned(),
        "relative".to_owned(),
    ] {
        assert!(env.write_file(&bad, b"x", false).await.is_err(), "{bad}");
        assert!(env.read_file(&bad).await.is_err(), "{bad}");
    }
    env.teardown().await.expect("teardown");
}

#[tokio::test]
async fn copy_mode_leaves_the_source_alone() {
    let root = tempfile::tempdir().expect("root");
    let source = tempfile::tempdir().expect("source");
    std::fs::create_dir(source.path().join("dir")).expect("mkdir");
    std::fs::write(source.path().join("dir/file"), "original").expect("write");
    let backend = HostBackend::new(HostConfig {
        root: Some(root.path().to_path_buf()),
        workspace: WorkspaceMode::Copy,
        ..HostConfig::default()
    });
    let env = backend
        .prepare(&spec(Some(source.path())), &CancellationToken::new())
        .await
        .expect("prepare");
    let workspace = env.paths().workspace.clone();
    assert!(workspace.starts_with(&*root.path().to_string_lossy()));
    env.write_file(&format!("{workspace}/dir/file"), b"changed", false)
        .await
        .expect("write");
    env.teardown().await.expect("teardown");
    assert_eq!(
        std::fs::read_to_string(source.path().join("dir/file")).expect("read"),
        "original"
    );
    assert!(!std::path::Path::new(&workspace).exists());
}

#[tokio::test]
async fn missing_program_is_a_clear_error() {
    let root = tempfile::tempdir().expect("root");
    let backend = HostBackend::new(HostConfig {
        root: Some(root.path().to_path_buf()),
        ..HostConfig::default()
    });
    let cancel = CancellationToken::new();
    let env = backend
        .prepare(&spec(None), &cancel)
        .await
        .expect("prepare");
    let request = ExecRequest {
        argv: vec!["no-such-program-runnel".to_owned()],
        env: BTreeMap::from([("PATH".to_owned(), "/usr/bin".to_owned())]),
        workdir: env.paths().temp.clone(),
        timeout: None,
    };
    let (sender, _receiver) = mpsc::channel(16);
    let error = env
        .exec(&request, sender, &cancel)
        .await
        .expect_err("missing");
    assert!(
        error.to_string().contains("was not found on PATH"),
        "{error}"
    );
    env.teardown().await.expect("teardown");
}
