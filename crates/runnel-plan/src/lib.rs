//! Planning: from a loaded workflow and an event to the job instances that would run.
//!
//! Owns: event matching (GitHub's filter globs, `-ignore`, `!` negation, activity types), matrix
//! expansion (include/exclude exactly as GitHub), job naming, the `needs` graph in order, and
//! job-level `if` evaluated with the contexts known at plan time.
//! Must not: spawn processes, read files or know about Docker.
