//! Workflow files: YAML with a position on every node, the typed model, and diagnostics.
//!
//! Owns: reading YAML into a spanned node tree, converting it into the [`Workflow`] model,
//! and collecting every problem (unknown keys, wrong types, bad expressions, unknown `needs`,
//! cycles, duplicate step ids) as [`Diagnostic`]s with file:line:col, all at once.
//! Must not: evaluate runtime contexts or do IO (callers pass file names and text).
