use super::*;

fn user(username: &str, password: &str) -> Lookup {
    Lookup::Found(DockerCredentials {
        username: Some(username.to_owned()),
        password: Some(password.to_owned()),
        ..Default::default()
    })
}

#[test]
fn client_config_entries_are_found_as_the_docker_cli_finds_them() {
    // base64("alice:s3cret:with:colons") and base64("hub:pw")
    let config = serde_json::json!({
        "auths": {
            "127.0.0.1:5000": { "auth": "YWxpY2U6czNjcmV0OndpdGg6Y29sb25z" },
            "https://index.docker.io/v1/": { "auth": "aHViOnB3" },
            "http://plain.example:8080/v2/": { "username": "bob", "password": "pw2" },
            "token.example": { "identitytoken": "tok" },
            "empty.example": {}
        },
        "credHelpers": { "gcr.example": "gcloud" }
    });
    let cases = [
        ("127.0.0.1:5000", user("alice", "s3cret:with:colons")),
        ("docker.io", user("hub", "pw")),
        ("plain.example:8080", user("bob", "pw2")),
        (
            "token.example",
            Lookup::Found(DockerCredentials {
                identitytoken: Some("tok".to_owned()),
                ..Default::default()
            }),
        ),
        ("empty.example", Lookup::Missing),
        ("gcr.example", Lookup::Helper("gcloud".to_owned())),
        ("other.example", Lookup::Missing),
        ("127.0.0.1:5001", Lookup::Missing),
    ];
    for (registry, expected) in cases {
        assert_eq!(lookup(&config, registry), expected, "{registry}");
    }
    // A credential store answers for every registry without a helper of its own.
    let store = serde_json::json!({ "credsStore": "pass", "auths": { "a.example": {} } });
    assert_eq!(
        lookup(&store, "a.example"),
        Lookup::Helper("pass".to_owned())
    );
}

#[test]
fn registries_match_config_keys_with_or_without_scheme_and_path() {
    for (key, registry, same) in [
        ("https://index.docker.io/v1/", "docker.io", true),
        ("registry-1.docker.io", "docker.io", true),
        ("docker.io", "index.docker.io", true),
        ("https://ghcr.io", "ghcr.io", true),
        ("GHCR.io", "ghcr.io", true),
        ("ghcr.io", "docker.io", false),
        ("127.0.0.1:5000", "127.0.0.1", false),
    ] {
        assert_eq!(same_registry(key, registry), same, "{key} vs {registry}");
    }
}

#[tokio::test]
async fn workflow_credentials_win_and_the_client_config_is_read_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"auths": {"127.0.0.1:5000": {"auth": "YWxpY2U6cHc="}}}"#,
    )
    .expect("write config");
    let auth = RegistryAuth::DockerConfigDir(dir.path().to_path_buf());
    let given = ("ci".to_owned(), "token".to_owned());

    let from_workflow = credentials("127.0.0.1:5000", Some(&given), &auth).await;
    assert_eq!(from_workflow.source, Source::Workflow);
    let docker = from_workflow.docker.expect("credentials");
    assert_eq!(docker.username.as_deref(), Some("ci"));
    assert_eq!(docker.serveraddress.as_deref(), Some("127.0.0.1:5000"));

    let from_file = credentials("127.0.0.1:5000", None, &auth).await;
    assert_eq!(
        from_file.source,
        Source::ClientConfig {
            path: dir.path().join("config.json")
        }
    );
    let docker = from_file.docker.expect("credentials");
    assert_eq!(
        (docker.username.as_deref(), docker.password.as_deref()),
        (Some("alice"), Some("pw"))
    );

    let elsewhere = credentials("docker.io", None, &auth).await;
    assert_eq!(elsewhere.source, Source::None);
    assert!(elsewhere.docker.is_none() && elsewhere.problem.is_none());
    let off = credentials("127.0.0.1:5000", None, &RegistryAuth::Off).await;
    assert!(off.docker.is_none());

    std::fs::write(dir.path().join("config.json"), "{not json").expect("write config");
    let broken = credentials("127.0.0.1:5000", None, &auth).await;
    assert!(broken.docker.is_none());
    let problem = broken.problem.expect("a problem");
    assert!(problem.contains("is not JSON"), "{problem}");
    // Sources never show a secret.
    assert!(!Source::Workflow.to_string().contains("token"));
}

#[tokio::test]
async fn credential_helpers_answer_through_their_protocol() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let helper = dir.path().join("docker-credential-fake");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\ncase \"$server\" in\n  \
         known.example) echo '{\"ServerURL\":\"known.example\",\"Username\":\"u\",\"Secret\":\"s\"}' ;;\n  \
         token.example) echo '{\"Username\":\"<token>\",\"Secret\":\"t\"}' ;;\n  \
         *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
    )
    .expect("write helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let known = run_helper(&helper, "known.example").await.expect("answer");
    let known = known.expect("credentials");
    assert_eq!(
        (known.username.as_deref(), known.password.as_deref()),
        (Some("u"), Some("s"))
    );
    let token = run_helper(&helper, "token.example").await.expect("answer");
    assert_eq!(token.and_then(|t| t.identitytoken).as_deref(), Some("t"));
    assert_eq!(run_helper(&helper, "other.example").await, Ok(None));
    let missing = run_helper(&dir.path().join("docker-credential-none"), "x").await;
    assert!(missing.is_err_and(|e| e.contains("docker-credential-none")));
}
