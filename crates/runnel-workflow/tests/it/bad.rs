//! Broken workflows in `tests/bad/`: each `X.yml` and the exact rendered diagnostics in
//! `X.expected`. Run with `UPDATE_EXPECT=1` to rewrite the expectations after a deliberate
//! change (then review the diff).

use crate::{check_snapshots, render_all};

#[test]
fn broken_workflows_render_expected_diagnostics() {
    check_snapshots("bad", 13, true, render_all);
}
