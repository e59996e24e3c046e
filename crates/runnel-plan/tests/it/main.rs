//! Integration tests for runnel-plan: table-driven data under `tests/data`, seed workflows
//! under `tests/seed`, inline fixtures for plans.

mod computed_keys;
mod glob;
mod graph;
mod job_if;
mod matrix;
mod naming;
mod plan;
mod seed;
mod support;
mod trigger;
