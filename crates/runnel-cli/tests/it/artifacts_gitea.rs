//! The stock artifact actions against Gitea's own artifact service, in daemon mode: a workflow
//! written as for GitHub (`uses: actions/upload-artifact@v4`, then `actions/download-artifact@v4`
//! in a job that `needs` the first) runs unchanged, both jobs succeed, the downloaded files
//! have the uploaded content (a small text and 20 MiB of random bytes, so the upload takes
//! several blocks and a block list), and Gitea's artifacts API lists the artifact.
//!
//! GitHub is unreachable, so the test publishes `actions/upload-artifact` and
//! `actions/download-artifact` (tag `v4`) in the test Gitea, which resolves `uses:` against
//! itself (`DEFAULT_ACTIONS_URL = self`). Each is a node action bundled with esbuild from
//! `tests/fixtures/artifacts/` around the real `@actions/artifact` 2.3.2, as the stock actions
//! bundle it. The same job also runs the upload bundle as it is, with plain `node` (no `uses:`,
//! so nothing lifts its guard): that fails with `GHESNotSupportedError`, which is what the
//! runner's rewrite (`runnel_engine::actions::ghes`) prevents.
//!
//! With `runner.patch_actions: false` the runner leaves the action as published, and the same
//! `uses:` fails against Gitea with that error.
//!
//! Slow: a real Gitea (see `daemon_gitea`), node, npm (`npm ci` in the fixture directory) and git.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::daemon_gitea::{Gitea, completed_jobs, gitea, register, workflow};
use crate::support::repo_root;

/// Runs `program` in `dir`, panicking with its output when it fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> String {
    run_in_env(dir, program, args, &[])
}

/// [`run_in`] with extra environment variables.
fn run_in_env(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let output = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("RUN_SLOW_TESTS=1 but `{program}` could not be started ({e}); install it")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} in {} failed: {}{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Bundles the fixture's `upload.js` and `download.js` into `<out>/{upload,download}/` as
/// action repositories (`action.yml` + `dist/index.js`).
pub(crate) fn build_actions(out: &Path) {
    let fixture = repo_root().join("crates/runnel-cli/tests/fixtures/artifacts");
    let modules = fixture.join("node_modules");
    crate::support::npm_ci(
        &fixture,
        &[
            "node_modules/@actions/artifact",
            "node_modules/.bin/esbuild",
        ],
    );
    let esbuild = modules.join(".bin/esbuild");
    for name in ["upload", "download"] {
        let repo = out.join(name);
        std::fs::create_dir_all(repo.join("dist")).unwrap_or_else(|e| panic!("mkdir: {e}"));
        std::fs::copy(
            fixture.join(format!("{name}-action.yml")),
            repo.join("action.yml"),
        )
        .unwrap_or_else(|e| panic!("copy action.yml: {e}"));
        let outfile = format!("--outfile={}", repo.join("dist/index.js").display());
        run_in(
            &fixture,
            &esbuild.display().to_string(),
            &[
                &format!("{name}.js"),
                "--bundle",
                "--platform=node",
                "--target=node18",
                "--log-level=warning",
                &outfile,
            ],
        );
    }
}

/// Creates (once) the public organisation `actions` and repository `actions/<name>`, and
/// force-pushes `dir` (made a repository here) to it as `main` with the tag `v4`.
pub(crate) fn publish(gitea: &Gitea, name: &str, dir: &Path) {
    // Tests of this process publish one at a time, and a commit of the same tree is the same
    // commit (fixed dates), so publishing again what is there changes no ref under a job
    // that is fetching it.
    static PUBLISHING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = PUBLISHING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Tests publishing at the same time may both find it missing: the loser's creation fails
    // and finds the winner's.
    let ensure = |get: &str, post: &str, body: Value| {
        if gitea.api("GET", get, None).is_err()
            && let Err(e) = gitea.api("POST", post, Some(&body))
        {
            assert!(gitea.api("GET", get, None).is_ok(), "create {get}: {e}");
        }
    };
    ensure(
        "/orgs/actions",
        "/orgs",
        json!({ "username": "actions", "visibility": "public" }),
    );
    ensure(
        &format!("/repos/actions/{name}"),
        "/orgs/actions/repos",
        json!({ "name": name, "default_branch": "main", "private": false }),
    );
    let (scheme, rest) = gitea.url.split_once("://").unwrap_or(("http", &gitea.url));
    let remote = format!(
        "{scheme}://{}:{}@{rest}/actions/{name}.git",
        gitea.admin_user, gitea.admin_password
    );
    let git = |args: &[&str]| {
        let mut all = vec![
            "-c",
            "user.name=runnel-test",
            "-c",
            "user.email=runnel-test@example.invalid",
            "-c",
            "init.defaultBranch=main",
        ];
        all.extend_from_slice(args);
        let date = "2000-01-01T00:00:00Z";
        run_in_env(
            dir,
            "git",
            &all,
            &[("GIT_AUTHOR_DATE", date), ("GIT_COMMITTER_DATE", date)],
        )
    };
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&[
        "commit",
        "--quiet",
        "-m",
        "artifact action for runnel's tests",
    ]);
    git(&["tag", "--force", "v4"]);
    git(&[
        "push",
        "--quiet",
        "--force",
        &remote,
        "main",
        "refs/tags/v4",
    ]);
}

#[test]
fn upload_and_download_artifact_v4_work_unchanged_against_gitea_in_daemon_mode() {
    let test = "upload_and_download_artifact_v4_work_unchanged_against_gitea_in_daemon_mode";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let built = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    build_actions(built.path());
    let upload_bundle = built.path().join("upload/dist/index.js");
    // The real bundle has the guard in each of the client's five calls.
    let bundle = std::fs::read_to_string(&upload_bundle).unwrap_or_else(|e| panic!("{e}"));
    let lifted = runnel_engine::actions::ghes::lift_artifact_guards(&bundle);
    assert_eq!(lifted.map(|l| l.guards), Some(5));
    // The published copy is the untouched bundle; its guard is lifted only by the runner.
    publish(gitea, "upload-artifact", &built.path().join("upload"));
    publish(gitea, "download-artifact", &built.path().join("download"));
    let unpatched = built.path().join("unpatched.js");
    std::fs::copy(&upload_bundle, &unpatched).unwrap_or_else(|e| panic!("copy bundle: {e}"));

    let runner = register(gitea, "artifacts");
    let label = &runner.label;
    let unpatched = unpatched.display();
    let jobs = format!(
        r#"  upload:
    runs-on: {label}
    outputs:
      sum: ${{{{ steps.payload.outputs.sum }}}}
    steps:
      - id: payload
        run: |
          mkdir payload
          echo "payload of {label}" > payload/report.txt
          head -c 20971520 /dev/urandom > payload/big.bin
          echo "sum=$(sha256sum payload/big.bin | cut -d' ' -f1)" >> "$GITHUB_OUTPUT"
      - run: echo "server_url is ${{{{ github.server_url }}}}"
      - name: the bundle as published refuses this server
        continue-on-error: true
        run: node {unpatched}
        env:
          INPUT_NAME: refused-{label}
          INPUT_PATH: payload
      - uses: actions/upload-artifact@v4
        with:
          name: {label}
          path: payload
  download:
    needs: upload
    runs-on: {label}
    steps:
      - uses: actions/download-artifact@v4
        with:
          name: {label}
          path: got
      - run: |
          test "$(cat got/report.txt)" = "payload of {label}"
          test "$(sha256sum got/big.bin | cut -d' ' -f1)" = "${{{{ needs.upload.outputs.sum }}}}"
          echo "CONTENT OK"
"#
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&[]);
    let jobs = completed_jobs(gitea, &runner, 2);
    runner.terminate(&child);
    let status = runner.wait(child);
    let daemon_log = runner.daemon_log();
    assert!(status.success(), "daemon: {status}\n{daemon_log}");
    let log_of = |name: &str| -> (Value, String) {
        let job = jobs
            .iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in {jobs:?}"))
            .clone();
        let lines = gitea
            .log_lines(job["id"].as_i64().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        (job, lines.join("\n"))
    };
    let (upload, upload_log) = log_of("upload");
    let (download, download_log) = log_of("download");
    assert_eq!(
        upload["conclusion"], "success",
        "{upload_log}\n{daemon_log}"
    );
    let server = gitea.url.trim_end_matches('/');
    assert!(
        upload_log.contains(&format!("server_url is {server}")),
        "{upload_log}"
    );
    // Without the runner's rewrite the client refuses Gitea ...
    assert!(
        upload_log.contains("GHESNotSupportedError"),
        "the unpatched bundle did not refuse: {upload_log}"
    );
    // ... with it, the same bundle uploads, still seeing Gitea's URL.
    assert!(
        upload_log.contains("Lifted 5 GHESNotSupportedError guard(s) of @actions/artifact in actions/upload-artifact/dist/index.js"),
        "{upload_log}"
    );
    assert!(
        upload_log.contains(&format!("GITHUB_SERVER_URL is {server}")),
        "{upload_log}"
    );
    assert!(
        upload_log.contains(&format!("uploaded artifact {label}: id ")),
        "{upload_log}"
    );
    assert_eq!(
        download["conclusion"], "success",
        "{download_log}\n{daemon_log}"
    );
    assert!(download_log.contains("CONTENT OK"), "{download_log}");

    let listed = gitea
        .api(
            "GET",
            &format!("/repos/{}/actions/artifacts?name={label}", gitea.repo),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let artifacts = listed["artifacts"].as_array().cloned().unwrap_or_default();
    assert!(
        artifacts.iter().any(|a| a["name"] == label.as_str()),
        "Gitea does not list artifact {label}: {listed}"
    );
    assert!(
        artifacts
            .iter()
            .all(|a| a["name"] != format!("refused-{label}")),
        "{listed}"
    );
}

/// `runner.patch_actions: false` (the Gitea runner v3.3's key): actions run exactly as
/// published, so the stock upload action refuses Gitea, and the job log names no lifted guard.
#[test]
fn with_patch_actions_false_the_stock_upload_action_runs_as_published() {
    let test = "with_patch_actions_false_the_stock_upload_action_runs_as_published";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let built = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    build_actions(built.path());
    publish(gitea, "upload-artifact", &built.path().join("upload"));
    let runner = register(gitea, "unpatched");
    runner.write_config("runner:\n  patch_actions: false\n");
    let label = &runner.label;
    let jobs = format!(
        r#"  upload:
    runs-on: {label}
    steps:
      - run: mkdir payload && echo "payload of {label}" > payload/report.txt
      - uses: actions/upload-artifact@v4
        with:
          name: {label}
          path: payload
"#
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&["-c", "config.yaml"]);
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    runner.terminate(&child);
    let status = runner.wait(child);
    assert!(
        status.success(),
        "daemon: {status}\n{}",
        runner.daemon_log()
    );
    let log = gitea.log_text(&job);
    assert_eq!(job["conclusion"], "failure", "{log}");
    assert!(log.contains("GHESNotSupportedError"), "{log}");
    assert!(!log.contains("Lifted"), "{log}");
}
