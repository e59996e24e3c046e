//! `health_check:` (the Gitea runner v3's task admission): before the poller fetches a task,
//! the free space on the file system of the job directories and the operator's script are
//! checked; while they fail, no task is fetched (running jobs go on) and `/readyz` answers 503
//! with the reason. As in v3, nothing is checked while a job runs (the last result stands until
//! the runner is idle), and a result is reused for `interval`.
//!
//! Must not: fetch, or stop running jobs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runnel_config::HealthCheckSection;

/// The admission checks and their last result.
pub(crate) struct Health {
    settings: HealthCheckSection,
    /// Where the job directories are (the host backend's root).
    work_dir: PathBuf,
    last: Option<(Instant, Result<(), String>)>,
}

impl Health {
    pub(crate) fn new(settings: HealthCheckSection, work_dir: PathBuf) -> Health {
        Health {
            settings,
            work_dir,
            last: None,
        }
    }

    /// Whether a task may be fetched now; `idle`: no job runs.
    pub(crate) async fn admit(&mut self, idle: bool) -> Result<(), String> {
        if !self.settings.enabled {
            return Ok(());
        }
        let fresh = self
            .last
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < self.settings.interval);
        if let Some((_, result)) = &self.last
            && (fresh || !idle)
        {
            return result.clone();
        }
        let result = self.check().await;
        self.last = Some((Instant::now(), result.clone()));
        result
    }

    async fn check(&self) -> Result<(), String> {
        let dir = self.work_dir.clone();
        let free = tokio::task::spawn_blocking(move || crate::doctor::free_bytes(&dir))
            .await
            .map_err(|e| format!("checking the free space failed: {e}"))?;
        let min = self.settings.min_free_disk_space_mb.saturating_mul(1 << 20);
        match free {
            Ok(free) if free < min => {
                return Err(format!(
                    "{} MiB free on the file system of {}, less than \
                     health_check.min_free_disk_space_mb ({})",
                    free >> 20,
                    self.work_dir.display(),
                    self.settings.min_free_disk_space_mb
                ));
            }
            Ok(_) => {}
            Err(reason) => {
                tracing::warn!(dir = %self.work_dir.display(), %reason, "health check: free space unknown");
            }
        }
        if self.settings.script.is_empty() {
            return Ok(());
        }
        run_script(&self.settings.script, self.settings.timeout).await
    }
}

/// Runs the operator's script; a non-zero exit, a timeout or a failure to start fails it.
async fn run_script(script: &str, timeout: Duration) -> Result<(), String> {
    let mut command = tokio::process::Command::new(script);
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| format!("health_check.script {script} did not start: {e}"))?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "health_check.script {script} ran longer than health_check.timeout ({})",
            runnel_config::format_duration(timeout)
        )),
        Ok(Err(e)) => Err(format!("health_check.script {script}: {e}")),
        Ok(Ok(output)) if output.status.success() => Ok(()),
        Ok(Ok(output)) => Err(format!(
            "health_check.script {script} failed ({})",
            output.status
        )),
    }
}
