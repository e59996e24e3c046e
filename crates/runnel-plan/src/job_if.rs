//! Job-level `if:`: whether a job starts, given its dependencies' results.
//!
//! Owns: the implicit `success()` rule for jobs (any need that did not succeed skips a job
//! whose condition has no status function) and the status the expression's `success()`,
//! `failure()` and `cancelled()` see. Must not: build contexts (see `contexts`).

use runnel_expr::{EvalContext, Host, JobStatus};
use runnel_workflow::IfExpr;

use crate::contexts::{JobResult, NeedsState};

/// What the status functions of a job-level `if:` report: GitHub's job-level answers, where
/// `success()` means every needed job succeeded and `failure()` that one failed, so after a
/// skipped need both are false. `success('a')`/`failure('a')` test only the named needs.
struct JobHost<'a> {
    needs: &'a NeedsState,
}

impl JobHost<'_> {
    /// The direct needs a status function is about: all of them, or the ones it names.
    fn named<'n>(&'n self, jobs: &'n [String]) -> impl Iterator<Item = JobResult> + 'n {
        self.needs
            .needs
            .iter()
            .filter(move |n| {
                jobs.is_empty() || jobs.iter().any(|j| j.eq_ignore_ascii_case(&n.job_id))
            })
            .map(|n| n.result)
    }
}

impl Host for JobHost<'_> {
    fn job_status(&self) -> JobStatus {
        if self.needs.cancelled {
            JobStatus::Cancelled
        } else if self.failure(&[]) {
            JobStatus::Failure
        } else {
            JobStatus::Success
        }
    }

    fn success(&self, jobs: &[String]) -> bool {
        !self.needs.cancelled
            && (!jobs.is_empty() || !self.needs.any_ancestor_failed)
            && self.named(jobs).all(|r| r == JobResult::Success)
    }

    fn failure(&self, jobs: &[String]) -> bool {
        (jobs.is_empty() && self.needs.any_ancestor_failed)
            || self.named(jobs).any(|r| r == JobResult::Failure)
    }
}

/// Outcome of a job-level `if:`.
pub(crate) enum Decision {
    Run,
    Skip,
    /// Evaluation failed; GitHub fails the job. The message explains why.
    Error(String),
}

/// Decides whether a job runs. `contexts` holds `github`, `needs`, `vars` and `inputs`.
///
/// Without a status function the condition is `success() && (...)`, and `success()` for a
/// job means every direct need succeeded and no job further up failed (a need in between may
/// have run anyway, with `if: failure()` or `always()`), so anything else skips the job
/// without evaluating anything, as act and GitHub do.
/// With a status function (`always()`, `failure()`, `!cancelled()`, …) the condition is
/// evaluated whatever the needs' results; runnel does this for every such job, also after
/// skipped chains (GitHub has been reported to skip some of those, actions/runner#3664; we
/// take the documented rule).
pub(crate) fn decide(
    condition: Option<&IfExpr>,
    needs: &NeedsState,
    contexts: &runnel_expr::Object,
) -> Decision {
    let all_needs_succeeded = !needs.cancelled
        && !needs.any_ancestor_failed
        && needs.needs.iter().all(|n| n.result == JobResult::Success);
    let Some(condition) = condition else {
        return if all_needs_succeeded {
            Decision::Run
        } else {
            Decision::Skip
        };
    };
    if !condition.condition.has_status_function() && !all_needs_succeeded {
        return Decision::Skip;
    }
    let host = JobHost { needs };
    let cx = EvalContext {
        contexts,
        host: &host,
    };
    match condition.condition.evaluate(&cx) {
        Ok(true) => Decision::Run,
        Ok(false) => Decision::Skip,
        Err(error) => Decision::Error(format!("`if: {}`: {error}", condition.source)),
    }
}
