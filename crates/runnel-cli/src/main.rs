//! The `runnel` binary.
fn main() {}
