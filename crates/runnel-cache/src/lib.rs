//! The cache service that jobs talk to through `@actions/cache` (and so `actions/cache`).
//!
//! It speaks both of GitHub's cache protocols over one [`Store`]:
//! - v1, the REST API under `<ACTIONS_CACHE_URL>_apis/artifactcache/` (lookup, reserve, chunked
//!   upload with `Content-Range`, commit, download);
//! - v2, the Twirp `github.actions.results.api.v1.CacheService` at the origin of
//!   `ACTIONS_RESULTS_URL`, with Azure-block-blob-style uploads to URLs this server signs.
//!
//! ```text
//! let store = DiskStore::open(DiskStoreConfig::new(dir, size_limit)).await?;
//! let tokens = Arc::new(JobTokens::from_secret(shared_secret));
//! let server = CacheServer::bind(CacheServerConfig::new(addr, Arc::new(store), tokens.clone())).await?;
//! let token = tokens.mint(&TokenRequest { repository: "owner/repo", job: "build", run: "7", refs: &refs, lifetime })?;
//! // jobs get ACTIONS_CACHE_URL = format!("http://{}/{token}/", server.local_addr())
//! ```
//!
//! Owns: the wire formats of both protocols, request authentication (signed per-job tokens
//! scoped to a repository and git refs, signed download/upload URLs), GitHub's key matching
//! and cache isolation by ref, the limits on uploads in progress and on connections, the
//! on-disk store and the S3 store. Must not: know about jobs, workflows or the engine (the
//! caller mints and revokes tokens), install a tracing subscriber, or let anything from a
//! request name a file. `parse_untrusted_request` exists for the fuzz target only.

// Handlers return the rejection `http::Response` itself as the `Err` so `?` carries the status
// out; it is built once per refused request, so boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

mod artifacts;
mod auth;
mod clock;
mod disk;
mod fuzzing;
mod http_util;
mod route;
mod s3;
mod server;
mod store;
mod token;
mod v1;
mod v2;

pub use auth::{JobIdentity, NoAuth, RefScope, TokenError, TokenVerifier};
pub use clock::{rfc3339_millis, rfc3339_seconds};
pub use disk::{DiskStore, DiskStoreConfig, EntryInfo};
#[doc(hidden)]
pub use fuzzing::parse_untrusted_request;
pub use s3::{PART_SIZE, S3Error, S3Store, S3StoreConfig};
pub use server::{CacheServer, CacheServerConfig, ServerError};
pub use store::{ByteStream, Entry, EntryId, PruneRules, Store, StoreError, select_entry};
pub use token::{JobTokens, MintError, TokenRequest};
