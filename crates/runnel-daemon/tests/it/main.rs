//! The daemon in-process: `run_daemon` against a fake Gitea (`gitea`, over
//! `runnel_protocol::testing`'s mock server) with the host backend in a temporary directory,
//! so a task's whole flow — fetched, run, its rows, step states and result reported — is
//! tested in a second, without a process, Docker or Gitea. The daemon against a real Gitea is
//! tested through the binary (`runnel-cli`'s `daemon*` tests).

mod gitea;
mod tasks;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use runnel_assembly::Assembly;
use runnel_assembly::router::Backends;
use runnel_backends::host::{HostBackend, HostConfig, WorkspaceMode};
use runnel_config::Config;
use runnel_daemon::{DaemonOptions, run_daemon};
use runnel_engine::RunOptions;
use runnel_engine::backend::{Backend, BackendError, JobEnvironment, JobSpec};
use tokio_util::sync::CancellationToken;

use crate::gitea::{FakeGitea, Reported};

/// The longest a test's daemon may run.
const LIMIT: Duration = Duration::from_secs(60);

/// The runner's one label.
const LABELS: &str = "['linux:host']";

/// Runs a daemon with `--once` against a fake Gitea that hands out one task running
/// `job` (the YAML of one job, under `jobs:`); returns what Gitea was told, and how many job
/// environments the backend prepared. `gitea` may script more (a cancel).
async fn run_once(gitea: &FakeGitea, job: &str) -> (Reported, usize) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    run_once_in(gitea, job, dir.path(), "").await
}

/// [`run_once`] with the daemon's files in `dir` and `extra` config text (whole sections).
async fn run_once_in(gitea: &FakeGitea, job: &str, dir: &Path, extra: &str) -> (Reported, usize) {
    gitea.add_task(1, &format!("name: test\non: push\njobs:\n{job}"));
    let config = config_with(dir, &gitea.url(), extra);
    let work = dir.join("work");
    let (assembly, host) = assembly_counting(&config, &work);
    let daemon = daemon_options(config);
    let ran = tokio::time::timeout(
        LIMIT,
        run_daemon(daemon, assembly, CancellationToken::new()),
    )
    .await;
    match ran {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("the daemon failed: {error}"),
        Err(_) => panic!("the daemon did not finish within {LIMIT:?}"),
    }
    // Every job directory is removed at teardown.
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the work directory: {left:?}");
    (gitea.reported(1), host.prepared.load(Ordering::SeqCst))
}

/// The assembly of these tests: the host backend in `work`, counting what it prepares.
fn assembly_counting(config: &Config, work: &Path) -> (Arc<Assembly>, Arc<Counting>) {
    let host = Arc::new(Counting {
        inner: HostBackend::new(HostConfig {
            root: Some(work.to_path_buf()),
            workspace: WorkspaceMode::Copy,
            withhold_runner_env: true,
            ..HostConfig::default()
        }),
        prepared: AtomicUsize::new(0),
    });
    let labels = runnel_config::parse_labels(&config.runner.labels).0;
    let mut options = RunOptions::local(None);
    options.max_parallel_jobs = 1;
    options.default_job_timeout = config.runner.timeout;
    let backends = Backends {
        host: host.clone(),
        docker: Err("no Docker in these tests".to_owned()),
        vm: None,
        kubernetes: Err("no Kubernetes in these tests".to_owned()),
    };
    let assembly = Arc::new(Assembly::from_backends(labels, backends, None, options));
    (assembly, host)
}

/// [`assembly_counting`] without the count.
fn assembly_for(config: &Config, work: &Path) -> Arc<Assembly> {
    assembly_counting(config, work).0
}

/// A `--once` daemon of `config`.
fn daemon_options(config: Config) -> DaemonOptions {
    DaemonOptions {
        labels: Vec::new(),
        config,
        config_path: None,
        once: true,
        version: "runnel-test".to_owned(),
    }
}

/// A daemon's config for this test: its registration in `dir`, quick polls and reports, and
/// `extra` sections.
fn config_with(dir: &Path, url: &str, extra: &str) -> Config {
    let runner_file = dir.join(".runner");
    let registration = serde_json::json!({
        "id": 7, "uuid": "the-uuid", "name": "fake", "token": "the-token",
        "address": url, "labels": ["linux:host"],
    });
    std::fs::write(&runner_file, registration.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "runner:\n  file: {}\n  labels: {LABELS}\n  transport: connect\n  fetch_interval: 10ms\n  fetch_interval_max: 50ms\n  state_report_interval: 100ms\n  timeout: 1m\nmetrics:\n  enabled: false\ncache:\n  enabled: false\n{extra}",
        runner_file.display()
    );
    match Config::parse("config.yaml", &text) {
        Ok(loaded) => loaded.config,
        Err(error) => panic!("{error}"),
    }
}

/// The fake backend: the host backend, counting the environments it prepares.
struct Counting {
    inner: HostBackend,
    prepared: AtomicUsize,
}

#[async_trait::async_trait]
impl Backend for Counting {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        self.prepared.fetch_add(1, Ordering::SeqCst);
        self.inner.prepare(spec, cancel).await
    }
}
