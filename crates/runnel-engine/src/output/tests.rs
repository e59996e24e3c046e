//! Unit tests of the output pipeline, one module per feature.

mod commands;
mod envfile;
mod lines;
mod masking;
mod processing;
