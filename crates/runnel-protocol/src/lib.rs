//! Client side of the Gitea Actions runner protocol.
//!
//! Owns: the protobuf messages (generated from `proto/` at build time), both transports (Connect
//! unary over HTTP/1.1 and gRPC over HTTP/2), timeouts, retries and the classification of
//! Gitea's errors, and the `.runner` registration file. Must not: know about jobs, workflows,
//! engines or config files; callers pass a [`ClientConfig`] and get typed messages back.

mod client;
mod connect;
mod error;
mod grpc;
pub mod proto;
pub mod runner_file;
#[cfg(feature = "test-support")]
pub mod testing;
mod tls;

pub use client::{
    Client, ClientConfig, ConfigError, Declared, Identity, RUNNER_CAPABILITIES, RetryPolicy,
    Transport,
};
pub use error::{BoxError, Cause, Code, Error, Rpc};
pub use tls::{TlsError, client_config as tls_client_config};
