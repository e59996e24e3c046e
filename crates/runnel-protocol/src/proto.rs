//! The generated protobuf types of `proto/` (packages `runner.v1` and `ping.v1`).
//!
//! Owns nothing hand-written: everything here comes from `build.rs`. Must not be edited to change
//! the wire format; change the `.proto` files instead.

/// `runner.v1`: registration, task fetching and reporting.
#[allow(missing_docs, clippy::all, unreachable_pub)]
pub mod runner {
    include!(concat!(env!("OUT_DIR"), "/runner.v1.rs"));
}

/// `ping.v1`: reachability check.
#[allow(missing_docs, clippy::all, unreachable_pub)]
pub mod ping {
    include!(concat!(env!("OUT_DIR"), "/ping.v1.rs"));
}
