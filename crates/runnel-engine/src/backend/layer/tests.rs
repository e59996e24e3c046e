//! The layer adds its variables (to processes and, where unset, to step containers), its info,
//! and runs its teardown hook once after the inner teardown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// An inner environment that remembers the step container it was asked to run and counts
/// its teardowns.
struct Fake {
    paths: EnvironmentPaths,
    info: EnvironmentInfo,
    ran: Arc<Mutex<Option<ContainerRun>>>,
    teardowns: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl JobEnvironment for Fake {
    fn paths(&self) -> &EnvironmentPaths {
        &self.paths
    }

    fn info(&self) -> &EnvironmentInfo {
        &self.info
    }

    fn default_env(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("PATH".to_owned(), "/bin".to_owned()),
            ("SHARED".to_owned(), "inner".to_owned()),
        ])
    }

    async fn exec(
        &self,
        _request: &ExecRequest,
        _output: mpsc::Sender<ExecOutput>,
        _cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        Ok(ExecExit::Code(0))
    }

    async fn write_file(&self, _: &str, _: &[u8], _: bool) -> Result<(), BackendError> {
        Ok(())
    }

    async fn read_file(&self, _: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(None)
    }

    async fn teardown(&self) -> Result<(), BackendError> {
        self.teardowns.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn host_loopback(&self) -> Option<String> {
        Some("10.0.2.2".to_owned())
    }

    fn server_origin(&self) -> Option<String> {
        Some("http://10.0.2.101:3000".to_owned())
    }

    fn host_route(&self) -> Option<crate::backend::HostRoute> {
        Some(crate::backend::HostRoute::Unreachable(
            "elsewhere".to_owned(),
        ))
    }

    async fn run_container(
        &self,
        run: &ContainerRun,
        _output: mpsc::Sender<ExecOutput>,
        _cancel: &CancellationToken,
    ) -> Result<ExecExit, BackendError> {
        *self.ran.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.clone());
        Ok(ExecExit::Code(0))
    }
}

fn fake() -> (Fake, Arc<Mutex<Option<ContainerRun>>>, Arc<AtomicUsize>) {
    let ran = Arc::new(Mutex::new(None));
    let teardowns = Arc::new(AtomicUsize::new(0));
    let fake = Fake {
        paths: EnvironmentPaths {
            workspace: "/w".to_owned(),
            temp: "/t".to_owned(),
            tool_cache: "/tc".to_owned(),
            home: "/h".to_owned(),
        },
        info: EnvironmentInfo {
            has_bash: true,
            ..EnvironmentInfo::default()
        },
        ran: Arc::clone(&ran),
        teardowns: Arc::clone(&teardowns),
    };
    (fake, ran, teardowns)
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn variables_go_over_the_inner_env_and_under_a_step_containers_own() {
    let (inner, ran, _) = fake();
    let layered = EnvironmentLayer {
        env: vars(&[("SHARED", "layer"), ("ADDED", "yes")]),
        ..EnvironmentLayer::default()
    }
    .wrap(Box::new(inner));
    assert_eq!(
        layered.default_env(),
        vars(&[("ADDED", "yes"), ("PATH", "/bin"), ("SHARED", "layer")])
    );
    let run = ContainerRun {
        image: "img".to_owned(),
        entrypoint: None,
        args: Vec::new(),
        env: vars(&[("SHARED", "step")]),
        workdir: "/github/workspace".to_owned(),
        mounts: Vec::new(),
        timeout: None,
    };
    let (sender, _receiver) = mpsc::channel(1);
    let exit = layered
        .run_container(&run, sender, &CancellationToken::new())
        .await;
    assert!(matches!(exit, Ok(ExecExit::Code(0))));
    let seen = ran.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(
        seen.map(|run| run.env),
        Some(vars(&[("ADDED", "yes"), ("SHARED", "step")]))
    );
    // Without an `info`, the inner one shows through; so does where it reaches the host.
    assert!(layered.info().has_bash);
    assert_eq!(layered.paths().workspace, "/w");
    assert_eq!(layered.host_loopback().as_deref(), Some("10.0.2.2"));
    assert_eq!(
        layered.server_origin().as_deref(),
        Some("http://10.0.2.101:3000")
    );
    assert_eq!(
        layered.host_route(),
        Some(crate::backend::HostRoute::Unreachable(
            "elsewhere".to_owned()
        ))
    );
}

#[tokio::test]
async fn info_is_replaced_and_the_hook_runs_once_after_the_inner_teardown() {
    let (inner, _, teardowns) = fake();
    let hook_runs = Arc::new(AtomicUsize::new(0));
    let seen_inner = Arc::new(AtomicUsize::new(usize::MAX));
    let hook: TeardownHook = {
        let hook_runs = Arc::clone(&hook_runs);
        let teardowns = Arc::clone(&teardowns);
        let seen_inner = Arc::clone(&seen_inner);
        Box::new(move || {
            Box::pin(async move {
                hook_runs.fetch_add(1, Ordering::SeqCst);
                seen_inner.store(teardowns.load(Ordering::SeqCst), Ordering::SeqCst);
                Err(BackendError::Failed {
                    operation: "remove services".to_owned(),
                    message: "gone".to_owned(),
                })
            })
        })
    };
    let layered = EnvironmentLayer {
        info: Some(EnvironmentInfo {
            network: Some("net".to_owned()),
            ..EnvironmentInfo::default()
        }),
        teardown: Some(hook),
        ..EnvironmentLayer::default()
    }
    .wrap(Box::new(inner));
    assert_eq!(layered.info().network.as_deref(), Some("net"));
    assert!(!layered.info().has_bash);
    let first = layered.teardown().await;
    assert!(
        first.is_err_and(|e| e.to_string().contains("gone")),
        "the hook's error is returned"
    );
    assert!(layered.teardown().await.is_ok());
    assert_eq!(hook_runs.load(Ordering::SeqCst), 1);
    assert_eq!(teardowns.load(Ordering::SeqCst), 2);
    assert_eq!(
        seen_inner.load(Ordering::SeqCst),
        1,
        "inner torn down first"
    );
}
