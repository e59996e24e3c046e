//! `hashFiles()` in daemon jobs, against the real Gitea: it reads the workspace the steps see
//! (a host job's directory, a Docker job's bind-mounted job directory), so a cache key built
//! from it works on host and Docker labels alike.

use crate::daemon_gitea::{completed_jobs, gitea, register_with, workflow};

/// SHA-256 of the SHA-256 of `data\n`: what `hashFiles('data.txt')` gives for that file.
const EXPECTED: &str = "hash=53c0852f4dbe48a8124fa0388c4d38b82466d179a252ab8519d1486ecd636bfb";

fn hash_in_a_job(test: &str, label_spec: impl Fn(&str) -> String) {
    let Some(gitea) = gitea(test) else {
        return;
    };
    let runner = register_with(gitea, "hashing", label_spec, &[]);
    let label = &runner.label;
    let jobs = format!(
        "  hash:\n    runs-on: {label}\n    steps:\n      - run: echo data > data.txt\n      \
         - run: echo \"hash=${{{{ hashFiles('data.txt') }}}}\"\n      \
         - run: echo \"none=${{{{ hashFiles('missing/**') }}}}.\"\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon(&["--once"]);
    let status = runner.wait(daemon);
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    let text = gitea.log_text(&job);
    assert_eq!(job["conclusion"], "success", "{text}");
    assert!(text.contains(EXPECTED), "{text}");
    assert!(text.contains("none=."), "{text}");
}

#[test]
fn hash_files_reads_a_host_jobs_workspace() {
    hash_in_a_job("hash_files_reads_a_host_jobs_workspace", |l| {
        format!("{l}:host")
    });
}

#[test]
fn hash_files_reads_a_docker_jobs_workspace() {
    if std::env::var_os("RUN_SLOW_TESTS").is_some() {
        crate::run::docker_or_skip("hash_files_reads_a_docker_jobs_workspace");
    }
    hash_in_a_job("hash_files_reads_a_docker_jobs_workspace", |l| {
        format!("{l}:docker://runnel-test/busybox")
    });
}
