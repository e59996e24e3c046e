//! A fleet's shared cache through the real binaries: one `runnel cache-server` and several
//! `runnel run` processes pointing `--cache-external-server` at it with the same
//! `--cache-secret-file`. The runs mint their jobs' tokens without talking to the server; it
//! checks them statelessly. A token reads its own repository only; a wrong secret or an
//! expired token gets a 401 that says why (in the job log, as `@actions/cache` shows it);
//! without a secret jobs get the URL alone and the server has to run `--no-auth`. SIGTERM
//! stops the server cleanly. The curl cases need the binary and curl; the `@actions/cache`
//! case is slow (node and npm).

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use runnel_cache::{JobTokens, RefScope, TokenRequest};

use crate::cache_support::{
    CacheServerProcess, curl_workflow, keys, node_packages, slow_or_skip, write_cache_job,
    write_workflow,
};
use crate::support::{run_expecting, runnel};

const SECRET: &str = "fleet-secret-0123456789abcdef";

/// A server directory holding `cache-secret` and a `config.yaml` naming it and `store/`.
fn server_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("server dir");
    std::fs::write(dir.path().join("cache-secret"), format!("{SECRET}\n")).expect("secret");
    std::fs::write(
        dir.path().join("config.yaml"),
        "cache:\n  dir: store\n  shared_secret_file: cache-secret\n",
    )
    .expect("config");
    dir
}

/// `runnel run` of `text` in a fresh workspace with its own local cache directory, using the
/// cache server at `url` (and `secret_file`, when given).
fn run_with(url: &str, secret_file: Option<&Path>, text: &str, codes: &[i32]) -> Output {
    run_event(url, secret_file, &[], text, codes)
}

/// [`run_with`] with the event arguments of `runnel run` (name, `--ref`, `-e FILE`).
fn run_event(
    url: &str,
    secret_file: Option<&Path>,
    event: &[&str],
    text: &str,
    codes: &[i32],
) -> Output {
    let workspace = tempfile::tempdir().expect("workspace");
    write_workflow(workspace.path(), text);
    let local = tempfile::tempdir().expect("local cache dir");
    let mut command = runnel();
    command
        .current_dir(workspace.path())
        .arg("run")
        .args(event)
        .arg("--cache-server-path")
        .arg(local.path())
        .args(["--cache-external-server", url])
        .env("NO_COLOR", "1");
    if let Some(file) = secret_file {
        command.arg("--cache-secret-file").arg(file);
    }
    run_expecting(command, None, codes)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn runnel_runs_share_a_cache_server_that_checks_their_tokens() {
    let dir = server_dir();
    let mut server = CacheServerProcess::start(dir.path(), &["-c", "config.yaml"]);
    let secret = dir.path().join("cache-secret");
    let mut save = curl_workflow(&keys(&["deps-1", "tools-1"]), &[]);
    save.push_str("      - run: echo \"url=$ACTIONS_CACHE_URL\"\n");
    let saved = stdout(&run_with(&server.url, Some(&secret), &save, &[0]));
    // The token is the URL's last segment, masked like the runtime token.
    assert!(
        saved.contains(&format!("url={}***/", server.url)),
        "{saved}"
    );

    let restore = curl_workflow(&[], &keys(&["deps-1", "tools-1"]));
    let restored = stdout(&run_with(&server.url, Some(&secret), &restore, &[0]));
    assert!(
        restored.contains("GOT deps-1 data-deps-1")
            && restored.contains("GOT tools-1 data-tools-1"),
        "{restored}"
    );
    let status = server.stop();
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(server.log().contains("stopping"), "{}", server.log());
}

/// `curl` of one call: (HTTP status, body).
fn curl(method: &str, url: &str, body: &str, headers: &[&str]) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-sS", "-X", method, "-w", "\n%{http_code}", url]);
    for header in headers {
        command.args(["-H", header]);
    }
    if !body.is_empty() {
        command.args(["--data-binary", body]);
    }
    let output = command.output().unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn token(tokens: &JobTokens, repository: &str, lifetime: Duration) -> String {
    let refs = RefScope {
        own: "refs/heads/main".to_owned(),
        fallback: Vec::new(),
    };
    let request = TokenRequest {
        repository,
        job: "build",
        run: "1",
        refs: &refs,
        lifetime,
    };
    tokens.mint(&request).expect("mint")
}

#[test]
fn a_token_reads_and_writes_its_own_repository_only() {
    let dir = server_dir();
    let mut server = CacheServerProcess::start(dir.path(), &["-c", "config.yaml"]);
    // What a runner with the same secret mints.
    let runner = JobTokens::from_secret(SECRET.as_bytes());
    let hour = Duration::from_secs(3600);
    let repo_a = token(&runner, "owner/a", hour);
    let repo_b = token(&runner, "owner/b", hour);
    let api = |token: &str, rest: &str| format!("{}{token}/_apis/artifactcache/{rest}", server.url);
    let json = "Content-Type: application/json";

    let (status, reply) = curl(
        "POST",
        &api(&repo_a, "caches"),
        r#"{"key":"k-1","version":"v"}"#,
        &[json],
    );
    assert_eq!(status, 200, "{reply}");
    let id: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
    let id = id["cacheId"].as_u64().expect("cacheId");
    let chunk = api(&repo_a, &format!("caches/{id}"));
    // Repository B cannot write A's upload.
    let (status, _) = curl(
        "PATCH",
        &api(&repo_b, &format!("caches/{id}")),
        "abc",
        &["Content-Range: bytes 0-2/*"],
    );
    assert_eq!(status, 404);
    assert_eq!(
        curl("PATCH", &chunk, "abc", &["Content-Range: bytes 0-2/*"]).0,
        204
    );
    assert_eq!(curl("POST", &chunk, r#"{"size":3}"#, &[json]).0, 204);

    let lookup = |token: &str| curl("GET", &api(token, "cache?keys=k-&version=v"), "", &[]);
    let (status, reply) = lookup(&repo_a);
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains(r#""cacheKey":"k-1""#), "{reply}");
    assert_eq!(lookup(&repo_b).0, 204, "B sees none of A's entries");

    let stranger = JobTokens::from_secret(b"another fleet's secret");
    let (status, reply) = lookup(&token(&stranger, "owner/a", hour));
    assert_eq!(status, 401);
    assert!(reply.contains("cache.shared_secret"), "{reply}");
    let (status, reply) = lookup(&token(&runner, "owner/a", Duration::ZERO));
    assert_eq!(status, 401);
    assert!(reply.contains("expired"), "{reply}");
    let (status, _) = curl(
        "GET",
        &format!("{}_apis/artifactcache/cache?keys=k&version=v", server.url),
        "",
        &[],
    );
    assert_eq!(status, 401, "no token at all");

    assert!(server.stop().success(), "{}", server.log());
    assert!(
        server
            .log()
            .contains("not signed with this cache server's secret"),
        "the operator sees the wrong secret: {}",
        server.log()
    );
}

/// GitHub's cache isolation through the binaries: a pull request's run saves a newer entry
/// under a restore-key prefix the default branch uses; the default branch's runs keep
/// restoring their own entry, while the pull request restores its own first and can read the
/// default branch's. The scope rides in the token the runner minted.
#[test]
fn a_pull_request_run_cannot_plant_what_the_default_branch_restores() {
    let dir = server_dir();
    let mut server = CacheServerProcess::start(dir.path(), &["-c", "config.yaml"]);
    let secret = dir.path().join("cache-secret");
    let both = |text: String| text.replacen("on: push", "on: [push, pull_request]", 1);
    let main: &[&str] = &["push", "--ref", "refs/heads/main"];
    let payloads = tempfile::tempdir().expect("payload dir");
    let pull_request = |number: u32| {
        let payload = serde_json::json!({
            "action": "opened",
            "number": number,
            "pull_request": {
                "number": number,
                "base": { "ref": "main" },
                "head": { "ref": format!("feature-{number}") },
            },
            "repository": { "default_branch": "main" },
        });
        let path = payloads.path().join(format!("pr-{number}.json"));
        std::fs::write(&path, payload.to_string()).expect("payload");
        vec![
            "pull_request".to_owned(),
            "--ref".to_owned(),
            format!("refs/pull/{number}/head"),
            "-e".to_owned(),
            path.display().to_string(),
        ]
    };
    let pr_1 = pull_request(1);
    let pr_1: Vec<&str> = pr_1.iter().map(String::as_str).collect();
    let pr_2 = pull_request(2);
    let pr_2: Vec<&str> = pr_2.iter().map(String::as_str).collect();
    let save = |event: &[&str], key: &str| {
        let text = both(curl_workflow(&keys(&[key]), &[]));
        stdout(&run_event(&server.url, Some(&secret), event, &text, &[0]))
    };
    let restore = |event: &[&str], key: &str| {
        let text = both(curl_workflow(&[], &keys(&[key])));
        stdout(&run_event(&server.url, Some(&secret), event, &text, &[0]))
    };

    save(main, "deps-main");
    // Newer, and matching the default branch's restore key `deps-`.
    save(&pr_1, "deps-pr");
    let on_main = restore(main, "deps-");
    assert!(on_main.contains("GOT deps- data-deps-main"), "{on_main}");
    let on_pr = restore(&pr_1, "deps-");
    assert!(on_pr.contains("GOT deps- data-deps-pr"), "{on_pr}");
    let on_pr = restore(&pr_1, "deps-main");
    assert!(on_pr.contains("GOT deps-main data-deps-main"), "{on_pr}");
    let on_other_pr = restore(&pr_2, "deps-");
    assert!(
        on_other_pr.contains("GOT deps- data-deps-main"),
        "{on_other_pr}"
    );
    assert!(server.stop().success(), "{}", server.log());
}

#[test]
fn without_a_secret_jobs_get_the_url_alone_and_the_server_needs_no_auth() {
    let dir = tempfile::tempdir().expect("server dir");
    // A server must be told to check nothing.
    let mut refused = runnel();
    refused
        .current_dir(dir.path())
        .args(["cache-server", "--addr", "127.0.0.1", "--dir", "store"]);
    let refused = run_expecting(refused, None, &[2]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--no-auth"),
        "{refused:?}"
    );

    let mut server = CacheServerProcess::start(dir.path(), &["--dir", "store", "--no-auth"]);
    let mut text = curl_workflow(&keys(&["open-1"]), &keys(&["open-1"]));
    text.push_str("      - run: echo \"url=$ACTIONS_CACHE_URL\"\n");
    let output = run_with(&server.url, None, &text, &[0]);
    let out = stdout(&output);
    assert!(out.contains("GOT open-1 data-open-1"), "{out}");
    assert!(out.contains(&format!("url={}\n", server.url)), "{out}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cache.external_server is set without cache.shared_secret"),
        "the runner's cache service warns through the log on stderr: {stderr}"
    );
    assert!(server.stop().success(), "{}", server.log());
    assert!(
        server.log().contains("--no-auth: any client"),
        "the server warns: {}",
        server.log()
    );
}

#[test]
fn actions_cache_saves_in_one_run_and_restores_in_another_through_the_cache_server() {
    let test = "actions_cache_saves_in_one_run_and_restores_in_another_through_the_cache_server";
    if !slow_or_skip(test, "node and npm") {
        return;
    }
    let modules = node_packages("node", "@actions/cache");
    let scripts = tempfile::tempdir().expect("scripts");
    let script = write_cache_job(scripts.path());
    let step = |args: &str| {
        format!(
            "on: push\njobs:\n  cache:\n    runs-on: ubuntu-latest\n    steps:\n      - run: node {} {args}\n        env:\n          NODE_PATH: {}\n",
            script.display(),
            modules.display()
        )
    };
    let dir = server_dir();
    let mut server = CacheServerProcess::start(dir.path(), &["-c", "config.yaml"]);
    let secret = dir.path().join("cache-secret");
    let saved = stdout(&run_with(
        &server.url,
        Some(&secret),
        &step("save fleet-1"),
        &[0],
    ));
    assert!(saved.contains("SAVED ok"), "{saved}");
    let restored = stdout(&run_with(
        &server.url,
        Some(&secret),
        &step("restore fleet-missing fleet-"),
        &[0],
    ));
    assert!(
        restored.contains("RESTORED fleet-1 saved-by-fleet-1"),
        "{restored}"
    );

    // A runner with another secret: the client's warnings carry the server's reason.
    let wrong = dir.path().join("wrong-secret");
    std::fs::write(&wrong, "not-the-fleet-secret-at-all").expect("write");
    let refused = stdout(&run_with(
        &server.url,
        Some(&wrong),
        &step("restore fleet-1 fleet-"),
        &[0],
    ));
    assert!(
        refused.contains("Failed to restore: Cache service responded with 401")
            && refused.contains("RESTORED undefined none"),
        "{refused}"
    );
    let refused = stdout(&run_with(
        &server.url,
        Some(&wrong),
        &step("save fleet-2"),
        &[0],
    ));
    assert!(
        refused.contains("not signed with this cache server's secret")
            && refused.contains("SAVED skipped"),
        "{refused}"
    );
    assert!(server.stop().success(), "{}", server.log());
}
