//! Where actions come from: what a `uses:` string names ([`ActionReference`]) and the
//! [`ActionSource`] that brings a repository action's files onto this machine (by default
//! [`GitActionSource`]: `git ls-remote`, then a shallow fetch of the resolved commit into a
//! cache keyed by repository and commit), [`contained`]: reading those files without following
//! a link out of the checkout, and [`ghes`]: lifting the artifact client's
//! "GitHub servers only" guard in JavaScript files copied to a job on Gitea.
//!
//! Must not: run actions or touch the job environment; the job runner copies the files into
//! the environment and runs them.

pub mod contained;
pub mod ghes;
mod reference;
mod source;

pub use reference::{ActionReference, RemoteAction};
pub use source::{ActionSource, ActionSourceError, FetchedAction, GitActionSource};

#[cfg(test)]
mod tests;
