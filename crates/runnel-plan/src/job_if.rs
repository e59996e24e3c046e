//! Job-level `if:`: whether a job starts, given its dependencies' results.
//!
//! Owns: the implicit `success()` rule for jobs (any need that did not succeed skips a job
//! whose condition has no status function) and the status the expression's `success()`,
//! `failure()` and `cancelled()` see. Must not: build contexts (see `contexts`).

use runnel_expr::{EvalContext, Host, JobStatus, ParseOptions, Template, TemplatePart, parse};
use runnel_workflow::IfExpr;

use crate::contexts::{JobResult, NeedsState};

/// What the status functions of a job-level `if:` report.
struct JobHost {
    status: JobStatus,
}

impl Host for JobHost {
    fn job_status(&self) -> JobStatus {
        self.status
    }
}

/// The status GitHub's job-level functions see: cancelled wins, then any failed ancestor.
///
/// A need that was skipped (or cancelled without the run being cancelled) while no ancestor
/// failed makes GitHub's `success()` false but `failure()` false too; [`JobStatus`] cannot
/// say that, so such a job reports `Success`. Conditions without a status function are
/// decided before evaluation (see [`decide`]), so this only matters for an explicit
/// `success()` after a skipped need.
fn job_status(needs: &NeedsState) -> JobStatus {
    if needs.cancelled {
        JobStatus::Cancelled
    } else if needs.any_ancestor_failed
        || needs.needs.iter().any(|n| n.result == JobResult::Failure)
    {
        JobStatus::Failure
    } else {
        JobStatus::Success
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
/// job means every direct need succeeded (a failure further up has already skipped the need
/// in between), so any other need result skips the job without evaluating anything.
/// With a status function (`always()`, `failure()`, `!cancelled()`, …) the condition is
/// evaluated whatever the needs' results; runnel does this for every such job, also after
/// skipped chains (GitHub has been reported to skip some of those, actions/runner#3664; we
/// take the documented rule).
pub(crate) fn decide(
    condition: Option<&IfExpr>,
    needs: &NeedsState,
    contexts: &runnel_expr::Object,
) -> Decision {
    let all_needs_succeeded =
        !needs.cancelled && needs.needs.iter().all(|n| n.result == JobResult::Success);
    let Some(condition) = condition else {
        return if all_needs_succeeded {
            Decision::Run
        } else {
            Decision::Skip
        };
    };
    if !has_status_function(&condition.source) && !all_needs_succeeded {
        return Decision::Skip;
    }
    let host = JobHost {
        status: job_status(needs),
    };
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

/// Whether an `if:` text calls a status function anywhere, read the way `IfCondition` reads
/// it (whole `${{ }}`, bare expression, or interpolated text).
pub(crate) fn has_status_function(source: &str) -> bool {
    let options = ParseOptions {
        named_values: [
            "github", "needs", "vars", "inputs", "matrix", "strategy", "env", "job", "runner",
            "steps", "secrets",
        ]
        .iter()
        .map(|name| (*name).to_owned())
        .collect(),
        status_functions: true,
        hash_files: true,
    };
    match Template::parse(source, &options) {
        Ok(Template::Whole(expr)) => expr.has_status_function(),
        Ok(Template::Literal(text)) if text.trim().is_empty() => false,
        Ok(Template::Literal(text)) => {
            parse(&text, &options).is_ok_and(|expr| expr.has_status_function())
        }
        Ok(Template::Interpolated(parts)) => parts.iter().any(|part| match part {
            TemplatePart::Expr(expr) => expr.has_status_function(),
            TemplatePart::Literal(_) => false,
        }),
        Err(_) => false,
    }
}
