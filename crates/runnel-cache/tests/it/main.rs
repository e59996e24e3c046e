//! Integration tests of the cache service through HTTP, as the toolkit clients see it.

mod artifacts;
mod eviction;
mod fuzz_regressions;
mod harness;
mod limits;
mod node_client;
mod s3;
mod scopes;
mod shared_dir;
mod store;
mod timeouts;
mod tokens;
mod v1;
mod v2;
