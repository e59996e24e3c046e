//! The real client: `@actions/cache` from npm (the library inside `actions/cache`) saves and
//! restores a directory against our server, once per protocol. Slow: needs node and npm, and
//! runs `npm ci` into `tests/node` (its `node_modules` is git-ignored).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::harness::{Harness, TOKEN};

fn slow_tests_enabled() -> bool {
    std::env::var("RUN_SLOW_TESTS").is_ok_and(|v| v == "1")
}

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("node")
}

async fn run(program: &str, args: &[&str], dir: &Path, env: &[(&str, String)]) -> String {
    let mut command = tokio::process::Command::new(program);
    command.args(args).current_dir(dir).stdin(Stdio::null());
    // The toolkit decides the protocol from these; start from a clean slate.
    for name in [
        "ACTIONS_CACHE_URL",
        "ACTIONS_RESULTS_URL",
        "ACTIONS_CACHE_SERVICE_V2",
        "ACTIONS_RUNTIME_TOKEN",
        "GITHUB_SERVER_URL",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().await.unwrap_or_else(|e| {
        panic!("RUN_SLOW_TESTS=1 but `{program}` could not be started ({e}); install node and npm")
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{program} {args:?}` failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
}

async fn save_and_restore(env: &[(&str, String)]) -> serde_json::Value {
    let work = tempfile::tempdir().expect("scratch dir");
    let temp = tempfile::tempdir().expect("runner temp");
    let script = node_dir().join("save_restore.js");
    let mut env = env.to_vec();
    env.push(("ACTIONS_RUNTIME_TOKEN", TOKEN.to_owned()));
    env.push(("RUNNER_TEMP", temp.path().display().to_string()));
    env.push(("GITHUB_WORKSPACE", work.path().display().to_string()));
    env.push((
        "NODE_PATH",
        node_dir().join("node_modules").display().to_string(),
    ));
    let script = script.display().to_string();
    let stdout = run("node", &[&script], work.path(), &env).await;
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}"));
    serde_json::from_str(line).expect("RESULT is JSON")
}

fn check(protocol: &str, result: &serde_json::Value) {
    eprintln!("{protocol}: {result}");
    let expect = [
        ("exactKey", serde_json::json!("runnel-node-first")),
        ("exactContent", serde_json::json!("first")),
        ("fallbackKey", serde_json::json!("runnel-node-second")),
        ("fallbackContent", serde_json::json!("second")),
        ("missKey", serde_json::Value::Null),
        ("missContent", serde_json::Value::Null),
        // A second save of an existing key: refused by the server, skipped by the client.
        ("saveAgain", serde_json::json!(-1)),
    ];
    for (field, value) in expect {
        assert_eq!(result[field], value, "{protocol}: {field} in {result}");
    }
    for field in ["saveFirst", "saveSecond"] {
        assert!(
            result[field].as_i64().is_some_and(|id| id > 0),
            "{protocol}: {field} in {result}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_cache_client_saves_and_restores() {
    if !slow_tests_enabled() {
        eprintln!("skipping the @actions/cache client test: set RUN_SLOW_TESTS=1");
        return;
    }
    run("npm", &["ci", "--no-audit", "--no-fund"], &node_dir(), &[]).await;

    // v1, as on Gitea: GITHUB_SERVER_URL is not github.com, so the client never picks v2.
    let h = Harness::new(1 << 30).await;
    let v1 = save_and_restore(&[
        ("ACTIONS_CACHE_URL", format!("{}/job-prefix/", h.origin())),
        ("GITHUB_SERVER_URL", "http://gitea.example".to_owned()),
        ("ACTIONS_CACHE_SERVICE_V2", "true".to_owned()),
    ])
    .await;
    check("v1", &v1);

    // v2: only with a github.com server URL. ACTIONS_CACHE_URL points at a closed port, so a
    // fall back to v1 would fail.
    let h = Harness::new(1 << 30).await;
    let v2 = save_and_restore(&[
        ("ACTIONS_RESULTS_URL", format!("{}/", h.origin())),
        ("ACTIONS_CACHE_SERVICE_V2", "true".to_owned()),
        ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
        ("ACTIONS_CACHE_URL", "http://127.0.0.1:9/".to_owned()),
    ])
    .await;
    check("v2", &v2);
}
