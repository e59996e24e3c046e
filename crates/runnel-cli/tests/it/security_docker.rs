//! What a job container must not reach, through the real binary and Docker: `runnel run`
//! gives each container job a copy of the working tree (a step cannot plant `.git/hooks` or
//! leave files in the user's clone; `--bind` opts in to the tree itself), and the daemon
//! normalises `volumes:` before matching `valid_volumes` (no `..`, no links out of an allowed
//! directory, never the Docker socket's directory), against the real Gitea.

use std::path::Path;

use crate::daemon_gitea::{completed_jobs, gitea, register_with, workflow};
use crate::run::docker_or_skip;
use crate::support::{git, run_expecting, runnel};

const PLANTING: &str = r#"on: push
jobs:
  plant:
    runs-on: ubuntu-latest
    steps:
      - run: cat README.md
      - run: if [ -e build/output.bin ]; then echo "build output copied"; else echo "no build output"; fi
      - run: |
          echo 'echo pwned > /tmp/pwned' > .git/hooks/post-checkout
          chmod +x .git/hooks/post-checkout
          echo planted > planted.txt
          echo changed >> README.md
"#;

/// A git repository with a tracked README, an ignored build output and the workflow.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("repo");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".gitea/workflows")).expect("setup");
    std::fs::create_dir_all(root.join("build")).expect("setup");
    std::fs::write(root.join(".gitea/workflows/ci.yml"), PLANTING).expect("setup");
    std::fs::write(root.join("README.md"), "readme of the user's tree\n").expect("setup");
    std::fs::write(root.join(".gitignore"), "build/\n").expect("setup");
    std::fs::write(root.join("build/output.bin"), "big").expect("setup");
    git(root, &["init", "-q"]);
    git(root, &["add", "-A", "."]);
    git(root, &["commit", "-q", "-m", "init"]);
    dir
}

fn run_planting(dir: &Path, extra: &[&str]) -> String {
    let cache = tempfile::tempdir().expect("cache");
    let mut command = runnel();
    command
        .current_dir(dir)
        .args([
            "run",
            "--no-cache-server",
            "-P",
            "ubuntu-latest=runnel-test/busybox",
        ])
        .args(extra)
        .env("XDG_CACHE_HOME", cache.path())
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[0]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn container_jobs_work_on_a_copy_of_the_working_tree() {
    if !docker_or_skip("container_jobs_work_on_a_copy_of_the_working_tree") {
        return;
    }
    let repo = repository();
    let stdout = run_planting(repo.path(), &[]);
    assert!(stdout.contains("readme of the user's tree"), "{stdout}");
    assert!(stdout.contains("no build output"), "{stdout}");
    assert!(
        stdout.contains("Copied the working tree into the job's workspace ("),
        "{stdout}"
    );
    let root = repo.path();
    assert!(
        !root.join(".git/hooks/post-checkout").exists(),
        "hook planted"
    );
    assert!(!root.join("planted.txt").exists(), "file left in the tree");
    assert_eq!(
        std::fs::read_to_string(root.join("README.md")).expect("readme"),
        "readme of the user's tree\n"
    );
}

#[test]
fn bind_mounts_the_working_tree_as_act_does() {
    if !docker_or_skip("bind_mounts_the_working_tree_as_act_does") {
        return;
    }
    let repo = repository();
    let stdout = run_planting(repo.path(), &["--bind"]);
    assert!(stdout.contains("build output copied"), "{stdout}");
    assert!(!stdout.contains("Copied the working tree"), "{stdout}");
    assert!(repo.path().join("planted.txt").exists(), "{stdout}");
}

#[test]
fn volumes_are_normalised_before_valid_volumes_match() {
    let test = "volumes_are_normalised_before_valid_volumes_match";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let data = tempfile::tempdir().expect("data");
    let allowed = data.path().join("allowed");
    std::fs::create_dir_all(allowed.join("cache")).expect("setup");
    std::fs::write(allowed.join("cache/hello.txt"), "allowed content").expect("setup");
    std::os::unix::fs::symlink("/var/run", allowed.join("run-link")).expect("setup");
    std::os::unix::fs::symlink("/etc", allowed.join("etc-link")).expect("setup");
    let allowed = allowed.display().to_string();
    let runner = register_with(
        gitea,
        "volumes",
        |l| format!("{l}:docker://runnel-test/busybox"),
        &[],
    );
    runner.write_config(&format!(
        "container:\n  valid_volumes:\n    - '{allowed}/**'\n"
    ));
    let label = &runner.label;
    let job = |id: &str, volume: &str, run: &str| {
        format!(
            "  {id}:\n    runs-on: {label}\n    container:\n      image: runnel-test/busybox\n      \
             volumes:\n        - '{volume}'\n    steps:\n      - run: {run}\n"
        )
    };
    let jobs = [
        job(
            "allowed",
            &format!("{allowed}/cache:/data"),
            "cat /data/hello.txt",
        ),
        job(
            "climbs",
            &format!("{allowed}/../../../../../../var/run:/x"),
            "ls /x",
        ),
        job("socket-dir", &format!("{allowed}/run-link:/x"), "ls /x"),
        job(
            "elsewhere",
            &format!("{allowed}/etc-link:/x"),
            "cat /x/shadow",
        ),
    ]
    .concat();
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon(&["-c", "config.yaml"]);
    let jobs = completed_jobs(gitea, &runner, 4);
    runner.stop(daemon);
    for job in &jobs {
        let name = job["name"].as_str().unwrap_or_default();
        let lines = gitea
            .log_lines(job["id"].as_i64().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let text = lines.join("\n");
        let (conclusion, expected) = match name {
            "allowed" => ("success", "allowed content".to_owned()),
            "climbs" => (
                "failure",
                "`..` is not allowed in a bind mount source".to_owned(),
            ),
            "socket-dir" => ("failure", "holds the Docker socket".to_owned()),
            "elsewhere" => (
                "failure",
                "matches none of the backend's valid_volumes".to_owned(),
            ),
            other => panic!("unexpected job {other}"),
        };
        assert_eq!(job["conclusion"], conclusion, "{name}: {text}");
        assert!(text.contains(&expected), "{name}: {expected}\n{text}");
    }
}

/// `container.docker_host` as the Gitea runner reads it, against the real Gitea: written
/// empty, the engine's socket is in the job container and `docker build` works there (the
/// Docker CLI comes from this machine through `valid_volumes`); `-` (what `generate-config`
/// writes) keeps it out.
#[test]
fn docker_host_mounts_the_engine_only_when_the_config_asks() {
    let test = "docker_host_mounts_the_engine_only_when_the_config_asks";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let cli = "/usr/bin/docker";
    assert!(
        Path::new(cli).exists(),
        "{test}: Debian's docker.io client is missing"
    );
    for (docker_host, mounted) in [("''", true), ("'-'", false)] {
        let runner = register_with(
            gitea,
            "socket",
            |l| format!("{l}:docker://runnel-test/debian:bookworm"),
            &[],
        );
        runner.write_config(&format!(
            "container:\n  docker_host: {docker_host}\n  valid_volumes: ['{cli}']\n"
        ));
        let label = &runner.label;
        let jobs = format!(
            r#"  build:
    runs-on: {label}
    container:
      image: runnel-test/debian:bookworm
      volumes:
        - {cli}:/usr/local/bin/docker:ro
    steps:
      - run: |
          if [ -S /var/run/docker.sock ]; then echo "socket present"; else echo "socket absent"; exit 0; fi
          docker version --format 'engine {{{{.Server.Version}}}}'
          printf 'FROM runnel-test/busybox\nRUN echo built-in-job\n' > Dockerfile
          docker build -q -t runnel-it/built-in-job:{label} . && echo "build ok"
          docker rmi -f runnel-it/built-in-job:{label} >/dev/null
"#
        );
        gitea.push_workflow(label, &workflow(label, &jobs));
        let daemon = runner.daemon(&["-c", "config.yaml", "--once"]);
        let status = runner.wait(daemon);
        assert!(status.success(), "{status}\n{}", runner.daemon_log());
        let job = completed_jobs(gitea, &runner, 1).remove(0);
        let text = gitea.log_text(&job);
        assert_eq!(job["conclusion"], "success", "{docker_host}: {text}");
        if mounted {
            for expected in ["socket present", "engine ", "build ok"] {
                assert!(text.contains(expected), "{docker_host}: {expected}\n{text}");
            }
            assert!(
                runner.daemon_log().contains("mounts the Docker socket"),
                "the operator is warned: {}",
                runner.daemon_log()
            );
        } else {
            assert!(text.contains("socket absent"), "{docker_host}: {text}");
        }
    }
}
