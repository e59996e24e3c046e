//! Actions through the engine on the host backend: local composite actions (inputs, outputs,
//! nesting, `if:`, failure), local JavaScript actions, repository actions served from a local
//! bare git repository (by tag and branch, cached by commit), unreachable ones, and (slow: npm)
//! a JavaScript action written with `@actions/core` with `pre`, `post` and state.
//!
//! Fixtures live in `tests/actions/`: `workspace/` is copied into each run's workspace,
//! `remote/` holds the commits of the served repository, `js-action/` the `@actions/core`
//! action.

use std::path::{Path, PathBuf};
use std::process::Command;

use runnel_engine::{JobResult, StepStatus};

use crate::support::{Run, copy_tree, run_text};

const S: StepStatus = StepStatus::Success;
const F: StepStatus = StepStatus::Failure;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/actions")
}

fn with_workspace(workspace: &Path) {
    copy_tree(&fixtures().join("workspace"), workspace);
}

async fn run_fixture(name: &str, change: impl FnOnce(&mut crate::support::Setup)) -> Run {
    let text = std::fs::read_to_string(fixtures().join(name)).expect("workflow fixture");
    run_text(name, &text, with_workspace, change).await
}

fn git(directory: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=runnel",
            "-c",
            "user.email=runnel@example.invalid",
        ])
        .args(["-c", "init.defaultBranch=main", "-c", "tag.gpgSign=false"])
        .args(args)
        .current_dir(directory)
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A bare repository `<base>/<owner>/<repo>` with one commit per `(tree, tag, branch)`: each
/// commit's files are exactly `tree`; a tag is annotated.
fn serve_repository(base: &Path, repository: &str, commits: &[(&Path, Option<&str>)]) {
    let bare = base.join(repository);
    std::fs::create_dir_all(&bare).expect("bare dir");
    git(&bare, &["init", "-q", "--bare"]);
    let work = tempfile::tempdir().expect("work tree");
    git(work.path(), &["init", "-q"]);
    for (tree, tag) in commits {
        git(work.path(), &["rm", "-rq", "--ignore-unmatch", "."]);
        copy_tree(tree, work.path());
        git(work.path(), &["add", "-A", "-f", "."]);
        git(work.path(), &["commit", "-q", "-m", "commit"]);
        if let Some(tag) = tag {
            git(work.path(), &["tag", "-a", tag, "-m", tag]);
        }
    }
    let target = bare.to_string_lossy().into_owned();
    git(
        work.path(),
        &["push", "-q", &target, "HEAD:refs/heads/main", "--tags"],
    );
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn has_runner_message(run: &Run, needle: &str) -> bool {
    run.runner_messages().iter().any(|m| m.contains(needle))
}

#[tokio::test]
async fn composite_actions_with_inputs_outputs_nesting_and_failure() {
    let run = run_fixture("composite.yml", |_| {}).await;
    let lines = run.lines("composite");
    assert_eq!(
        run.job("composite").result,
        JobResult::Success,
        "{:?}",
        run.runner_messages()
    );
    for expected in [
        "in composite: from-workflow from-step action_path_ok=yes",
        "INPUT vars: none",
        "outer steps hidden: []",
        "sees own steps success success",
        "message=Hello push, World",
        "inner=HELLO PUSH, WORLD",
    ] {
        assert!(lines.iter().any(|l| l == expected), "{expected}: {lines:?}");
    }
    assert!(
        !lines.iter().any(|l| l.contains("never printed")),
        "{lines:?}"
    );
    // Inner steps are part of the outer step: the job has three steps.
    assert_eq!(run.steps("composite"), [(S, S), (S, S), (S, S)]);

    let failing = run.lines("failing");
    assert_eq!(run.job("failing").result, JobResult::Failure);
    assert_eq!(run.steps("failing"), [(F, F), (S, S)]);
    for expected in [
        "inner step fails",
        "inner always ran",
        "inner failure() is true",
        "outer saw failure",
    ] {
        assert!(
            failing.iter().any(|l| l == expected),
            "{expected}: {failing:?}"
        );
    }
    assert!(!failing.iter().any(|l| l.contains("never printed")));

    assert_eq!(run.job("deep").result, JobResult::Failure);
    assert_eq!(
        run.lines("deep").iter().filter(|l| *l == "level").count(),
        9
    );
    assert!(has_runner_message(
        &run,
        "composite actions may nest at most 9 deep"
    ));

    assert_eq!(run.job("unknown-input").result, JobResult::Success);
    assert!(has_runner_message(
        &run,
        "Unexpected input(s) 'colour', valid inputs are ['text']"
    ));

    assert_eq!(run.job("missing").result, JobResult::Failure);
    assert!(has_runner_message(
        &run,
        "cannot find `action.yml` or `action.yaml` for `uses: ./.github/actions/not-there`"
    ));
}

/// `node` is on this machine's PATH unless told otherwise; without it the JavaScript tests
/// have nothing to run (and must fail in CI, which installs it).
fn node_available() -> bool {
    let found = Command::new("node").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("RUN_SLOW_TESTS").is_none(),
            "`node` is not installed; the JavaScript action tests need it (apt-get install nodejs)"
        );
        eprintln!("skipping: `node` is not installed");
    }
    found
}

#[tokio::test]
async fn local_javascript_action_gets_inputs_and_writes_outputs_env_and_state() {
    if !node_available() {
        return;
    }
    let run = run_fixture("plain-js.yml", |_| {}).await;
    let lines = run.lines("js");
    assert_eq!(
        run.job("js").result,
        JobResult::Success,
        "{:?} {lines:?}",
        run.runner_messages()
    );
    assert_eq!(
        lines,
        [
            "node-version=20 who=tester",
            "action path ok=true",
            "answer=42 env=exported",
            "post sees state from-main",
        ]
    );
    let names: Vec<String> = run.job("js").steps.iter().map(|s| s.name.clone()).collect();
    assert_eq!(
        names,
        [
            "./.github/actions/plain-js",
            "Run echo \"answer=${{ steps.js.outputs.answer }} env=$FROM_JS\"",
            "Post ./.github/actions/plain-js",
        ]
    );
}

#[tokio::test]
async fn repository_actions_by_tag_and_branch_are_cached_by_commit() {
    let mirror = tempfile::tempdir().expect("mirror");
    let remote = fixtures().join("remote");
    serve_repository(
        mirror.path(),
        "acme/tools",
        &[(&remote.join("v1"), Some("v1")), (&remote.join("v2"), None)],
    );
    let cache = tempfile::tempdir().expect("cache");
    let configure = |setup: &mut crate::support::Setup| {
        setup.options.actions_url = file_url(mirror.path());
        setup.options.actions_cache = cache.path().to_path_buf();
    };
    let first = run_fixture("remote.yml", configure).await;
    assert_eq!(
        first.job("remote").result,
        JobResult::Success,
        "{:?}",
        first.runner_messages()
    );
    let lines = first.lines("remote");
    for expected in [
        "tools v1 from acme/tools@v1",
        "sub action at main",
        "tag=1 branch=2",
    ] {
        assert!(lines.iter().any(|l| l == expected), "{expected}: {lines:?}");
    }
    let downloads = |run: &Run, verb: &str| {
        run.runner_messages()
            .iter()
            .filter(|m| m.starts_with(verb))
            .count()
    };
    // Two commits: v1, and main (shared by `acme/tools@main` and `acme/tools/sub@main`).
    assert_eq!(downloads(&first, "Download action repository"), 2);
    let cached_dirs = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .flatten()
        .flat_map(|repo| std::fs::read_dir(repo.path()).expect("repo dir").flatten())
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(cached_dirs, 2);

    let second = run_fixture("remote.yml", configure).await;
    assert_eq!(second.job("remote").result, JobResult::Success);
    assert_eq!(downloads(&second, "Download action repository"), 0);
    assert_eq!(downloads(&second, "Using cached action repository"), 3);
}

#[tokio::test]
async fn unreachable_repository_actions_fail_the_job_at_setup_with_a_hint() {
    let nowhere = tempfile::tempdir().expect("empty mirror");
    let cache = tempfile::tempdir().expect("cache");
    let run = run_fixture("unreachable.yml", |setup| {
        setup.options.actions_url = file_url(&nowhere.path().join("missing"));
        setup.options.actions_cache = cache.path().to_path_buf();
    })
    .await;
    assert_eq!(run.job("offline").result, JobResult::Failure);
    assert!(run.job("offline").steps.is_empty());
    assert!(run.lines("offline").is_empty());
    let messages = run.runner_messages();
    let message = messages
        .iter()
        .find(|m| m.starts_with("cannot fetch action `acme/missing@v1`"))
        .unwrap_or_else(|| panic!("{messages:?}"));
    assert!(message.contains("git ls-remote"), "{message}");
    assert!(
        message.contains("point the runner's `actions_url` at a mirror"),
        "{message}"
    );
}

#[tokio::test]
async fn container_actions_say_they_need_the_docker_backend() {
    let text =
        "on: push\njobs:\n  c:\n    runs-on: x\n    steps:\n      - uses: docker://alpine:3\n";
    let run = run_text("container.yml", text, |_| {}, |_| {}).await;
    assert_eq!(run.job("c").result, JobResult::Failure);
    assert!(has_runner_message(
        &run,
        "need the Docker backend's container steps"
    ));
}

/// `@actions/core` installed once per package.json into the temp directory (npm's registry
/// is reachable from CI and from this machine).
fn install_core(action: &Path) -> Option<PathBuf> {
    let npm_found = Command::new("npm").arg("--version").output().is_ok();
    let slow = std::env::var_os("RUN_SLOW_TESTS").is_some();
    if !slow {
        eprintln!("skipping: set RUN_SLOW_TESTS=1 to install @actions/core from npm");
        return None;
    }
    assert!(
        npm_found,
        "`npm` is not installed; RUN_SLOW_TESTS needs it (apt-get install npm)"
    );
    let manifest = std::fs::read(action.join("package.json")).expect("package.json");
    let digest = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&manifest));
    let cache = std::env::temp_dir()
        .join("runnel-test-npm")
        .join(digest.get(..16).unwrap_or(&digest));
    if !cache
        .join("node_modules/@actions/core/package.json")
        .is_file()
    {
        std::fs::create_dir_all(&cache).expect("npm cache dir");
        std::fs::write(cache.join("package.json"), &manifest).expect("package.json copy");
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--omit=dev",
                "--no-package-lock",
            ])
            .current_dir(&cache)
            .status()
            .expect("npm runs");
        assert!(
            status.success(),
            "npm install @actions/core failed in {}",
            cache.display()
        );
    }
    Some(cache.join("node_modules"))
}

#[tokio::test]
async fn javascript_action_with_actions_core_runs_pre_main_and_post_in_order() {
    if !node_available() {
        return;
    }
    let action = fixtures().join("js-action");
    let Some(node_modules) = install_core(&action) else {
        return;
    };
    let tree = tempfile::tempdir().expect("action tree");
    copy_tree(&action, tree.path());
    copy_tree(&node_modules, &tree.path().join("node_modules"));
    let mirror = tempfile::tempdir().expect("mirror");
    serve_repository(
        mirror.path(),
        "acme/core-action",
        &[(tree.path(), Some("v1"))],
    );
    let cache = tempfile::tempdir().expect("cache");
    let run = run_fixture("js-action.yml", |setup| {
        setup.options.actions_url = file_url(mirror.path());
        setup.options.actions_cache = cache.path().to_path_buf();
    })
    .await;
    let lines = run.lines("core");
    assert_eq!(
        run.job("core").result,
        JobResult::Success,
        "{:?} {lines:?}",
        run.runner_messages()
    );
    assert_eq!(
        lines,
        [
            "pre ran",
            "first main step",
            "main sees pre state p1",
            "main ran",
            "got Hi Tester exported",
            "post: pre=p1 main=m1",
        ]
    );
    let names: Vec<String> = run
        .job("core")
        .steps
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "Pre acme/core-action@v1",
            "Run echo \"first main step\"",
            "acme/core-action@v1",
            "Run echo \"got ${{ steps.js.outputs.greeting }} $FROM_CORE\"",
            "Post acme/core-action@v1",
        ]
    );
}
