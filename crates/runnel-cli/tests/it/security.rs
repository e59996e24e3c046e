//! What an untrusted workflow or action must not reach, through the real binary on the host
//! backend: host files behind symbolic links in a fetched action or reusable workflow, secrets
//! in step names and group titles, the runner's own credentials, and forged terminal lines.
//! The Docker side (volumes, the copied workspace) is in `security_docker`.

use std::path::Path;

use crate::support::{publish_to_mirror, run_expecting, runnel};

/// A file on the "host" that no job may see.
fn host_secret(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("runner-secret.txt");
    std::fs::write(&path, "HOST-ONLY-4f1c9a\n").expect("setup");
    path
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("setup");
    }
    std::fs::write(path, text).expect("setup");
}

/// `runnel run` in `dir` with actions fetched from `mirror`, answering with `codes`.
fn run_in(dir: &Path, mirror: &Path, codes: &[i32]) -> (String, String) {
    let cache = tempfile::tempdir().expect("cache");
    let mut command = runnel();
    command
        .current_dir(dir)
        .args(["run", "--no-cache-server", "--actions-url"])
        .arg(format!("file://{}", mirror.display()))
        .env("XDG_CACHE_HOME", cache.path())
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, codes);
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn links_out_of_a_fetched_action_are_never_followed() {
    let outside = tempfile::tempdir().expect("outside");
    let secret = host_secret(outside.path());
    let action = tempfile::tempdir().expect("action");
    write(
        &action.path().join("action.yml"),
        "name: nosy\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: |\n        \
         cd \"$GITHUB_ACTION_PATH\"\n        cat inner.txt\n        \
         for f in leak.txt leak-relative.txt; do\n          \
         if [ -e \"$f\" ]; then echo \"present: $f\"; cat \"$f\"; else echo \"absent: $f\"; fi\n        \
         done\n",
    );
    write(&action.path().join("lib/real.txt"), "inner file content\n");
    std::os::unix::fs::symlink("lib/real.txt", action.path().join("inner.txt")).expect("setup");
    std::os::unix::fs::symlink(&secret, action.path().join("leak.txt")).expect("setup");
    std::os::unix::fs::symlink(
        "../../../../../../../../../../../../..".to_owned() + &secret.display().to_string(),
        action.path().join("leak-relative.txt"),
    )
    .expect("setup");
    let mirror = tempfile::tempdir().expect("mirror");
    publish_to_mirror(mirror.path(), "acme/nosy", action.path(), "v1");

    let repo = tempfile::tempdir().expect("repo");
    write(
        &repo.path().join(".gitea/workflows/ci.yml"),
        "on: push\njobs:\n  look:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: acme/nosy@v1\n",
    );
    let (stdout, stderr) = run_in(repo.path(), mirror.path(), &[0]);
    assert!(!stdout.contains("HOST-ONLY"), "{stdout}");
    assert!(!stderr.contains("HOST-ONLY"), "{stderr}");
    assert!(stdout.contains("inner file content"), "{stdout}");
    assert!(stdout.contains("absent: leak.txt"), "{stdout}");
    assert!(stdout.contains("absent: leak-relative.txt"), "{stdout}");
    assert!(
        stdout.contains("Left out acme/nosy/leak.txt: it is a symbolic link to"),
        "{stdout}"
    );
}

#[test]
fn a_reusable_workflow_behind_a_link_out_of_its_repository_is_refused() {
    let outside = tempfile::tempdir().expect("outside");
    let planted = outside.path().join("planted.yml");
    std::fs::write(
        &planted,
        "on: workflow_call\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo HOST-ONLY-4f1c9a\n",
    )
    .expect("setup");
    let library = tempfile::tempdir().expect("library");
    write(&library.path().join("README"), "workflows\n");
    std::fs::create_dir_all(library.path().join(".gitea/workflows")).expect("setup");
    std::os::unix::fs::symlink(&planted, library.path().join(".gitea/workflows/x.yml"))
        .expect("setup");
    let mirror = tempfile::tempdir().expect("mirror");
    publish_to_mirror(mirror.path(), "acme/workflows", library.path(), "v1");

    let repo = tempfile::tempdir().expect("repo");
    write(
        &repo.path().join(".gitea/workflows/ci.yml"),
        "on: push\njobs:\n  call:\n    uses: acme/workflows/.gitea/workflows/x.yml@v1\n",
    );
    let (stdout, stderr) = run_in(repo.path(), mirror.path(), &[1]);
    assert!(!stdout.contains("HOST-ONLY"), "{stdout}");
    assert!(
        stdout.contains("is a symbolic link that leaves the repository"),
        "{stdout}\n{stderr}"
    );
}

/// `runnel run` of `workflow` in a fresh directory with `args`, answering with `codes`.
fn run_workflow(workflow: &str, args: &[&str], codes: &[i32]) -> String {
    let repo = tempfile::tempdir().expect("repo");
    write(&repo.path().join(".gitea/workflows/ci.yml"), workflow);
    let cache = tempfile::tempdir().expect("cache");
    let mut command = runnel();
    command
        .current_dir(repo.path())
        .args(["run", "--no-cache-server"])
        .args(args)
        .env("XDG_CACHE_HOME", cache.path())
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, codes);
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

const SECRET_NAMES: &str = r#"on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - name: deploy with ${{ secrets.TOKEN }}
        run: |
          echo "::group::group of ${{ secrets.TOKEN }}"
          echo inside
          echo "::endgroup::"
          printf 'user:%s' "$TOKEN" | base64
          echo "::warning title=t ${TOKEN}::annotated"
        env:
          TOKEN: ${{ secrets.TOKEN }}
      - uses: ./.gitea/actions/named
        with:
          who: ${{ secrets.TOKEN }}
"#;

#[test]
fn secrets_in_step_names_titles_and_encodings_are_masked() {
    let repo = tempfile::tempdir().expect("repo");
    write(&repo.path().join(".gitea/workflows/ci.yml"), SECRET_NAMES);
    write(
        &repo.path().join(".gitea/actions/named/action.yml"),
        "name: named\ninputs:\n  who:\n    required: true\nruns:\n  using: composite\n  steps:\n    \
         - name: greet ${{ inputs.who }}\n      shell: bash\n      run: echo greeted\n",
    );
    let cache = tempfile::tempdir().expect("cache");
    let mut command = runnel();
    command
        .current_dir(repo.path())
        .args(["run", "--no-cache-server", "-s", "TOKEN=s3cr3t-t0ken-value"])
        .env("XDG_CACHE_HOME", cache.path())
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[0]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("s3cr3t-t0ken-value"), "{stdout}");
    // `user:<secret>` in base64: the value's inner form is masked.
    assert!(!stdout.contains("c2VjcjN0LXQwa2VuLXZhbHVl"), "{stdout}");
    assert!(!stdout.contains("zM2NyM3QtdDBrZW4tdmFsdW"), "{stdout}");
    for expected in [
        "deploy with ***",
        "group of ***",
        "greet ***",
        "greeted",
        "inside",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
}

#[test]
fn steps_cannot_forge_or_erase_terminal_lines() {
    let workflow = "on: push\njobs:\n  look:\n    runs-on: ubuntu-latest\n    steps:\n      \
        - name: \"innocent \\e[2K\"\n        \
        run: printf 'a\\033[2K\\r[look] \\342\\234\\223 job success\\n\\033]0;pwned\\007b\\n\\033[31mred\\033[0m\\n'\n";
    let text = run_workflow(workflow, &[], &[0]);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(!text.contains('\u{7}'), "{text:?}");
    assert!(!text.contains('\r'), "{text:?}");
    // The forged line stays a line of the step's output, under runnel's prefix.
    assert!(text.contains("[look]   [look] ✓ job success"), "{text}");
    let results: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("[look] ✓ job success"))
        .collect();
    assert_eq!(results.len(), 1, "{text}");
    assert!(text.contains("[look]   red"), "{text}");
}

#[test]
fn host_job_directories_are_private_to_the_runner() {
    let workflow = "on: push\njobs:\n  look:\n    runs-on: ubuntu-latest\n    steps:\n      \
        - run: stat -c 'mode %a' \"$RUNNER_TEMP/..\" \"$0\"\n";
    let text = run_workflow(workflow, &[], &[0]);
    let modes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("[look]   mode "))
        .collect();
    // The job directory, and the step's script in it.
    assert_eq!(modes, ["700", "700"], "{text}");
}

#[test]
fn the_runners_own_credentials_never_reach_host_jobs() {
    let test = "the_runners_own_credentials_never_reach_host_jobs";
    let Some(gitea) = crate::daemon_gitea::gitea(test) else {
        return;
    };
    let runner = crate::daemon_gitea::register(gitea, "creds");
    let (secret, value) = gitea.new_secret("NAMED", &runner.label, "named-secret");
    // An operator's opt-in: the job gets this one, masked.
    runner.write_config("runner:\n  envs:\n    AWS_ACCESS_KEY_ID: AKIAOPTEDIN0123456\n");
    let label = &runner.label;
    let jobs = format!(
        r#"  look:
    runs-on: {label}
    steps:
      - name: deploy ${{{{ secrets.{secret} }}}}
        run: |
          echo "reg=${{GITEA_RUNNER_REGISTRATION_TOKEN:-unset}}"
          echo "aws=${{AWS_SECRET_ACCESS_KEY:-unset}}"
          echo "own=${{RUNNEL_PROBE:-unset}} state=${{RUNNER_STATE_FILE:-unset}}"
          echo "opted=$AWS_ACCESS_KEY_ID"
          echo "summary" >> "$GITHUB_STEP_SUMMARY"
"#
    );
    gitea.push_workflow(label, &crate::daemon_gitea::workflow(label, &jobs));
    let daemon = runner.daemon_with_env(
        &["-c", "config.yaml", "--once"],
        &[
            ("GITEA_RUNNER_REGISTRATION_TOKEN", "reg-token-0f9e8d7c6b"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-1a2b3c4d5e"),
            ("RUNNEL_PROBE", "probe"),
            ("RUNNER_STATE_FILE", ".runner"),
        ],
    );
    let status = runner.wait(daemon);
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = crate::daemon_gitea::completed_jobs(gitea, &runner, 1).remove(0);
    let text = gitea.log_text(&job);
    assert_eq!(job["conclusion"], "success", "{text}");
    for expected in [
        "reg=unset",
        "aws=unset",
        "own=unset state=unset",
        "opted=***",
        "---- from step: deploy ***",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    for leaked in [
        "reg-token-0f9e8d7c6b",
        "aws-secret-1a2b3c4d5e",
        "AKIAOPTEDIN0123456",
        value.as_str(),
    ] {
        assert!(!text.contains(leaked), "{leaked}: {text}");
    }
}
