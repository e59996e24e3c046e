//! `runnel run` through the real binary on the host backend: the README's example, a failing
//! job (exit 1, summary), secrets masked, `--plan`, `-j`, and a workflow the event does not
//! trigger.

use std::path::Path;

use crate::support::{repo_root, run_expecting, runnel};

pub(crate) fn write_workflow(dir: &Path, text: &str) {
    let workflows = dir.join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("create workflow dir");
    std::fs::write(workflows.join("ci.yml"), text).expect("write workflow");
}

pub(crate) fn run_in(dir: &Path, args: &[&str], code: i32) -> (String, String) {
    let mut command = runnel();
    command
        .current_dir(dir)
        .arg("run")
        .args(args)
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[code]);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_readme_example_runs_every_job() {
    let (stdout, _) = run_in(&repo_root(), &["-W", "examples/hello/.gitea/workflows"], 0);
    for expected in [
        "[lint]   hello from lint",
        "[test (debian, 1)]   testing debian 1",
        "[test (alpine, 2)]   testing alpine 2",
        "[test (debian, 3, true)]   testing debian 3",
        "✓ workflow success",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains("alpine, 1"), "excluded leg ran:\n{stdout}");
}

#[test]
fn a_failing_job_exits_1_and_skips_its_dependents() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo building; exit 3\n  deploy:\n    needs: build\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo deploying\n  report:\n    needs: build\n    if: failure()\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"build was ${{ needs.build.result }}\"\n",
    );
    let (stdout, _) = run_in(dir.path(), &[], 1);
    assert!(stdout.contains("[build]   building"), "{stdout}");
    assert!(!stdout.contains("deploying"), "{stdout}");
    assert!(stdout.contains("[report]   build was failure"), "{stdout}");
    let summary = stdout.split("JOB ").nth(1).unwrap_or_default();
    assert!(
        summary.contains("build") && summary.contains("failure"),
        "{summary}"
    );
    assert!(
        summary.contains("deploy") && summary.contains("skipped"),
        "{summary}"
    );
    assert!(stdout.contains("✗ workflow failure"), "{stdout}");
}

#[test]
fn secrets_are_masked_and_plan_runs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"token=${{ secrets.TOKEN }}\"\n",
    );
    let (stdout, _) = run_in(dir.path(), &["-s", "TOKEN=hunter2-secret"], 0);
    assert!(stdout.contains("token=***"), "{stdout}");
    assert!(!stdout.contains("hunter2-secret"), "{stdout}");

    let (stdout, _) = run_in(dir.path(), &["--plan"], 0);
    assert!(stdout.contains("triggered"), "{stdout}");
    assert!(!stdout.contains("token="), "{stdout}");
}

#[test]
fn job_filter_and_untriggered_workflows() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo job-a\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo job-b\n",
    );
    let (stdout, stderr) = run_in(dir.path(), &["push"], 0);
    assert!(stdout.contains("not triggered"), "{stdout}");
    assert!(stderr.contains("no workflow is triggered"), "{stderr}");

    let (stdout, _) = run_in(dir.path(), &["pull_request", "-j", "b"], 0);
    assert!(
        stdout.contains("job-b") && !stdout.contains("job-a"),
        "{stdout}"
    );
}

/// Docker tests run only with `RUN_SLOW_TESTS` set; then Docker and the test images must be
/// there (`tests/docker/ensure-dockerd.sh`, `tests/images/build.sh`, which `cargo xtask test`
/// runs first).
pub(crate) fn docker_or_skip(test: &str) -> bool {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!("note: skipping {test}: needs Docker; set RUN_SLOW_TESTS=1");
        return false;
    }
    let images = std::process::Command::new("docker")
        .args([
            "image",
            "inspect",
            "runnel-test/busybox",
            "runnel-test/debian:bookworm",
            "runnel-test/postgres",
        ])
        .output();
    assert!(
        images.is_ok_and(|o| o.status.success()),
        "{test}: Docker or the test images are missing: run tests/docker/ensure-dockerd.sh and tests/images/build.sh"
    );
    true
}

#[test]
fn a_label_mapped_to_an_image_runs_in_a_container() {
    if !docker_or_skip("a_label_mapped_to_an_image_runs_in_a_container") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  box:\n    runs-on: tiny\n    steps:\n      - run: echo \"in $GITHUB_WORKSPACE\"; test -f /.dockerenv && echo in-a-container\n",
    );
    let (stdout, _) = run_in(dir.path(), &["-P", "tiny=runnel-test/busybox"], 0);
    assert!(stdout.contains("in-a-container"), "{stdout}");
}

#[test]
fn services_answer_by_name_and_on_localhost() {
    if !docker_or_skip("services_answer_by_name_and_on_localhost") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        r#"on: push
jobs:
  db:
    runs-on: ubuntu-latest
    services:
      postgres:
        image: runnel-test/postgres
        env:
          POSTGRES_PASSWORD: pw
        options: >-
          --health-cmd pg_isready
          --health-interval 1s
          --health-timeout 5s
          --health-retries 30
    steps:
      - run: (echo > /dev/tcp/postgres/5432) && echo by-name-ok
      - run: (echo > /dev/tcp/localhost/5432) && echo localhost-ok
"#,
    );
    let (stdout, _) = run_in(
        dir.path(),
        &["-P", "ubuntu-latest=runnel-test/debian:bookworm"],
        0,
    );
    assert!(stdout.contains("by-name-ok"), "{stdout}");
    assert!(stdout.contains("localhost-ok"), "{stdout}");
}

/// A service's `entrypoint:` and `command:` replace the image's, and a quoted `--health-cmd`
/// stays one command.
#[test]
fn service_entrypoint_and_command_replace_the_images() {
    if !docker_or_skip("service_entrypoint_and_command_replace_the_images") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        r#"on: push
jobs:
  web:
    runs-on: ubuntu-latest
    services:
      web:
        image: runnel-test/busybox:latest
        entrypoint: sh
        command: -c "mkdir -p /www && echo served-by-command > /www/index.html && exec httpd -f -p 8080 -h /www"
        options: --health-cmd "wget -q -O- http://localhost:8080/ >/dev/null" --health-interval 1s --health-retries 30
    steps:
      - run: |
          exec 3<>/dev/tcp/web/8080; printf 'GET / HTTP/1.0\r\n\r\n' >&3; echo "got $(tail -n 1 <&3)"
"#,
    );
    let (stdout, _) = run_in(
        dir.path(),
        &["-P", "ubuntu-latest=runnel-test/debian:bookworm"],
        0,
    );
    assert!(stdout.contains("got served-by-command"), "{stdout}");
}

#[test]
fn a_missing_image_fails_the_job_with_a_clear_error() {
    if !docker_or_skip("a_missing_image_fails_the_job_with_a_clear_error") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo never\n  b:\n    runs-on: y\n    steps:\n      - run: echo other-job-ran\n",
    );
    let (stdout, _) = run_in(
        dir.path(),
        &[
            "-P",
            "x=runnel-test/no-such-image:1",
            "-P",
            "y=-self-hosted",
        ],
        1,
    );
    assert!(stdout.contains("runnel-test/no-such-image:1"), "{stdout}");
    assert!(!stdout.contains("[a]   never"), "{stdout}");
    assert!(stdout.contains("other-job-ran"), "{stdout}");
}

/// `nohup runnel run &` starts runnel with SIGHUP, SIGINT and SIGQUIT ignored, and ignored
/// signals survive `exec`: steps must still get the defaults.
#[test]
fn steps_start_with_default_signals_when_runnel_ignores_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  signals:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - run: grep '^SigIgn' /proc/self/status\n",
    );
    let binary = runnel().get_program().to_owned();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg("trap '' HUP INT QUIT; exec \"$0\" run --no-cache-server")
        .arg(binary)
        .current_dir(dir.path())
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[0]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mask = stdout
        .lines()
        .find_map(|line| line.split("SigIgn:").nth(1))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no SigIgn line: {stdout}"));
    assert_eq!(
        mask & 0b111,
        0,
        "HUP, INT or QUIT ignored in the step: {stdout}"
    );
}

/// As act: `actions/checkout` of the run's own repository is the working tree already, and
/// `github.*` names the repository and server of the `origin` remote.
#[test]
fn checkout_of_the_own_repository_uses_the_working_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - uses: actions/checkout@v4\n      \
         - uses: actions/checkout@v4\n        with:\n          repository: ${{ github.repository }}\n      \
         - run: cat README.md\n      \
         - run: echo \"repo=$GITHUB_REPOSITORY owner=$GITHUB_REPOSITORY_OWNER server=$GITHUB_SERVER_URL actor=$GITHUB_ACTOR\"\n",
    );
    std::fs::write(dir.path().join("README.md"), "the tree being debugged\n").expect("readme");
    crate::support::git(dir.path(), &["init", "-q"]);
    crate::support::git(
        dir.path(),
        &[
            "remote",
            "add",
            "origin",
            "git@gitea.example.com:acme/tool.git",
        ],
    );
    // Nothing may be fetched: the actions URL does not exist.
    let args = ["--no-cache-server", "-a", "octo"];
    let mirror = ["--actions-url", "file:///nonexistent-runnel-mirror"];
    let (stdout, _) = run_in(dir.path(), &[&args[..], &mirror[..]].concat(), 0);
    assert_eq!(
        stdout
            .matches("Skipping `actions/checkout@v4`: the workspace is this run's working tree")
            .count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("the tree being debugged"), "{stdout}");
    assert!(
        stdout.contains("repo=acme/tool owner=acme server=https://gitea.example.com actor=octo"),
        "{stdout}"
    );
}

/// Workflow and job `env` may name the workspace: they are evaluated once the job's
/// environment exists (act's case `job-env-workspace`, GitHub's behaviour).
#[test]
fn workflow_and_job_env_see_the_workspace() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\nenv:\n  TOP: ${{ github.workspace }}/top\njobs:\n  a:\n    runs-on: x\n    \
         env:\n      WS: ${{ github.workspace }}/sub\n    steps:\n      \
         - run: echo \"ws=$WS top=$TOP\"\n",
    );
    let (stdout, _) = run_in(dir.path(), &["--no-cache-server"], 0);
    let workspace = std::fs::canonicalize(dir.path()).expect("canonical");
    let expected = format!("ws={0}/sub top={0}/top", workspace.display());
    assert!(stdout.contains(&expected), "{expected}: {stdout}");
}

/// act's files and flags: `.env`/`--env` for every step's process (workflow `env:` wins),
/// `.secrets` (masked), `.vars`, `.input` (`--input` wins), `-n` as `--plan`.
#[test]
fn act_files_and_flags_reach_the_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: workflow_dispatch\nenv:\n  OVERRIDDEN: by-workflow\njobs:\n  a:\n    runs-on: x\n    \
         steps:\n      \
         - run: echo \"env=$FROM_ENV_FILE flag=$FROM_FLAG over=$OVERRIDDEN var=${{ vars.COLOUR }} \
         input=${{ inputs.size }}/${{ inputs.shape }} secret=${{ secrets.TOKEN }}\"\n",
    );
    let root = dir.path();
    std::fs::write(
        root.join(".env"),
        "# comment\nexport FROM_ENV_FILE=\"dotenv\"\nOVERRIDDEN=by-env-file\n",
    )
    .expect("env");
    std::fs::write(root.join(".secrets"), "TOKEN=very-secret-token\n").expect("secrets");
    std::fs::write(root.join(".vars"), "COLOUR=blue\n").expect("vars");
    std::fs::write(root.join(".input"), "size=large\nshape=round\n").expect("input");
    let args = [
        "workflow_dispatch",
        "--no-cache-server",
        "--env",
        "FROM_FLAG=flag",
        "--input",
        "shape=square",
    ];
    let (stdout, _) = run_in(root, &args, 0);
    assert!(
        stdout.contains(
            "env=dotenv flag=flag over=by-workflow var=blue input=large/square secret=***"
        ),
        "{stdout}"
    );

    let (stdout, _) = run_in(root, &["workflow_dispatch", "-n"], 0);
    assert!(
        !stdout.contains("env=dotenv"),
        "a dry run runs nothing: {stdout}"
    );
}

/// The Gitea runner's names for the file commands (`GITEA_OUTPUT`, …) work like GitHub's,
/// and `RUNNER_WORKSPACE` is the directory holding the workspace.
#[test]
fn gitea_file_command_names_and_runner_workspace() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      \
         - id: first\n        run: |\n          echo \"colour=blue\" >> \"$GITEA_OUTPUT\"\n          \
         echo \"FROM_GITEA_ENV=set\" >> \"$GITEA_ENV\"\n          \
         [ \"$GITEA_STEP_SUMMARY\" = \"$GITHUB_STEP_SUMMARY\" ] && echo same-summary-file\n          \
         [ \"$RUNNER_WORKSPACE\" = \"$(dirname \"$GITHUB_WORKSPACE\")\" ] && echo runner-workspace-ok\n      \
         - run: echo \"colour=${{ steps.first.outputs.colour }} env=$FROM_GITEA_ENV\"\n",
    );
    let (stdout, _) = run_in(dir.path(), &["--no-cache-server"], 0);
    for expected in [
        "same-summary-file",
        "runner-workspace-ok",
        "colour=blue env=set",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
}

/// Computed keys and `${{ insert }}` in `env:` (workflow, job, step), as matrix keys and in a
/// job's `defaults.run` reach the steps as GitHub evaluates them (act's host cases for the insert directive and for an
/// expression as a matrix key); a key defined twice fails the job at its position.
#[test]
fn computed_keys_and_insert_reach_the_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = repo_root().join("crates/runnel-cli/tests/fixtures/computed-keys/ci.yml");
    write_workflow(
        dir.path(),
        &std::fs::read_to_string(&fixture).expect("read fixture"),
    );
    let (stdout, _) = run_in(dir.path(), &["--no-cache-server"], 0);
    for expected in [
        "[keys (one, 7, e1)]   A=1 B=2 WF=wf JOB=job-one LEG=one C=true D=3.5 STEP=yes extra=e1 v=7",
        "[keys (two, 7)]   A=1 B=2 WF=wf JOB=job-two LEG=two C=true D=3.5 STEP=yes extra= v=7",
        "[defaults]   defaults dir=/ bash=none",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    write_workflow(
        dir.path(),
        "on: push\njobs:\n  a:\n    runs-on: x\n    env:\n      PATH_X: 1\n      \
         ${{ insert }}: ${{ fromJSON('{\"path_x\":\"2\"}') }}\n    steps:\n      - run: echo ran\n",
    );
    let (stdout, _) = run_in(dir.path(), &["--no-cache-server"], 1);
    assert!(
        stdout.contains("ci.yml:7:7: `path_x` is already defined"),
        "{stdout}"
    );
    assert!(!stdout.contains("ran"), "{stdout}");

    write_workflow(
        dir.path(),
        "on: push\njobs:\n  a:\n    runs-on: x\n    defaults:\n      run:\n        \
         ${{ insert }}: ${{ fromJSON('{\"shel\":\"sh\"}') }}\n    steps:\n      - run: echo ran\n",
    );
    let (stdout, _) = run_in(dir.path(), &["--no-cache-server"], 1);
    assert!(
        stdout.contains("defaults.run: unexpected key 'shel'"),
        "{stdout}"
    );
    assert!(!stdout.contains("  ran"), "{stdout}");
}

/// `--no-skip-checkout` runs `actions/checkout` of the run's own repository for real; the real
/// action empties the workspace before fetching into it, so host jobs must then work on a copy:
/// the user's tree (and its `.git`) is left as it was. (It was emptied once, history included,
/// by the stock `actions/checkout@v7`.)
#[test]
fn a_real_checkout_never_empties_the_users_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mirror = tempfile::tempdir().expect("mirror");
    let action = tempfile::tempdir().expect("action");
    // A stand-in doing what the stock action does first: delete the workspace's contents.
    std::fs::write(
        action.path().join("action.yml"),
        "name: checkout\nruns:\n  using: composite\n  steps:\n    \
         - run: find \"$GITHUB_WORKSPACE\" -mindepth 1 -delete && echo fetched > \"$GITHUB_WORKSPACE/FETCHED\" && ls -A \"$GITHUB_WORKSPACE\"\n      \
         shell: bash\n",
    )
    .expect("action.yml");
    crate::support::publish_to_mirror(mirror.path(), "actions/checkout", action.path(), "v4");
    write_workflow(
        dir.path(),
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      \
         - uses: actions/checkout@v4\n      \
         - run: echo \"after=$(ls -A)\"\n",
    );
    std::fs::write(dir.path().join("README.md"), "mine\n").expect("readme");
    crate::support::git(dir.path(), &["init", "-q"]);
    let url = format!("file://{}", mirror.path().display());
    let (stdout, _) = run_in(
        dir.path(),
        &[
            "--no-cache-server",
            "--no-skip-checkout",
            "--actions-url",
            &url,
        ],
        0,
    );
    assert!(stdout.contains("after=FETCHED"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md"))
            .ok()
            .as_deref(),
        Some("mine\n"),
        "the user's tree was changed: {stdout}"
    );
    assert!(dir.path().join(".git/HEAD").exists(), "{stdout}");
    assert!(!dir.path().join("FETCHED").exists(), "{stdout}");
}
