//! [`JobTokens`]: the per-job tokens a runner mints and a cache server checks without the two
//! ever talking to each other — HS256 JWTs whose claims carry the repository, the git refs
//! the job may restore from and the one it saves to ([`RefScope`]), the job, the run and an
//! expiry, signed with a key derived from a secret both sides are given
//! (`cache.shared_secret`), or from random bytes when runner and server are one process.
//!
//! JWT-shaped because `@actions/artifact` decodes the payload of `ACTIONS_RUNTIME_TOKEN`
//! (without checking the signature) and needs the `scp` claim `Actions.Results:<run>:<job>`;
//! the same token therefore serves the artifact service of a local run. The server never trusts
//! a claim before the signature checked out, never reads the header's `alg` (it is always
//! HS256 here), and refuses a token past `exp`. Revocation (the job ended) is a list in memory,
//! so it only reaches a server in the process that minted the token; other servers rely on the
//! expiry, which is the job's timeout (capped by the runner's) plus a margin.
//!
//! Owns: the token format and its keys. Must not: know HTTP or where a token came from.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::{JobIdentity, RefScope, TokenError, TokenVerifier, hex, unix_now};

/// `{"alg":"HS256","typ":"JWT"}`, base64url: the only header this module writes.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
const ISSUER: &str = "runnel";
/// Longer tokens are refused before any decoding (ours are a few hundred bytes).
const MAX_TOKEN_LEN: usize = 4096;
/// Domain separation: the token key is derived, never the secret itself, so the same secret
/// could key something else later without a token ever verifying there.
const KEY_LABEL: &[u8] = b"runnel cache job token v1";

/// What a minted token grants; see [`JobIdentity`] for each field.
#[derive(Clone, Copy, Debug)]
pub struct TokenRequest<'a> {
    /// `owner/name`: the only repository whose caches the token reads and writes.
    pub repository: &'a str,
    /// The job's key.
    pub job: &'a str,
    /// The run's id.
    pub run: &'a str,
    /// The refs whose entries the job restores, and the one it saves to.
    pub refs: &'a RefScope,
    /// How long the token is valid: the job's timeout plus a margin.
    pub lifetime: Duration,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    scp: String,
    iat: u64,
    exp: u64,
    jti: String,
    repository: String,
    job: String,
    run: String,
    /// The ref the job saves to; absent in tokens minted before scopes existed, which are
    /// unscoped (a server reading them then still works with runners not yet upgraded).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    git_ref: Option<String>,
    /// Refs read after `ref`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    restore_refs: Vec<String>,
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
#[error("drawing random bytes for a cache token")]
pub struct MintError(#[source] getrandom::Error);

/// Mints and verifies job tokens with one key; see the module docs.
pub struct JobTokens {
    key: [u8; 32],
    /// Revoked token ids with their expiry (dropped once expired: the expiry refuses them then).
    revoked: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for JobTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobTokens").finish_non_exhaustive()
    }
}

impl JobTokens {
    /// Tokens keyed by `secret`, which every runner and cache server of a fleet share.
    pub fn from_secret(secret: &[u8]) -> Self {
        let key: [u8; 32] = mac(secret, &[KEY_LABEL]).finalize().into_bytes().into();
        Self {
            key,
            revoked: Mutex::new(HashMap::new()),
        }
    }

    /// Tokens keyed by random bytes: for a server in the minting process only.
    pub fn random() -> Result<Self, MintError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(MintError)?;
        Ok(Self::from_secret(&secret))
    }

    /// A token granting `request` until `request.lifetime` from now.
    pub fn mint(&self, request: &TokenRequest<'_>) -> Result<String, MintError> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(MintError)?;
        let now = unix_now();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            scp: format!(
                "Actions.GenericRead:00000000-0000-0000-0000-000000000000 Actions.Results:{}:{}",
                request.run, request.job
            ),
            iat: now,
            exp: now.saturating_add(request.lifetime.as_secs()),
            jti: hex(&random),
            repository: request.repository.to_owned(),
            job: request.job.to_owned(),
            run: request.run.to_owned(),
            git_ref: Some(request.refs.own.clone()),
            restore_refs: request.refs.fallback.clone(),
        };
        // Serializing a struct of strings and integers cannot fail.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signed = format!("{HEADER}.{}", base64url(&payload));
        let signature = mac(&self.key, &[signed.as_bytes()]).finalize().into_bytes();
        Ok(format!("{signed}.{}", base64url(&signature)))
    }

    /// Refuses `token` from now on in this process (its job ended).
    pub fn revoke(&self, token: &str) {
        let now = unix_now();
        let Ok(claims) = self.claims(token) else {
            return;
        };
        let mut revoked = self
            .revoked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        revoked.retain(|_, exp| *exp > now);
        if claims.exp > now {
            revoked.insert(claims.jti, claims.exp);
        }
    }

    /// The claims of a token whose signature checks out (expiry not checked).
    fn claims(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (_header, payload) = signed.split_once('.').ok_or(TokenError::Malformed)?;
        if payload.contains('.') {
            return Err(TokenError::Malformed);
        }
        let signature = unbase64url(signature).ok_or(TokenError::Malformed)?;
        // `verify_slice` compares in constant time.
        mac(&self.key, &[signed.as_bytes()])
            .verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;
        let payload = unbase64url(payload).ok_or(TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.iss != ISSUER {
            return Err(TokenError::Malformed);
        }
        Ok(claims)
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<JobIdentity, TokenError> {
        let claims = self.claims(token)?;
        if now >= claims.exp {
            return Err(TokenError::Expired {
                seconds_ago: now - claims.exp,
            });
        }
        let revoked = self
            .revoked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if revoked.contains_key(&claims.jti) {
            return Err(TokenError::Revoked);
        }
        let refs = claims.git_ref.map(|own| RefScope {
            own,
            fallback: claims.restore_refs,
        });
        Ok(JobIdentity {
            repository: claims.repository,
            job: claims.job,
            run: claims.run,
            token_id: claims.jti,
            refs,
        })
    }
}

impl TokenVerifier for JobTokens {
    fn verify(&self, token: Option<&str>) -> Result<JobIdentity, TokenError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        self.verify_at(token, unix_now())
    }
}

/// Whether a URL path segment has the shape of a token: three base64url parts. The v1 base URL
/// carries the token as its last segment (daemon jobs send Gitea's token as the bearer).
pub(crate) fn looks_like_token(segment: &str) -> bool {
    (16..=MAX_TOKEN_LEN).contains(&segment.len())
        && segment.matches('.').count() == 2
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail; an empty-key MAC rather than a
    // panic if the crate ever changed that.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    for part in parts {
        mac.update(part);
    }
    mac
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url (RFC 4648 section 5), as JWT segments use.
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// The inverse of [`base64url`]; `None` on any other character or an impossible length.
fn unbase64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, byte) in chunk.iter().enumerate() {
            let value = ALPHABET.iter().position(|a| a == byte)?;
            n |= (value as u32) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests;
