//! Who may call the service: the [`TokenVerifier`] that turns a request's job token into a
//! [`JobIdentity`] (signed tokens: [`crate::JobTokens`]; or [`NoAuth`]), and the HMAC-signed URLs
//! handed out for archive downloads and v2 uploads (the toolkit sends no token on those).
//!
//! Owns: identities, token errors and URL signatures. Must not: parse HTTP or touch the store.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a valid job token grants: the repository whose caches the job may read, and the grant
/// that owns the entries the job reserves (only requests bearing it may upload to or commit them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobIdentity {
    /// Caches are scoped to this repository (`owner/name`), as in Gitea's runner.
    pub repository: String,
    /// The job's key (`build`, `gitea-task-7`); informational.
    pub job: String,
    /// The workflow run the job belongs to: artifacts are shared by the jobs of one run.
    pub run: String,
    /// Unique per minted token: reservations belong to it, so two jobs that happen to share
    /// repository, run and job names (two `runnel run`s of one project) never write each
    /// other's uploads.
    pub token_id: String,
    /// The git refs whose entries the job restores and the one it saves to (GitHub's cache
    /// isolation). `None`: an unscoped grant ([`NoAuth`], or a token minted before scopes
    /// existed), which reads and writes only the entries that have no ref.
    pub refs: Option<RefScope>,
}

/// GitHub's cache isolation by git ref: a job saves entries to its own ref only, and restores
/// from its own ref first, then from the refs in `fallback` (a pull request's base branch, the
/// repository's default branch). So a pull request cannot plant the entry a build of the
/// default branch restores. Entries saved without a ref (before scopes existed) are read last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefScope {
    /// `github.ref` (`refs/heads/main`, `refs/pull/7/head`): where the job's entries go.
    pub own: String,
    /// Read after `own`, in this order.
    pub fallback: Vec<String>,
}

impl RefScope {
    /// The refs in search order: `own`, then `fallback`, each once.
    pub fn search_order(&self) -> Vec<&str> {
        let mut order: Vec<&str> = vec![self.own.as_str()];
        for git_ref in &self.fallback {
            if !order.contains(&git_ref.as_str()) {
                order.push(git_ref);
            }
        }
        order
    }

    /// The scopes a reader with `refs` searches, in order: its refs, then the entries
    /// without a ref (`None`), which are all an unscoped reader sees.
    pub fn scopes_of(refs: Option<&RefScope>) -> Vec<Option<&str>> {
        match refs {
            Some(refs) => refs
                .search_order()
                .into_iter()
                .map(Some)
                .chain([None])
                .collect(),
            None => vec![None],
        }
    }
}

impl JobIdentity {
    /// The ref the job's entries are saved under (`None`: unscoped).
    pub fn write_ref(&self) -> Option<&str> {
        self.refs.as_ref().map(|refs| refs.own.as_str())
    }
}

/// Why a request's job token was refused; every variant is a 401 whose text the client shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No token in the URL path nor an `Authorization: Bearer` header.
    #[error("no cache token: expected one in ACTIONS_CACHE_URL or `Authorization: Bearer`")]
    Missing,
    /// Not three base64url parts with a JSON payload of ours.
    #[error("the cache token is malformed")]
    Malformed,
    /// The signature does not match this server's key.
    #[error(
        "the cache token is not signed with this cache server's secret (the runner's and the \
         server's cache.shared_secret must be the same)"
    )]
    Signature,
    /// Past its expiry (the job's timeout plus a margin).
    #[error("the cache token expired {seconds_ago} s ago")]
    Expired {
        /// How long ago.
        seconds_ago: u64,
    },
    /// Its job ended and the runner revoked it.
    #[error("the cache token was revoked: its job has ended")]
    Revoked,
}

/// Checks the job token of a request: the one in the `ACTIONS_CACHE_URL` path when there is
/// one, else `Authorization: Bearer`.
pub trait TokenVerifier: Send + Sync {
    /// The identity `token` grants.
    fn verify(&self, token: Option<&str>) -> Result<JobIdentity, TokenError>;
}

/// Every request is allowed, as one anonymous identity: all repositories share one cache
/// scope and any client may upload to any reservation. Only for `runnel cache-server
/// --no-auth` behind runners that cannot mint tokens (act_runner configs without a secret).
#[derive(Debug, Default)]
pub struct NoAuth;

impl TokenVerifier for NoAuth {
    fn verify(&self, _token: Option<&str>) -> Result<JobIdentity, TokenError> {
        Ok(JobIdentity {
            repository: String::new(),
            job: String::new(),
            run: String::new(),
            token_id: String::new(),
            refs: None,
        })
    }
}

/// What a signed URL allows; part of the signed message so a download signature cannot be
/// replayed as an upload one.
#[derive(Clone, Copy, Debug)]
pub(crate) enum UrlPurpose {
    Download,
    Upload,
    ArtifactDownload,
    ArtifactUpload,
}

impl UrlPurpose {
    fn as_str(self) -> &'static str {
        match self {
            UrlPurpose::Download => "download",
            UrlPurpose::Upload => "upload",
            UrlPurpose::ArtifactDownload => "artifact-download",
            UrlPurpose::ArtifactUpload => "artifact-upload",
        }
    }
}

/// Signs `(purpose, id, expiry)` with a per-process secret. A restart invalidates outstanding
/// URLs, which is fine: they live minutes and the client asks for a fresh one per restore.
pub(crate) struct UrlSigner {
    secret: [u8; 32],
}

impl UrlSigner {
    pub(crate) fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    fn mac(&self, purpose: UrlPurpose, id: u64, expires: u64) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an empty-key MAC
        // rather than panicking if the crate ever changed that.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        mac.update(format!("{}:{id}:{expires}", purpose.as_str()).as_bytes());
        mac
    }

    /// The query string (`exp=…&sig=…`) authorizing `purpose` on `id` for `ttl_secs`.
    pub(crate) fn sign(&self, purpose: UrlPurpose, id: u64, ttl_secs: u64) -> String {
        let expires = unix_now().saturating_add(ttl_secs);
        let sig = hex(&self.mac(purpose, id, expires).finalize().into_bytes());
        format!("exp={expires}&sig={sig}")
    }

    /// Whether `exp`/`sig` from a query authorize `purpose` on `id` now.
    pub(crate) fn verify(&self, purpose: UrlPurpose, id: u64, exp: &str, sig: &str) -> bool {
        let Ok(expires) = exp.parse::<u64>() else {
            return false;
        };
        if expires < unix_now() {
            return false;
        }
        let Some(sig) = unhex(sig) else {
            return false;
        };
        // `verify_slice` compares in constant time.
        self.mac(purpose, id, expires).verify_slice(&sig).is_ok()
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}
