//! `actions/checkout` of the run's own repository in a local run (`runnel run`), as act
//! treats it: the job's workspace already holds the working tree being debugged (in place on
//! the host, a copy in a container), so the step is a no-op that says so. Fetching the action
//! would need github.com, and running it would check out the remote's commit instead of the
//! tree the user is editing. `RunOptions::local_checkout` turns this on; the daemon never does.
//! A checkout of another repository (`with.repository`) runs for real.
//!
//! Must not: touch the workspace.

use runnel_workflow::UsesStep;

use super::super::JobState;
use crate::sink::{RunnerLevel, StepRef};

impl JobState<'_> {
    /// Whether `uses` checks out the run's own repository and the run uses its working tree.
    pub(super) fn is_local_checkout(&self, uses: &UsesStep) -> bool {
        if !self.request.options.local_checkout {
            return false;
        }
        let Some((name, _)) = uses.uses.value.split_once('@') else {
            return false;
        };
        if !name.eq_ignore_ascii_case("actions/checkout") {
            return false;
        }
        let Some(template) = uses.with.get("repository") else {
            return true;
        };
        let own = match self.expressions.contexts.get("github") {
            Some(runnel_expr::Value::Object(github)) => github
                .get("repository")
                .map(runnel_expr::Value::to_display_string)
                .unwrap_or_default(),
            _ => String::new(),
        };
        self.expressions
            .evaluate_string(&self.expressions.contexts, "with.repository", template)
            .is_ok_and(|repository| repository.is_empty() || repository.eq_ignore_ascii_case(&own))
    }

    /// The log line that stands for the skipped checkout.
    pub(super) fn skip_local_checkout(&self, uses: &UsesStep, step_ref: &StepRef) {
        self.log.runner(
            Some(step_ref),
            RunnerLevel::Info,
            &format!(
                "Skipping `{}`: the workspace is this run's working tree already \
                 (--no-skip-checkout runs the action)",
                uses.uses.value
            ),
        );
    }
}
