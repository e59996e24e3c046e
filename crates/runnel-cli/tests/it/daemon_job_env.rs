//! The Gitea runner's (v3.3) job variables through `runnel daemon` and the real Gitea, on the
//! host and in Docker (issue #16 item 9): `ACT` by default, `ImageOS`, `RUNNER_WORKSPACE`, and
//! `runner.tool_cache_mode: shared` — what one job puts in `RUNNER_TOOL_CACHE` the next job
//! finds (a directory under the host work directory; the `runnel-toolcache` volume in Docker).

use crate::daemon_gitea::{completed_jobs, gitea, register_with, unique, workflow};
use crate::run::docker_or_skip;
use crate::run_registry::docker;

/// `ImageOS` of a runs-on label naming no release, as the Gitea runner derives it.
fn image_os_of_label(label: &str) -> String {
    let joined = label.replacen('-', "", 1);
    joined.split('.').next().unwrap_or_default().to_owned()
}

#[test]
fn jobs_get_the_gitea_runners_variables_and_share_the_tool_cache() {
    let test = "jobs_get_the_gitea_runners_variables_and_share_the_tool_cache";
    if !docker_or_skip(test) {
        return;
    }
    let Some(gitea) = gitea(test) else {
        return;
    };
    // An image tagged with a release: `ImageOS` comes from the tag.
    let image = format!("runnel-it/{}:ubuntu-24.04", unique("imageos"));
    docker(&["tag", "runnel-test/debian:bookworm", &image]);
    let runner = register_with(
        gitea,
        "jobenv",
        |l| format!("{l}:host,{l}-docker:docker://{image}"),
        &[],
    );
    let label = &runner.label;
    let work = runner.dir.path().join("work");
    runner.write_config(&format!(
        "runner:\n  tool_cache_mode: shared\nhost:\n  workdir_parent: {}\n",
        work.display()
    ));
    let marker = unique("tool");
    let step = |check: &str| {
        format!(
            "      - run: |\n          echo \"act=$ACT imageos=$ImageOS\"\n          \
             echo \"tool_cache=$RUNNER_TOOL_CACHE\"\n          \
             test \"$RUNNER_WORKSPACE\" = \"$(dirname \"$GITHUB_WORKSPACE\")\"\n          \
             {check}\n"
        )
    };
    let write = format!(
        "mkdir -p \"$RUNNER_TOOL_CACHE/{marker}/1.0.0\" && touch \"$RUNNER_TOOL_CACHE/{marker}/1.0.0/x64.complete\""
    );
    let read = format!(
        "test -f \"$RUNNER_TOOL_CACHE/{marker}/1.0.0/x64.complete\" && rm -rf \"$RUNNER_TOOL_CACHE/{marker}\" && echo found-earlier-tool"
    );
    let jobs = format!(
        "  host-write:\n    runs-on: {label}\n    steps:\n{}  host-read:\n    needs: host-write\n    runs-on: {label}\n    steps:\n{}  docker-write:\n    needs: host-read\n    runs-on: {label}-docker\n    steps:\n{}  docker-read:\n    needs: docker-write\n    runs-on: {label}-docker\n    steps:\n{}",
        step(&write),
        step(&read),
        step(&write),
        step(&read),
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon(&["-c", "config.yaml"]);
    let jobs = completed_jobs(gitea, &runner, 4);
    runner.stop(daemon);
    docker(&["rmi", &image]);
    let host_cache = format!("tool_cache={}/tool_cache", work.display());
    for job in &jobs {
        let name = job["name"].as_str().unwrap_or_default().to_owned();
        let lines = gitea
            .log_lines(job["id"].as_i64().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            job["conclusion"],
            "success",
            "{name}: {lines:#?}\n{}",
            runner.daemon_log()
        );
        let (imageos, cache) = if name.starts_with("docker") {
            (
                "ubuntu24".to_owned(),
                "tool_cache=/opt/hostedtoolcache".to_owned(),
            )
        } else {
            (image_os_of_label(label), host_cache.clone())
        };
        let expected = [format!("act=true imageos={imageos}"), cache];
        for line in &expected {
            assert!(
                lines.iter().any(|l| l == line),
                "{name}: {line}: {lines:#?}"
            );
        }
        if name.ends_with("read") {
            assert!(
                lines.iter().any(|l| l == "found-earlier-tool"),
                "{name}: {lines:#?}"
            );
        }
    }
    // The shared tool cache outlives the jobs; job directories do not.
    let names = |dir: &std::path::Path| -> Vec<_> {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    let mut left = names(&work);
    left.sort();
    assert_eq!(
        left,
        ["docker-jobs", "tool_cache"],
        "left in the work directory"
    );
    assert!(
        names(&work.join("docker-jobs")).is_empty(),
        "Docker job directories left"
    );
}
