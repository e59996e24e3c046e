//! Running a workflow file on the host backend and looking at what the sink got.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use runnel_backends::host::{HostBackend, HostConfig};
use runnel_engine::backend::{
    Backend, BackendError, EnvironmentInfo, EnvironmentPaths, ExecExit, ExecOutput, ExecRequest,
    JobEnvironment, JobSpec,
};
use runnel_engine::{
    JobOutcome, JobResult, LogEvent, LogRecord, LogSink, MemorySink, RunOptions, StepStatus,
    WorkflowResult, run_workflow,
};
use runnel_plan::Event;
use tokio_util::sync::CancellationToken;

/// A finished run and everything it logged.
pub(crate) struct Run {
    pub(crate) result: WorkflowResult,
    pub(crate) sink: Arc<MemorySink>,
    /// Kept so the workspace outlives the run's assertions.
    pub(crate) workspace: tempfile::TempDir,
    pub(crate) job_root: tempfile::TempDir,
}

impl Run {
    pub(crate) fn lines(&self, job: &str) -> Vec<String> {
        self.sink.lines(job)
    }

    pub(crate) fn has_line(&self, job: &str, line: &str) -> bool {
        self.lines(job).iter().any(|l| l == line)
    }

    pub(crate) fn job(&self, key: &str) -> &JobOutcome {
        self.result
            .jobs
            .iter()
            .find(|j| j.key == key)
            .unwrap_or_else(|| panic!("no job {key} in {:?}", self.keys()))
    }

    pub(crate) fn keys(&self) -> Vec<(String, JobResult)> {
        self.result
            .jobs
            .iter()
            .map(|j| (j.key.clone(), j.result))
            .collect()
    }

    /// `(outcome, conclusion)` of each step of a job.
    pub(crate) fn steps(&self, key: &str) -> Vec<(StepStatus, StepStatus)> {
        self.job(key)
            .steps
            .iter()
            .map(|s| (s.outcome, s.conclusion))
            .collect()
    }

    pub(crate) fn runner_messages(&self) -> Vec<String> {
        self.sink
            .records()
            .into_iter()
            .filter_map(|r| match r.event {
                LogEvent::Runner { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    }
}

/// What a test may change before the run.
pub(crate) struct Setup {
    pub(crate) options: RunOptions,
    pub(crate) host: HostConfig,
    pub(crate) event: Event,
    pub(crate) cancel_on_line: Option<String>,
    /// A step whose env has `LOSE_ENVIRONMENT=now` runs, then its exec answers
    /// [`BackendError::Lost`] (the environment gone, as a pod deleted mid-step), and the
    /// environment answers that to every later call but teardown.
    pub(crate) losing: bool,
}

/// Runs `tests/workflows/<name>` with a fresh workspace (prepared by `prepare`).
pub(crate) async fn run_file(
    name: &str,
    prepare: impl FnOnce(&Path),
    change: impl FnOnce(&mut Setup),
) -> Run {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/workflows")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("workflow fixture is readable");
    run_text(name, &text, prepare, change).await
}

pub(crate) async fn run_text(
    name: &str,
    text: &str,
    prepare: impl FnOnce(&Path),
    change: impl FnOnce(&mut Setup),
) -> Run {
    let loaded = runnel_workflow::load_workflow(name, text);
    assert!(!loaded.has_errors(), "{name}: {:?}", loaded.diagnostics);
    let workflow = loaded.workflow.expect("workflow loads");
    let workspace = tempfile::tempdir().expect("temp workspace");
    prepare(workspace.path());
    let job_root = tempfile::tempdir().expect("temp job root");
    let mut setup = Setup {
        options: RunOptions::local(Some(workspace.path().to_path_buf())),
        host: HostConfig {
            root: Some(job_root.path().to_path_buf()),
            ..HostConfig::default()
        },
        event: Event::push("main"),
        cancel_on_line: None,
        losing: false,
    };
    change(&mut setup);
    let host = HostBackend::new(setup.host.clone());
    let losing = Losing { inner: host };
    let backend: &dyn Backend = if setup.losing { &losing } else { &losing.inner };
    let cancel = CancellationToken::new();
    let memory = Arc::new(MemorySink::new());
    let sink: Arc<dyn LogSink> = Arc::new(CancelOnLine {
        inner: Arc::clone(&memory),
        line: setup.cancel_on_line.clone(),
        cancel: cancel.clone(),
    });
    let result = run_workflow(
        &workflow,
        &setup.event,
        &setup.options,
        backend,
        sink,
        cancel,
    )
    .await
    .expect("run starts");
    Run {
        result,
        sink: memory,
        workspace,
        job_root,
    }
}

/// Forwards to a memory sink and cancels the run when a given line appears.
struct CancelOnLine {
    inner: Arc<MemorySink>,
    line: Option<String>,
    cancel: CancellationToken,
}

impl LogSink for CancelOnLine {
    fn record(&self, record: LogRecord) {
        if let (Some(wanted), LogEvent::Line { text, .. }) = (&self.line, &record.event)
            && text == wanted
        {
            self.cancel.cancel();
        }
        self.inner.record(record);
    }
}

/// Processes whose command line contains `marker` (zombies have an empty one).
pub(crate) fn processes_with(marker: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            text.contains(marker).then_some(text)
        })
        .collect()
}

/// Copies a fixture directory tree (files and folders) into `to`.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy target");
    for entry in std::fs::read_dir(from).expect("read fixture dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// A backend whose environment is lost at a step's request (see [`Setup::losing`]).
struct Losing {
    inner: HostBackend,
}

#[async_trait::async_trait]
impl Backend for Losing {
    async fn prepare(
        &self,
        spec: &JobSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn JobEnvironment>, BackendError> {
        Ok(Box::new(LosingEnvironment {
            inner: self.inner.prepare(spec, cancel).await?,
            lost: std::sync::atomic::AtomicBool::new(false),
        }))
    }
}

struct LosingEnvironment {
    inner: Box<dyn JobEnvironment>,
    lost: std::sync::atomic::AtomicBool,
}

impl LosingEnvironment {
    fn check(&self) -> Result<(), BackendError> {
        if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(gone());
        }
        Ok(())
    }
}

fn gone() -> BackendError {
    BackendError::Lost {
        operation: "run a process in the test's environment".to_owned(),
        source: "the environment is gone (the test lost it)".into(),
    }
}

#[async_trait::async_trait]
impl JobEnvironment for LosingEnvironment {
    fn paths(&self) -> &EnvironmentPaths {
        self.inner.paths()
    }

    fn info(&self) -> &EnvironmentInfo {
        self.inner.info()
    }

    fn default_env(&self) -> std::collections::BTreeMap<String, String> {
        self.inner.default_env()
    }

    fn workspace_on_host(&self) -> Option<PathBuf> {
        self.inner.workspace_on_host()
    }

    async fn exec(
        &self,
        request: &ExecRequest,
        output: tokio::sync::mpsc::Sender<ExecOutput>,
        cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        self.check()?;
        let exit = self.inner.exec(request, output, cancel).await?;
        if request.env.get("LOSE_ENVIRONMENT").map(String::as_str) == Some("now") {
            self.lost.store(true, std::sync::atomic::Ordering::SeqCst);
            return Err(gone());
        }
        Ok(exit)
    }

    async fn write_file(
        &self,
        path: &str,
        contents: &[u8],
        executable: bool,
    ) -> Result<(), BackendError> {
        self.check()?;
        self.inner.write_file(path, contents, executable).await
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.check()?;
        self.inner.read_file(path).await
    }

    async fn find_program(
        &self,
        program: &str,
        path: &str,
    ) -> Result<Option<String>, BackendError> {
        self.check()?;
        self.inner.find_program(program, path).await
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        self.inner.teardown().await
    }
}
