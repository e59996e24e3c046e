//! Display names of job instances, following GitHub rather than Gitea.
//!
//! Owns: the default matrix-leg name `<name or id> (<v1>, <v2>, …)` and how each matrix value
//! is rendered in it. Must not: evaluate a `name:` that contains an expression (the planner
//! does that, and then appends no suffix).
//!
//! GitHub lists the values in matrix declaration order (keys added by `include` come after
//! the original dimensions, in the order they were added). Gitea's jobparser instead sorts
//! the keys alphabetically and sorts the legs by the resulting name; runnel follows GitHub.

use runnel_expr::{Object, Value};

/// `base (v1, v2, …)` for a matrix leg; `base` alone for an empty leg (a non-matrix job).
pub fn matrix_job_name(base: &str, leg: &Object) -> String {
    if leg.is_empty() {
        return base.to_owned();
    }
    let mut parts = Vec::new();
    for (_, value) in leg.iter() {
        render_value(value, &mut parts);
    }
    format!("{base} ({})", parts.join(", "))
}

/// Scalars render as GitHub converts them to strings (numbers as .NET G15, `null` as the
/// empty string). Arrays and objects have no documented rendering; GitHub's run page shows
/// their leaf values, so they are flattened depth-first into the same comma-separated list
/// (`{os: linux, v: 1}` → `linux, 1`). This is our best reading, not a verified rule.
fn render_value(value: &Value, parts: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| render_value(item, parts)),
        Value::Object(object) => object
            .iter()
            .for_each(|(_, item)| render_value(item, parts)),
        scalar => parts.push(scalar.to_display_string()),
    }
}
