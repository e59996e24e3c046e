//! What the packaging and doctor tests add to the Gitea harness of [`crate::daemon_gitea`]
//! (whose instance, `gitea()` and `unique()` they use): the gate for slow tests that need no
//! Gitea, registering into a directory the test owns (a package's or unit's configuration
//! directory), and one-job workflows pushed by label and awaited by runner id.
//!
//! It must not grow a second way to obtain, reach or push to Gitea: those live in
//! `daemon_gitea`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::daemon_gitea::{Gitea, register_in, workflow};

/// True when slow tests run; else prints a note naming `test` and what it needs.
pub(crate) fn slow(test: &str, needs: &str) -> bool {
    if std::env::var_os("RUN_SLOW_TESTS").is_some() {
        return true;
    }
    eprintln!("note: skipping {test}: needs {needs}; set RUN_SLOW_TESTS=1");
    false
}

/// Registers a runner named `label` with the one label `label:host` in `dir`; returns its id.
pub(crate) fn register(gitea: &Gitea, dir: &Path, label: &str) -> i64 {
    register_in(gitea, dir, label, &format!("{label}:host"), &[])
}

impl Gitea {
    /// Pushes a workflow that runs `steps` on `label`, only when its own file changes.
    pub(crate) fn push_job(&self, label: &str, steps: &str) {
        self.push_named_job(label, label, steps);
    }

    /// Pushes the workflow `name` (a new file) that runs `steps` on `label`, only when its own
    /// file changes: one label can get several jobs.
    pub(crate) fn push_named_job(&self, name: &str, label: &str, steps: &str) {
        let jobs = format!("  job:\n    runs-on: {label}\n    steps:\n{steps}");
        self.push_workflow(name, &workflow(name, &jobs));
    }

    /// Waits (up to 2 minutes) for a completed job of `runner_id`; `log` explains a timeout.
    pub(crate) fn completed_job(&self, runner_id: i64, log: &dyn Fn() -> String) -> Value {
        self.completed_job_where(runner_id, &|_| true, log)
    }

    /// Waits (up to 2 minutes) for a completed job of `runner_id` that `wanted` accepts.
    pub(crate) fn completed_job_where(
        &self,
        runner_id: i64,
        wanted: &dyn Fn(&Value) -> bool,
        log: &dyn Fn() -> String,
    ) -> Value {
        for _ in 0..600 {
            if let Some(job) = self
                .jobs_of(runner_id)
                .into_iter()
                .find(|j| j["status"] == "completed" && wanted(j))
            {
                return job;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("no completed job of runner {runner_id}; log:\n{}", log());
    }
}
