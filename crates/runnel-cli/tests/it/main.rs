//! Integration tests of the `runnel` binary: its command-line contract (`cli`) and the
//! differential oracles that compare it with GitHub's npm packages (`oracle_expr`,
//! `oracle_workflow`). Everything here spawns the real binary; the oracles also need Node and
//! `tests/oracle/setup.sh`, and run only when `RUN_SLOW_TESTS` is set.

mod cli;
mod daemon;
mod oracle_expr;
mod oracle_workflow;
mod run;
mod support;
