//! Artifacts v4 through HTTP: the real `@actions/artifact` client uploads in one job and lists
//! and downloads in another job of the same run (slow: node and npm), and a table of bad
//! requests gets clear errors.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use http::{Method, StatusCode};
use runnel_cache::{
    CacheServer, CacheServerConfig, DiskStore, DiskStoreConfig, JobTokens, TokenRequest,
};

use crate::harness::send;

struct Artifacts {
    server: CacheServer,
    _dir: tempfile::TempDir,
    /// Job `a` and job `b` of run 1, then a job of run 2.
    tokens: [String; 3],
}

async fn start(max_artifact_size: u64) -> Artifacts {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = DiskStore::open(DiskStoreConfig::new(dir.path().join("cache"), 1 << 30))
        .await
        .expect("open the disk store");
    let verifier = Arc::new(JobTokens::random().expect("a token key"));
    let mut tokens = Vec::new();
    for (run, job) in [("1", "a"), ("1", "b"), ("2", "c")] {
        let request = TokenRequest {
            repository: "owner/repo",
            job,
            run,
            refs: &crate::harness::main_refs(),
            lifetime: std::time::Duration::from_secs(3600),
        };
        tokens.push(verifier.mint(&request).expect("mint a token"));
    }
    let addr = "127.0.0.1:0".parse().expect("literal address");
    let mut config = CacheServerConfig::new(addr, Arc::new(store), verifier);
    config.artifacts_dir = Some(dir.path().join("artifacts"));
    config.max_artifact_size = max_artifact_size;
    let server = CacheServer::bind(config).await.expect("bind");
    let tokens = tokens.try_into().expect("three tokens");
    Artifacts {
        server,
        _dir: dir,
        tokens,
    }
}

impl Artifacts {
    fn origin(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }

    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let url = format!(
            "{}/twirp/github.actions.results.api.v1.ArtifactService/{method}",
            self.origin()
        );
        let reply = send(
            Method::POST,
            &url,
            token,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await;
        (reply.status, reply.json())
    }
}

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-artifact")
}

async fn node(args: &[&str], dir: &Path, env: &[(&str, String)]) -> serde_json::Value {
    let mut command = tokio::process::Command::new(args[0]);
    command
        .args(&args[1..])
        .current_dir(dir)
        .stdin(Stdio::null());
    for name in [
        "ACTIONS_RESULTS_URL",
        "ACTIONS_RUNTIME_TOKEN",
        "GITHUB_SERVER_URL",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.unwrap_or_else(|e| {
        panic!(
            "RUN_SLOW_TESTS=1 but `{}` could not be started ({e}); install node and npm",
            args[0]
        )
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map_or(serde_json::Value::Null, |json| {
            serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_artifact_client_uploads_lists_and_downloads_across_jobs() {
    if std::env::var("RUN_SLOW_TESTS").is_ok_and(|v| v == "1") {
        if !node_dir().join("node_modules/@actions/artifact").exists() {
            node(&["npm", "ci", "--no-audit", "--no-fund"], &node_dir(), &[]).await;
        }
    } else {
        eprintln!("skipping the @actions/artifact client test: set RUN_SLOW_TESTS=1");
        return;
    }
    let server = start(1 << 30).await;
    let script = node_dir().join("artifact_client.js").display().to_string();
    let modules = node_dir().join("node_modules").display().to_string();
    let env = |token: &str| {
        vec![
            ("ACTIONS_RESULTS_URL", format!("{}/", server.origin())),
            ("ACTIONS_RUNTIME_TOKEN", token.to_owned()),
            // The toolkit refuses any other server (GHESNotSupportedError).
            ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
            ("NODE_PATH", modules.clone()),
        ]
    };
    let upload_dir = tempfile::tempdir().expect("scratch");
    let uploaded = node(
        &["node", &script, "upload"],
        upload_dir.path(),
        &env(&server.tokens[0]),
    )
    .await;
    assert!(
        uploaded["id"].as_u64().is_some_and(|id| id > 0),
        "{uploaded}"
    );
    let download_dir = tempfile::tempdir().expect("scratch");
    let downloaded = node(
        &["node", &script, "download"],
        download_dir.path(),
        &env(&server.tokens[1]),
    )
    .await;
    assert_eq!(
        downloaded["names"],
        serde_json::json!(["report"]),
        "{downloaded}"
    );
    assert_eq!(downloaded["foundSize"], uploaded["size"], "{downloaded}");
    assert_eq!(downloaded["text"], "hello artifact", "{downloaded}");
    assert_eq!(downloaded["binSize"], 20 * 1024 * 1024, "{downloaded}");

    // Another run sees nothing of it.
    let ids =
        serde_json::json!({ "workflow_run_backend_id": "2", "workflow_job_run_backend_id": "c" });
    let (status, body) = server
        .call(Some(&server.tokens[2]), "ListArtifacts", ids)
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, serde_json::json!({ "artifacts": [] }))
    );
}

/// What is checked, the token, the method, its body, and the expected status and Twirp code.
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    &'a str,
    serde_json::Value,
    StatusCode,
    &'a str,
);

#[tokio::test]
async fn bad_artifact_requests_get_clear_errors() {
    let server = start(1000).await;
    let token = server.tokens[0].clone();
    let ids = |name: &str| {
        serde_json::json!({
            "workflow_run_backend_id": "1",
            "workflow_job_run_backend_id": "a",
            "name": name,
            "version": 4,
        })
    };
    let cases: Vec<Case<'_>> = vec![
        (
            "no token",
            None,
            "CreateArtifact",
            ids("x"),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "wrong token",
            Some("nope"),
            "CreateArtifact",
            ids("x"),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "another run's ids",
            Some(&server.tokens[2]),
            "CreateArtifact",
            ids("x"),
            StatusCode::FORBIDDEN,
            "permission_denied",
        ),
        (
            "path in the name",
            Some(&token),
            "CreateArtifact",
            ids("../etc"),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        (
            "empty name",
            Some(&token),
            "CreateArtifact",
            ids(""),
            StatusCode::BAD_REQUEST,
            "invalid_argument",
        ),
        (
            "unknown artifact",
            Some(&token),
            "GetSignedArtifactURL",
            ids("ghost"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "finalize without upload",
            Some(&token),
            "FinalizeArtifact",
            ids("ghost"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "delete unknown",
            Some(&token),
            "DeleteArtifact",
            ids("ghost"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "no such method",
            Some(&token),
            "Explode",
            ids("x"),
            StatusCode::NOT_FOUND,
            "bad_route",
        ),
    ];
    for (what, token, method, body, status, code) in cases {
        let (got, reply) = server.call(token, method, body).await;
        assert_eq!(
            (got, reply["code"].as_str()),
            (status, Some(code)),
            "{what}: {reply}"
        );
    }

    // Oversized: the server's limit is 1000 bytes per artifact.
    let (status, created) = server
        .call(Some(&token), "CreateArtifact", ids("big"))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let url = created["signed_upload_url"]
        .as_str()
        .expect("upload URL")
        .to_owned();
    let block = |n: &str| format!("{url}&comp=block&blockid={n}");
    let put = |url: String, body: Vec<u8>| async move {
        send(Method::PUT, &url, None, &[], body).await.status
    };
    assert_eq!(put(block("AAAA"), vec![1; 600]).await, StatusCode::CREATED);
    assert_eq!(
        put(block("AAAB"), vec![2; 600]).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A forged signature, and a block list naming a block never sent.
    let forged = url.replace("sig=", "sig=00");
    assert_eq!(
        put(format!("{forged}&comp=block&blockid=AAAC"), vec![3; 10]).await,
        StatusCode::FORBIDDEN
    );
    let list =
        b"<?xml version=\"1.0\"?><BlockList><Latest>AAAA</Latest><Latest>ZZZZ</Latest></BlockList>"
            .to_vec();
    assert_eq!(
        put(format!("{url}&comp=blocklist"), list).await,
        StatusCode::BAD_REQUEST
    );
    // Nothing was finalized: the artifact is not listed and cannot be downloaded.
    let (status, listed) = server.call(Some(&token), "ListArtifacts", ids("")).await;
    assert_eq!(
        (status, listed),
        (StatusCode::OK, serde_json::json!({ "artifacts": [] }))
    );

    // A good small upload, then a wrong hash at finalize.
    let list = b"<BlockList><Latest>AAAA</Latest></BlockList>".to_vec();
    assert_eq!(
        put(format!("{url}&comp=blocklist"), list).await,
        StatusCode::CREATED
    );
    let mut finalize = ids("big");
    finalize["size"] = serde_json::json!("600");
    finalize["hash"] = serde_json::json!("sha256:00");
    let (status, reply) = server
        .call(Some(&token), "FinalizeArtifact", finalize.clone())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    finalize["hash"] = serde_json::Value::Null;
    let (status, reply) = server
        .call(Some(&token), "FinalizeArtifact", finalize)
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (_, url) = server
        .call(Some(&token), "GetSignedArtifactURL", ids("big"))
        .await;
    let url = url["signed_url"].as_str().expect("download URL").to_owned();
    let download = send(Method::GET, &url, None, &[], Vec::new()).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body, vec![1; 600]);
    assert_eq!(
        download
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/zip")
    );
    let tampered = url.replace("download/", "download/9");
    assert_eq!(
        send(Method::GET, &tampered, None, &[], Vec::new())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The same name again in the same run is refused; delete frees it.
    let (status, _) = server
        .call(Some(&token), "CreateArtifact", ids("big"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = server
        .call(Some(&token), "DeleteArtifact", ids("big"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(Some(&token), "GetSignedArtifactURL", ids("big"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A block list may name one block several times (Azure allows it); the artifact's size is
/// what the list assembles, so naming a 600-byte block twice against a 1000-byte limit is
/// refused instead of writing 1200 bytes (or 600 bytes times fifty thousand).
#[tokio::test]
async fn a_block_list_repeating_a_block_cannot_pass_the_size_limit() {
    let server = start(1000).await;
    let token = server.tokens[0].clone();
    let ids = serde_json::json!({
        "workflow_run_backend_id": "1",
        "workflow_job_run_backend_id": "a",
        "name": "repeated",
        "version": 4,
    });
    let (status, created) = server
        .call(Some(&token), "CreateArtifact", ids.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let url = created["signed_upload_url"]
        .as_str()
        .expect("upload URL")
        .to_owned();
    let put = |url: String, body: Vec<u8>| async move {
        let reply = send(Method::PUT, &url, None, &[], body).await;
        (
            reply.status,
            String::from_utf8_lossy(&reply.body).into_owned(),
        )
    };
    let block = format!("{url}&comp=block&blockid=AAAA");
    assert_eq!(put(block, vec![1; 600]).await.0, StatusCode::CREATED);
    let list = |times: usize| {
        let blocks = "<Latest>AAAA</Latest>".repeat(times);
        format!("<BlockList>{blocks}</BlockList>").into_bytes()
    };
    let (status, message) = put(format!("{url}&comp=blocklist"), list(2)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{message}");
    assert!(message.contains("1200"), "says how big: {message}");
    // Nothing assembled: finalize has no content to check.
    let mut finalize = ids.clone();
    finalize["size"] = serde_json::json!("1200");
    let (status, reply) = server
        .call(Some(&token), "FinalizeArtifact", finalize)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    // Once is within the limit.
    assert_eq!(
        put(format!("{url}&comp=blocklist"), list(1)).await.0,
        StatusCode::CREATED
    );
    let mut finalize = ids;
    finalize["size"] = serde_json::json!("600");
    let (status, reply) = server
        .call(Some(&token), "FinalizeArtifact", finalize)
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}
