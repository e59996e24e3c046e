use std::time::Duration;

use hmac::Mac as _;

use super::{JobTokens, TokenRequest, base64url, looks_like_token, mac, unbase64url};
use crate::auth::{RefScope, TokenError, TokenVerifier, unix_now};

/// A pull request's job: its own ref, then its base branch and the default branch.
static PULL_REQUEST: std::sync::LazyLock<RefScope> = std::sync::LazyLock::new(|| RefScope {
    own: "refs/pull/3/head".to_owned(),
    fallback: vec!["refs/heads/dev".to_owned(), "refs/heads/main".to_owned()],
});

fn request(repository: &str, lifetime: Duration) -> TokenRequest<'_> {
    TokenRequest {
        repository,
        job: "build",
        run: "7",
        refs: &PULL_REQUEST,
        lifetime,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_minted_token_grants_its_repository_until_it_expires() {
    let tokens = JobTokens::from_secret(b"fleet secret of some length");
    let token = tokens.mint(&request("owner/a", HOUR)).expect("mint");
    let identity = tokens.verify(Some(&token)).expect("valid");
    assert_eq!(
        (identity.repository.as_str(), identity.job.as_str()),
        ("owner/a", "build")
    );
    assert_eq!((identity.run.as_str(), identity.token_id.len()), ("7", 32));
    // Another process with the same secret (a cache server) accepts it too.
    let server = JobTokens::from_secret(b"fleet secret of some length");
    assert_eq!(server.verify(Some(&token)), Ok(identity.clone()));
    // Each token is its own grant, even for the same job.
    let again = tokens.mint(&request("owner/a", HOUR)).expect("mint");
    let other = server.verify(Some(&again)).expect("valid");
    assert_ne!(other.token_id, identity.token_id);

    let now = unix_now();
    assert!(server.verify_at(&token, now + 3599).is_ok());
    assert_eq!(
        server.verify_at(&token, now + 3600 + 42),
        Err(TokenError::Expired { seconds_ago: 42 })
    );
    let short = tokens
        .mint(&request("owner/a", Duration::ZERO))
        .expect("mint");
    assert!(
        matches!(server.verify(Some(&short)), Err(TokenError::Expired { .. })),
        "a token whose lifetime is over"
    );
}

#[test]
fn a_token_signed_with_another_secret_or_altered_is_refused() {
    let runner = JobTokens::from_secret(b"the runner's secret");
    let server = JobTokens::from_secret(b"the server's secret");
    let token = runner.mint(&request("owner/a", HOUR)).expect("mint");
    assert_eq!(server.verify(Some(&token)), Err(TokenError::Signature));
    assert_eq!(server.verify(None), Err(TokenError::Missing));
    assert_eq!(server.verify(Some("")), Err(TokenError::Missing));

    // Swapping the payload for one naming another repository breaks the signature.
    let parts: Vec<&str> = token.split('.').collect();
    let payload = String::from_utf8(unbase64url(parts[1]).expect("base64url")).expect("utf-8");
    let payload = payload.replace("owner/a", "owner/b");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64url(payload.as_bytes()),
        parts[2]
    );
    assert_eq!(runner.verify(Some(&forged)), Err(TokenError::Signature));

    for malformed in ["a.b", "a.b.c.d", "not a token", "...", &"x".repeat(5000)] {
        assert!(
            matches!(
                runner.verify(Some(malformed)),
                Err(TokenError::Malformed | TokenError::Signature)
            ),
            "{malformed:?}"
        );
    }
}

#[test]
fn a_revoked_token_is_refused_by_the_process_that_revoked_it() {
    let tokens = JobTokens::random().expect("random key");
    let token = tokens.mint(&request("owner/a", HOUR)).expect("mint");
    let kept = tokens.mint(&request("owner/a", HOUR)).expect("mint");
    tokens.revoke(&token);
    assert_eq!(tokens.verify(Some(&token)), Err(TokenError::Revoked));
    assert!(tokens.verify(Some(&kept)).is_ok());
    // Revoking garbage or a foreign token changes nothing.
    tokens.revoke("garbage");
    tokens.revoke(
        &JobTokens::random()
            .expect("key")
            .mint(&request("x/y", HOUR))
            .expect("mint"),
    );
    assert!(tokens.verify(Some(&kept)).is_ok());
}

#[test]
fn the_payload_is_what_the_artifact_client_decodes() {
    let tokens = JobTokens::random().expect("random key");
    let token = tokens.mint(&request("owner/a", HOUR)).expect("mint");
    assert!(looks_like_token(&token), "{token}");
    let payload = token.split('.').nth(1).expect("payload");
    let claims: serde_json::Value =
        serde_json::from_slice(&unbase64url(payload).expect("b64")).expect("JSON");
    let scp = claims["scp"].as_str().expect("scp");
    assert!(
        scp.split(' ').any(|s| s == "Actions.Results:7:build"),
        "{scp}"
    );
    assert_eq!(claims["repository"], "owner/a");
}

#[test]
fn base64url_matches_rfc4648_both_ways() {
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
        assert_eq!(
            unbase64url(expected).as_deref(),
            Some(input.as_bytes()),
            "{expected:?}"
        );
    }
    assert_eq!(unbase64url("Z"), None);
    assert_eq!(unbase64url("Zm9v+A"), None);
    assert!(!looks_like_token("prefix-token"));
    assert!(!looks_like_token("a.b"));
}

#[test]
fn the_ref_scope_is_signed_and_tokens_without_one_are_unscoped() {
    let tokens = JobTokens::from_secret(b"fleet secret of some length");
    let token = tokens.mint(&request("owner/a", HOUR)).expect("mint");
    let identity = tokens.verify(Some(&token)).expect("valid");
    assert_eq!(identity.refs.as_ref(), Some(&*PULL_REQUEST));
    assert_eq!(identity.write_ref(), Some("refs/pull/3/head"));

    // Claiming the default branch as its own ref breaks the signature.
    let parts: Vec<&str> = token.split('.').collect();
    let payload = String::from_utf8(unbase64url(parts[1]).expect("base64url")).expect("utf-8");
    let payload = payload.replace("refs/pull/3/head", "refs/heads/main");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64url(payload.as_bytes()),
        parts[2]
    );
    assert_eq!(tokens.verify(Some(&forged)), Err(TokenError::Signature));

    // What a runner from before scopes mints (no `ref` claim): valid, and unscoped.
    let now = unix_now();
    let old = serde_json::json!({
        "iss": "runnel", "scp": "", "iat": now, "exp": now + 60, "jti": "00",
        "repository": "owner/a", "job": "build", "run": "7",
    });
    let signed = format!(
        "{}.{}",
        super::HEADER,
        base64url(old.to_string().as_bytes())
    );
    let signature = mac(&tokens.key, &[signed.as_bytes()])
        .finalize()
        .into_bytes();
    let old = format!("{signed}.{}", base64url(&signature));
    let identity = tokens.verify(Some(&old)).expect("an old token stays valid");
    assert_eq!(
        (identity.repository.as_str(), identity.refs),
        ("owner/a", None)
    );
}
