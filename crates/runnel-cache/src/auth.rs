//! Who may call the service: per-job bearer tokens ([`TokenVerifier`]) and the HMAC-signed URLs
//! handed out for archive downloads and v2 uploads (the toolkit sends no token on those).
//!
//! Owns: token lookup and URL signatures. Must not: parse HTTP or touch the store.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a valid job token grants: the repository whose caches the job may read, and the job
/// that owns the entries it reserves (only that job may upload to or commit them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobIdentity {
    /// Caches are scoped to this repository (`owner/name`), as in Gitea's runner.
    pub repository: String,
    /// An opaque job id; reservations remember it.
    pub job: String,
    /// The workflow run the job belongs to: artifacts are shared by the jobs of one run.
    pub run: String,
}

/// Checks the `Authorization: Bearer` token of a request.
pub trait TokenVerifier: Send + Sync {
    /// The identity the token grants, or `None` when it is unknown or revoked.
    fn verify(&self, token: &str) -> Option<JobIdentity>;
}

/// Tokens registered in memory for a job's lifetime: the daemon inserts the job's
/// `ACTIONS_RUNTIME_TOKEN` when the job starts and revokes it when the job ends.
#[derive(Debug, Default)]
pub struct MapTokenVerifier {
    tokens: RwLock<HashMap<String, JobIdentity>>,
}

impl MapTokenVerifier {
    /// An empty verifier: every request is refused until a token is inserted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Grants `identity` to requests bearing `token`.
    pub fn insert(&self, token: &str, identity: JobIdentity) {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        let mut tokens = self
            .tokens
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.insert(token.to_owned(), identity);
    }

    /// Forgets `token`; later requests bearing it are refused.
    pub fn revoke(&self, token: &str) {
        let mut tokens = self
            .tokens
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.remove(token);
    }
}

impl TokenVerifier for MapTokenVerifier {
    fn verify(&self, token: &str) -> Option<JobIdentity> {
        if token.is_empty() {
            return None;
        }
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.get(token).cloned()
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
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

/// Mints a job's `ACTIONS_RUNTIME_TOKEN` for a local run: JWT-shaped, because
/// `@actions/artifact` decodes the payload (without checking the signature) and needs the
/// `scp` claim `Actions.Results:<run>:<job>`. The server itself never trusts the payload: a
/// token is valid only while it is registered in the [`TokenVerifier`], and 32 random bytes
/// make it unguessable.
pub fn mint_runtime_token(run: &str, job: &str) -> Result<String, getrandom::Error> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)?;
    let header = serde_json::json!({ "alg": "HS256", "typ": "JWT" });
    let expires = unix_now().saturating_add(24 * 3600);
    let payload = serde_json::json!({
        "iss": "runnel",
        "scp": format!("Actions.GenericRead:00000000-0000-0000-0000-000000000000 Actions.Results:{run}:{job}"),
        "exp": expires,
        "jti": hex(&random[..16]),
    });
    Ok(format!(
        "{}.{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(payload.to_string().as_bytes()),
        base64url(&random[16..])
    ))
}

/// Unpadded base64url (RFC 4648 section 5), as JWT segments use.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64url;

    #[test]
    fn base64url_matches_rfc4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
            ("\u{fb}\u{ff}", "w7vDvw"),
        ] {
            assert_eq!(base64url(input.as_bytes()), expected, "{input:?}");
        }
    }
}
