//! The `needs` graph: jobs in a stable dependency order.
//!
//! Owns: ordering job ids so every job comes after the jobs it needs, choosing among ready
//! jobs by declaration order, and reporting the jobs that cannot be ordered (cycles, unknown
//! ids). Must not: decide whether a job runs.

/// Result of ordering: indexes into the input in run order, plus the jobs left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedsOrder {
    /// Indexes of orderable jobs: each after all of its needs.
    pub order: Vec<usize>,
    /// Indexes of jobs that need an unknown job or sit on (or behind) a cycle, in
    /// declaration order.
    pub unordered: Vec<usize>,
}

/// [`needs_order`] of a workflow's jobs, indexes in `workflow.jobs` declaration order.
pub fn workflow_needs_order(workflow: &runnel_workflow::Workflow) -> NeedsOrder {
    let needs: Vec<Vec<String>> = workflow
        .jobs
        .values()
        .map(|job| job.needs.iter().map(|n| n.value.clone()).collect())
        .collect();
    let jobs: Vec<(&str, &[String])> = workflow
        .jobs
        .keys()
        .zip(&needs)
        .map(|(id, needs)| (id.as_str(), needs.as_slice()))
        .collect();
    needs_order(&jobs)
}

/// Orders `jobs` (id, needs) so that needs come first. At each step the earliest-declared
/// job whose needs are all placed goes next, so a workflow already written in dependency
/// order keeps its order exactly.
pub fn needs_order(jobs: &[(&str, &[String])]) -> NeedsOrder {
    let mut placed = vec![false; jobs.len()];
    let mut order = Vec::with_capacity(jobs.len());
    let is_placed = |placed: &[bool], id: &str| {
        jobs.iter()
            .zip(placed)
            .any(|((other, _), done)| *done && other.eq_ignore_ascii_case(id))
    };
    loop {
        let next = jobs.iter().enumerate().position(|(index, (_, needs))| {
            !placed.get(index).copied().unwrap_or(true)
                && needs.iter().all(|need| is_placed(&placed, need))
        });
        match next {
            Some(index) => {
                if let Some(slot) = placed.get_mut(index) {
                    *slot = true;
                }
                order.push(index);
            }
            None => break,
        }
    }
    let unordered = placed
        .iter()
        .enumerate()
        .filter(|(_, done)| !**done)
        .map(|(index, _)| index)
        .collect();
    NeedsOrder { order, unordered }
}
