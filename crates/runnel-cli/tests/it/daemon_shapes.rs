//! The seed workflows' shapes run by `runnel daemon` against a real Gitea (see `daemon_gitea`):
//! a CI pipeline with a matrix fan-out, a `needs` diamond carrying job outputs and jobs guarded by
//! `if:` on `github.ref` (run once on a branch, once on a tag), an action served from a
//! repository of the same Gitea (`uses: testorg/hello@v1` through `DEFAULT_ACTIONS_URL = self`),
//! variables and secrets defined in Gitea at repository and organisation level, and a service
//! container on a Docker label. Steps that would need the internet are replaced by local
//! equivalents. Results are read back through Gitea's REST API.
//!
//! Each test pushes to a repository of its own (created here), so its tag pushes and triggers
//! cannot start another test's workflows. Slow: they return early unless `RUN_SLOW_TESTS` is set.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::daemon_gitea::{Gitea, Runner, base64, gitea, register, register_with, unique};

/// A fresh public repository `testorg/<prefix>-…` with a first commit on `main`, as a `Gitea`
/// whose `repo` is that repository.
fn fresh_repo(gitea: &Gitea, prefix: &str) -> Gitea {
    let org = gitea.repo.split('/').next().unwrap_or("testorg");
    let name = unique(prefix);
    gitea
        .api(
            "POST",
            &format!("/orgs/{org}/repos"),
            Some(&json!({
                "name": name, "auto_init": true, "default_branch": "main", "private": false,
            })),
        )
        .unwrap_or_else(|e| panic!("create repository {name}: {e}"));
    Gitea {
        url: gitea.url.clone(),
        admin_user: gitea.admin_user.clone(),
        admin_password: gitea.admin_password.clone(),
        admin_token: gitea.admin_token.clone(),
        registration_token: gitea.registration_token.clone(),
        repo: format!("{org}/{name}"),
        pid: None,
    }
}

/// Every run of the repository, newest first.
fn runs(repo: &Gitea) -> Vec<Value> {
    repo.api(
        "GET",
        &format!("/repos/{}/actions/runs?limit=50", repo.repo),
        None,
    )
    .map(|v| v["workflow_runs"].as_array().cloned().unwrap_or_default())
    .unwrap_or_default()
}

/// The jobs of one run, as Gitea lists them.
fn run_jobs(repo: &Gitea, run_id: i64) -> Vec<Value> {
    repo.api(
        "GET",
        &format!("/repos/{}/actions/runs/{run_id}/jobs?limit=50", repo.repo),
        None,
    )
    .map(|v| v["jobs"].as_array().cloned().unwrap_or_default())
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until the repository has `count` runs and all are completed; returns them oldest first.
fn completed_runs(repo: &Gitea, count: usize, runner: &Runner) -> Vec<Value> {
    for _ in 0..900 {
        let mut all = runs(repo);
        if all.len() >= count && all.iter().all(|r| r["status"] == "completed") {
            all.reverse();
            return all;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "runs of {} not completed: {:?}\ndaemon log:\n{}",
        repo.repo,
        runs(repo)
            .iter()
            .map(|r| (r["path"].clone(), r["status"].clone()))
            .collect::<Vec<_>>(),
        runner.daemon_log()
    );
}

/// (job name as Gitea shows it, conclusion), sorted by name.
fn conclusions(jobs: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = jobs
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap_or_default().to_owned(),
                j["conclusion"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn log_of(repo: &Gitea, jobs: &[Value], name: &str) -> String {
    let job = jobs
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name:?} in {:?}", conclusions(jobs)));
    repo.log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"))
        .join("\n")
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    out.sort();
    out
}

/// Stops the daemon with SIGTERM and checks it ended cleanly.
fn stop(runner: &Runner, daemon: std::process::Child) {
    runner.stop(daemon);
}

/// Creates or updates `path` in `repo` on `main` through the contents API.
fn put_file(repo: &Gitea, path: &str, text: &str) {
    let api = format!("/repos/{}/contents/{path}", repo.repo);
    let body = json!({ "content": base64(text.as_bytes()), "message": format!("add {path}"), "branch": "main" });
    match repo.api("GET", &format!("{api}?ref=main"), None) {
        Ok(existing) => {
            let mut body = body;
            body["sha"] = existing["sha"].clone();
            repo.api("PUT", &api, Some(&body))
        }
        Err(_) => repo.api("POST", &api, Some(&body)),
    }
    .unwrap_or_else(|e| panic!("push {path} to {}: {e}", repo.repo));
}

/// The pipeline shape of `hexabase-ci.yml` / `letsbe-ci.yml` / `letsbe-quality-gates.yml`:
/// quality → {unit (matrix of 3), integration, security} → build → deploy (branches only) /
/// publish (tags only). The checkout is a `git clone` of the repository from the same Gitea.
const PIPELINE: &str = r#"name: CI
on:
  push:
    branches: [main, develop, 'release/**']
    tags: ['v*']
env:
  NODE_VERSION: '22'
jobs:
  quality:
    runs-on: LABEL
    outputs:
      version: ${{ steps.version.outputs.version }}
    steps:
      - name: Checkout (local equivalent)
        run: |
          git clone --quiet "${{ github.server_url }}/${{ github.repository }}.git" src
          git -C src checkout --quiet "${{ github.sha }}"
          test -f src/README.md && echo "checked out $(git -C src rev-parse HEAD)"
      - id: version
        run: echo "version=${GITHUB_REF_NAME}-node${NODE_VERSION}" >> "$GITHUB_OUTPUT"
  unit:
    needs: quality
    runs-on: LABEL
    strategy:
      matrix:
        package: [safety-wrapper, secrets-proxy, hub]
    steps:
      - name: Run tests for ${{ matrix.package }}
        run: echo "unit ${{ matrix.package }} at ${{ needs.quality.outputs.version }}"
  integration:
    needs: quality
    runs-on: LABEL
    outputs:
      db: ${{ steps.db.outputs.db }}
    steps:
      - id: db
        run: echo "db=migrated-${{ needs.quality.outputs.version }}" >> "$GITHUB_OUTPUT"
  security:
    needs: [quality]
    runs-on: LABEL
    outputs:
      findings: ${{ steps.scan.outputs.findings }}
    steps:
      - id: scan
        run: echo "findings=0" >> "$GITHUB_OUTPUT"
  build:
    needs: [unit, integration, security]
    runs-on: LABEL
    steps:
      - run: |
          echo "build after ${{ needs.integration.outputs.db }} with ${{ needs.security.outputs.findings }} findings"
          echo "needs: ${{ needs.unit.result }} ${{ needs.integration.result }} ${{ needs.security.result }}"
  deploy:
    needs: [build]
    if: github.ref == 'refs/heads/main' || github.ref == 'refs/heads/develop'
    runs-on: LABEL
    steps:
      - run: echo "deploy ${{ github.ref == 'refs/heads/main' && 'latest' || 'dev' }}"
  publish:
    needs: build
    if: startsWith(github.ref, 'refs/tags/v')
    runs-on: LABEL
    steps:
      - run: echo "publish ${GITHUB_REF_NAME#v}"
"#;

#[test]
fn a_ci_pipeline_fans_out_a_matrix_joins_a_needs_diamond_and_guards_jobs_by_ref() {
    let test = "a_ci_pipeline_fans_out_a_matrix_joins_a_needs_diamond_and_guards_jobs_by_ref";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let repo = fresh_repo(gitea, "shape-ci");
    let runner = register(gitea, "shape-ci");
    runner.write_config("runner:\n  capacity: 3\n");
    let daemon = runner.daemon(&["-c", "config.yaml"]);
    put_file(
        &repo,
        ".gitea/workflows/ci.yml",
        &PIPELINE.replace("LABEL", &runner.label),
    );
    let on_branch = completed_runs(&repo, 1, &runner);
    // A release tag on the same commit: a second run, with the guards the other way round.
    repo.api(
        "POST",
        &format!("/repos/{}/tags", repo.repo),
        Some(&json!({ "tag_name": "v1.2.3", "target": "main" })),
    )
    .unwrap_or_else(|e| panic!("create tag: {e}"));
    let both = completed_runs(&repo, 2, &runner);
    stop(&runner, daemon);
    assert_eq!(both[0]["id"], on_branch[0]["id"]);

    let branch_jobs = run_jobs(&repo, both[0]["id"].as_i64().unwrap_or_default());
    let tag_jobs = run_jobs(&repo, both[1]["id"].as_i64().unwrap_or_default());
    let common = [
        ("quality", "success"),
        ("unit (safety-wrapper)", "success"),
        ("unit (secrets-proxy)", "success"),
        ("unit (hub)", "success"),
        ("integration", "success"),
        ("security", "success"),
        ("build", "success"),
    ];
    let mut expected = common.to_vec();
    expected.extend([("deploy", "success"), ("publish", "skipped")]);
    assert_eq!(conclusions(&branch_jobs), pairs(&expected), "{both:?}");
    let mut expected = common.to_vec();
    expected.extend([("deploy", "skipped"), ("publish", "success")]);
    assert_eq!(conclusions(&tag_jobs), pairs(&expected), "{both:?}");

    let quality = log_of(&repo, &branch_jobs, "quality");
    assert!(quality.contains("checked out "), "{quality}");
    let hub = log_of(&repo, &branch_jobs, "unit (hub)");
    assert!(hub.contains("unit hub at main-node22"), "{hub}");
    let build = log_of(&repo, &branch_jobs, "build");
    assert!(
        build.contains("build after migrated-main-node22 with 0 findings"),
        "{build}"
    );
    assert!(build.contains("needs: success success success"), "{build}");
    let deploy = log_of(&repo, &branch_jobs, "deploy");
    assert!(deploy.contains("deploy latest"), "{deploy}");
    let tagged = log_of(&repo, &tag_jobs, "build");
    assert!(
        tagged.contains("build after migrated-v1.2.3-node22 with 0 findings"),
        "{tagged}"
    );
    let publish = log_of(&repo, &tag_jobs, "publish");
    assert!(publish.contains("publish 1.2.3"), "{publish}");
}

const COMPOSITE_ACTION: &str = r#"name: hello
description: Greets someone (a composite action served by the test Gitea).
inputs:
  who:
    description: whom to greet
    default: world
outputs:
  greeting:
    description: the greeting
    value: ${{ steps.greet.outputs.greeting }}
runs:
  using: composite
  steps:
    - id: greet
      shell: bash
      run: echo "greeting=hello ${{ inputs.who }}" >> "$GITHUB_OUTPUT"
    - shell: bash
      run: echo "composite ran from $(basename "$GITHUB_ACTION_PATH")"
"#;

const NODE_ACTION: &str = r#"name: hello-node
description: Greets someone (a node action served by the test Gitea).
inputs:
  who:
    description: whom to greet
    required: true
outputs:
  greeting:
    description: the greeting
runs:
  using: node20
  main: index.js
"#;

const NODE_MAIN: &str = r#"const fs = require('fs');
const who = process.env['INPUT_WHO'];
console.log(`node action greets ${who}`);
fs.appendFileSync(process.env['GITHUB_OUTPUT'], `greeting=hi ${who} from node\n`);
"#;

/// `testorg/hello` with a composite action at its root and a node action in `node/`, tagged
/// `v1`. Created once per instance; a later call finds it in place.
fn hello_action_repository(gitea: &Gitea) {
    let org = gitea.repo.split('/').next().unwrap_or("testorg");
    let hello = Gitea {
        url: gitea.url.clone(),
        admin_user: gitea.admin_user.clone(),
        admin_password: gitea.admin_password.clone(),
        admin_token: gitea.admin_token.clone(),
        registration_token: gitea.registration_token.clone(),
        repo: format!("{org}/hello"),
        pid: None,
    };
    if hello
        .api("GET", &format!("/repos/{}/tags/v1", hello.repo), None)
        .is_ok()
    {
        return;
    }
    if hello
        .api("GET", &format!("/repos/{}", hello.repo), None)
        .is_err()
    {
        hello
            .api(
                "POST",
                &format!("/orgs/{org}/repos"),
                Some(&json!({
                    "name": "hello", "auto_init": true, "default_branch": "main", "private": false,
                })),
            )
            .unwrap_or_else(|e| panic!("create {org}/hello: {e}"));
    }
    put_file(&hello, "action.yml", COMPOSITE_ACTION);
    put_file(&hello, "node/action.yml", NODE_ACTION);
    put_file(&hello, "node/index.js", NODE_MAIN);
    hello
        .api(
            "POST",
            &format!("/repos/{}/tags", hello.repo),
            Some(&json!({ "tag_name": "v1", "target": "main" })),
        )
        .unwrap_or_else(|e| panic!("tag {org}/hello v1: {e}"));
}

#[test]
fn an_action_served_by_the_same_gitea_resolves_by_tag_and_its_output_is_used() {
    let test = "an_action_served_by_the_same_gitea_resolves_by_tag_and_its_output_is_used";
    let Some(gitea) = gitea(test) else {
        return;
    };
    hello_action_repository(gitea);
    let repo = fresh_repo(gitea, "shape-uses");
    let runner = register(gitea, "shape-uses");
    let label = &runner.label;
    let workflow = format!(
        r#"name: uses
on: push
jobs:
  greet:
    runs-on: {label}
    steps:
      - id: hello
        uses: testorg/hello@v1
        with:
          who: gitea
      - id: node
        uses: testorg/hello/node@v1
        with:
          who: runnel
      - run: echo "said '${{{{ steps.hello.outputs.greeting }}}}' and '${{{{ steps.node.outputs.greeting }}}}'"
"#
    );
    let daemon = runner.daemon(&[]);
    put_file(&repo, ".gitea/workflows/uses.yml", &workflow);
    let run = completed_runs(&repo, 1, &runner).remove(0);
    stop(&runner, daemon);
    let jobs = run_jobs(&repo, run["id"].as_i64().unwrap_or_default());
    let log = log_of(&repo, &jobs, "greet");
    assert_eq!(
        conclusions(&jobs),
        pairs(&[("greet", "success")]),
        "{log}\n{}",
        runner.daemon_log()
    );
    assert!(log.contains("composite ran from "), "{log}");
    assert!(log.contains("node action greets runnel"), "{log}");
    assert!(
        log.contains("said 'hello gitea' and 'hi runnel from node'"),
        "{log}"
    );
}

#[test]
fn variables_and_secrets_from_repository_and_organisation_arrive_and_secrets_stay_masked() {
    let test =
        "variables_and_secrets_from_repository_and_organisation_arrive_and_secrets_stay_masked";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let repo = fresh_repo(gitea, "shape-vars");
    let org = repo.repo.split('/').next().unwrap_or("testorg").to_owned();
    let runner = register(gitea, "shape-vars");
    let label = &runner.label;
    // Organisation-level names are shared by every repository of the org: unique per run.
    let suffix = label.replace('-', "_").to_uppercase();
    let org_var = format!("ORG_VAR_{suffix}");
    let org_secret = format!("ORG_KEY_{suffix}");
    let token_value = format!("tok-{}", unique("s"));
    let key_line1 = format!("line-one-{}", unique("k"));
    let key_line2 = format!("line-two-{}", unique("k"));
    let put = |path: String, body: Value| {
        repo.api("POST", &path, Some(&body))
            .or_else(|_| repo.api("PUT", &path, Some(&body)))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    };
    put(
        format!("/repos/{}/actions/variables/DEPLOY_ENV", repo.repo),
        json!({ "value": "staging" }),
    );
    put(
        format!("/orgs/{org}/actions/variables/{org_var}"),
        json!({ "value": "from-the-org" }),
    );
    put(
        format!("/repos/{}/actions/secrets/API_TOKEN", repo.repo),
        json!({ "data": token_value }),
    );
    put(
        format!("/orgs/{org}/actions/secrets/{org_secret}"),
        json!({ "data": format!("{key_line1}\n{key_line2}") }),
    );
    let workflow = format!(
        r#"name: vars
on: push
env:
  TARGET: ${{{{ vars.DEPLOY_ENV }}}}
jobs:
  deploy:
    runs-on: {label}
    if: vars.DEPLOY_ENV == 'staging'
    steps:
      - run: echo "target $TARGET, org ${{{{ vars.{org_var} }}}}, missing '${{{{ vars.NOT_DEFINED }}}}'"
      - name: Use the secrets
        env:
          TOKEN: ${{{{ secrets.API_TOKEN }}}}
          KEY: ${{{{ secrets.{org_secret} }}}}
        run: |
          echo "token $TOKEN"
          echo "key $KEY"
          printf 'second line alone: %s\n' "$(echo "$KEY" | tail -n 1)"
          test "$TOKEN" = "{token_value}" && echo token-matches
      - if: vars.DEPLOY_ENV != 'staging'
        run: echo never
"#
    );
    let daemon = runner.daemon(&[]);
    put_file(&repo, ".gitea/workflows/vars.yml", &workflow);
    let run = completed_runs(&repo, 1, &runner).remove(0);
    stop(&runner, daemon);
    let jobs = run_jobs(&repo, run["id"].as_i64().unwrap_or_default());
    let log = log_of(&repo, &jobs, "deploy");
    assert_eq!(conclusions(&jobs), pairs(&[("deploy", "success")]), "{log}");
    assert!(
        log.contains("target staging, org from-the-org, missing ''"),
        "{log}"
    );
    assert!(log.contains("token ***"), "{log}");
    assert!(log.contains("second line alone: ***"), "{log}");
    assert!(log.contains("token-matches"), "{log}");
    assert!(!log.lines().any(|l| l == "never"), "{log}");
    for secret in [&token_value, &key_line1, &key_line2] {
        assert!(!log.contains(secret.as_str()), "{secret} leaked:\n{log}");
    }
}

/// Docker and the images this test uses, required when slow tests run.
fn docker_required(test: &str) {
    let images = Command::new("docker")
        .args([
            "image",
            "inspect",
            "runnel-test/debian:bookworm",
            "runnel-test/postgres",
        ])
        .output();
    assert!(
        images.is_ok_and(|o| o.status.success()),
        "{test}: Docker or the test images are missing: run tests/docker/ensure-dockerd.sh and tests/images/build.sh"
    );
}

/// Names of Docker objects of `kind` (container, network, volume) carrying `label`.
fn docker_objects(kind: &str, label: &str) -> String {
    let mut command = Command::new("docker");
    command.args([kind, "ls", "-q", "--filter", &format!("label={label}")]);
    if kind == "container" {
        command.arg("-a");
    }
    command
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn a_service_container_on_a_docker_label_is_reached_by_name_and_removed_after() {
    let test = "a_service_container_on_a_docker_label_is_reached_by_name_and_removed_after";
    let Some(gitea) = gitea(test) else {
        return;
    };
    docker_required(test);
    let repo = fresh_repo(gitea, "shape-svc");
    let runner = register_with(
        gitea,
        "shape-svc",
        |l| format!("{l}:docker://runnel-test/debian:bookworm"),
        &[],
    );
    let label = &runner.label;
    // The shape of hexabase-ci.yml's integration job: a database reached by its service name.
    let workflow = format!(
        r#"name: services
on: push
jobs:
  integration:
    runs-on: {label}
    services:
      postgres:
        image: runnel-test/postgres
        env:
          POSTGRES_PASSWORD: hexabase
        options: >-
          --health-cmd pg_isready
          --health-interval 1s
          --health-timeout 5s
          --health-retries 30
    env:
      DATABASE_URL: postgres://postgres:hexabase@postgres:5432/postgres?sslmode=disable
    steps:
      - run: (echo > /dev/tcp/postgres/5432) && echo "postgres:5432 answers"
      - run: echo "in $(cat /etc/debian_version) with ${{DATABASE_URL%%@*}}@..."
"#
    );
    let daemon = runner.daemon(&[]);
    let daemon_pid = daemon.id();
    put_file(&repo, ".gitea/workflows/services.yml", &workflow);
    let run = completed_runs(&repo, 1, &runner).remove(0);
    stop(&runner, daemon);
    let jobs = run_jobs(&repo, run["id"].as_i64().unwrap_or_default());
    let log = log_of(&repo, &jobs, "integration");
    assert_eq!(
        conclusions(&jobs),
        pairs(&[("integration", "success")]),
        "{log}\n{}",
        runner.daemon_log()
    );
    assert!(log.contains("postgres:5432 answers"), "{log}");
    assert!(log.contains("in 12."), "{log}");
    let owner = format!("runnel.pid={daemon_pid}");
    for kind in ["container", "network", "volume"] {
        assert_eq!(
            docker_objects(kind, &owner),
            "",
            "{kind}s of the daemon left behind"
        );
    }
}
