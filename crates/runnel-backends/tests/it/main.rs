//! Integration tests of the host backend and, through it, the engine: real processes in
//! temporary directories, workflows from `tests/workflows/` and the seed workflows.

mod actions;
mod container_actions;
mod docker;
mod engine;
mod host;
mod host_leftovers;
mod seeds;
mod support;
