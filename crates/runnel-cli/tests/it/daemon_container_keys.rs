//! act_runner's `container:` keys applied by `runnel daemon`, against the real Gitea and the
//! test registry: a `docker://` label whose image is present locally in an old version and
//! newer in the registry; with `force_pull` the job pulls the new one (progress in Gitea's job
//! log, credentials from the daemon's Docker client config), `options` reach the job
//! container, and `workdir_parent` moves the workspace. Nothing is left behind. And
//! `workflow_options_allowed` lets a workflow's option through that is refused without it.

use crate::daemon_gitea::{completed_jobs, gitea, register_with, unique, workflow};
use crate::run_registry::{Pushed, Registry, build_image, docker};

#[test]
fn force_pull_options_and_workdir_parent_from_the_config_apply_to_jobs() {
    let test = "force_pull_options_and_workdir_parent_from_the_config_apply_to_jobs";
    let Some(gitea) = gitea(test) else {
        return;
    };
    let Some(registry) = Registry::start(test) else {
        return;
    };
    // The registry has the new image; this machine has the old one under the same name.
    let name = unique("forced");
    let (old, new) = (
        format!("runnel-it/{name}-old:1"),
        format!("runnel-it/{name}-new:1"),
    );
    build_image(&old, "old-image");
    build_image(&new, "new-image");
    let pushed: Pushed = registry.push(&new, &format!("runnel-it/{name}:1"));
    docker(&["tag", &old, &pushed.reference]);
    docker(&["rmi", &old, &new]);
    let image = &pushed.reference;

    let runner = register_with(gitea, "forced", |l| format!("{l}:docker://{image}"), &[]);
    runner.write_config(
        "container:\n  force_pull: true\n  options: --env RUNNEL_OPERATOR=set --label \
         ci.owner=ops\n  workdir_parent: ci\n",
    );
    let label = &runner.label;
    let jobs = format!(
        r#"  forced:
    runs-on: {label}
    steps:
      - run: cat /marker
      - run: echo "operator=$RUNNEL_OPERATOR"
      - run: echo "workspace=$GITHUB_WORKSPACE" && pwd
"#
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon_with_env(
        &["-c", "config.yaml", "--once"],
        &[("DOCKER_CONFIG", &registry.docker_config)],
    );
    let pid = daemon.id();
    let status = runner.wait(daemon);
    let leftover = docker(&["ps", "-aq", "--filter", &format!("label=runnel.pid={pid}")]);
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        job["conclusion"],
        "success",
        "{job}\n{lines:#?}\n{}",
        runner.daemon_log()
    );
    let client_config = format!("{}/config.json", registry.docker_config);
    let pulling = format!("pulling {image} with the credentials in {client_config}");
    let pulled = format!("pulled {image} in ");
    assert!(
        lines.iter().any(|l| l.contains(&pulling)),
        "{pulling}: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&pulled) && l.contains("3.0 MB downloaded in 1 layer")),
        "{pulled}: {lines:#?}"
    );
    for expected in [
        "new-image",
        "operator=set",
        "workspace=/ci/workspace",
        "/ci/workspace",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}: {lines:#?}"
        );
    }
    assert!(!lines.iter().any(|l| l == "old-image"), "{lines:#?}");
    assert!(
        !runner.daemon_log().contains("not supported by runnel yet"),
        "{}",
        runner.daemon_log()
    );
    assert_eq!(leftover, "", "containers left behind");
}

/// `container.workflow_options_allowed` through `runnel daemon` and the real Gitea: a
/// workflow's `options: --group-add …` (outside the allow-list, like `--gpus`) fails the job
/// naming the option by default, and applies once the operator allows it.
#[test]
fn workflow_options_allowed_lets_a_workflow_option_through() {
    let test = "workflow_options_allowed_lets_a_workflow_option_through";
    if !crate::run::docker_or_skip(test) {
        return;
    }
    let Some(gitea) = gitea(test) else {
        return;
    };
    let jobs = |label: &str| {
        format!(
            "  grouped:\n    runs-on: {label}\n    container:\n      image: runnel-test/debian:bookworm\n      options: --group-add 4321\n    steps:\n      - run: echo \"groups=$(id -G)\"\n"
        )
    };
    let mut lines_of = Vec::new();
    for (prefix, config) in [
        ("optsrefused", ""),
        (
            "optsallowed",
            "container:\n  workflow_options_allowed: ['--group-add']\n",
        ),
    ] {
        let runner = register_with(
            gitea,
            prefix,
            |l| format!("{l}:docker://runnel-test/debian:bookworm"),
            &[],
        );
        runner.write_config(config);
        let label = &runner.label;
        gitea.push_workflow(label, &workflow(label, &jobs(label)));
        let daemon = runner.daemon(&["-c", "config.yaml", "--once"]);
        let status = runner.wait(daemon);
        assert!(status.success(), "{status}\n{}", runner.daemon_log());
        let job = completed_jobs(gitea, &runner, 1).remove(0);
        let lines = gitea
            .log_lines(job["id"].as_i64().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        lines_of.push((job["conclusion"].clone(), lines));
    }
    let (refused, refused_lines) = &lines_of[0];
    assert_eq!(refused, "failure", "{refused_lines:#?}");
    assert!(
        refused_lines
            .iter()
            .any(|l| l.contains("option `--group-add` is not allowed")),
        "{refused_lines:#?}"
    );
    let (allowed, allowed_lines) = &lines_of[1];
    assert_eq!(allowed, "success", "{allowed_lines:#?}");
    assert!(
        allowed_lines
            .iter()
            .any(|l| l.starts_with("groups=") && l.split(' ').any(|g| g == "4321")),
        "{allowed_lines:#?}"
    );
}
