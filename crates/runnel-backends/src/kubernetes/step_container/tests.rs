use std::collections::BTreeMap;

use super::*;

fn mount(source: &str, target: &str) -> ContainerMount {
    ContainerMount {
        source: source.to_owned(),
        target: target.to_owned(),
    }
}

/// The engine's mounts (`job::action::container`) with the pod's paths.
fn engine_mounts() -> Vec<ContainerMount> {
    vec![
        mount("/__w/workspace", "/github/workspace"),
        mount("/__w/_temp/_github_home", "/github/home"),
        mount("/__w/_temp/_github_workflow", "/github/workflow"),
        mount("/__w/_temp/_runner_file_commands", "/github/file_commands"),
        mount("/__w/_temp", "/github/runner_temp"),
    ]
}

#[test]
fn the_engines_mounts_are_the_work_volume_at_github_with_links() {
    let plan = plan_mounts(&engine_mounts(), "/__w").expect("a plan");
    assert_eq!(plan.mount_path.as_deref(), Some("/github"));
    assert_eq!(
        plan.dirs,
        [
            "/__w/workspace",
            "/__w/_temp/_github_home",
            "/__w/_temp/_github_workflow",
            "/__w/_temp/_runner_file_commands",
            "/__w/_temp",
        ]
    );
    // The workspace is in place already; the others are relative links at the volume's root.
    let links: Vec<(&str, &str)> = plan
        .links
        .iter()
        .map(|(link, target)| (link.as_str(), target.as_str()))
        .collect();
    assert_eq!(
        links,
        [
            ("/__w/home", "_temp/_github_home"),
            ("/__w/workflow", "_temp/_github_workflow"),
            ("/__w/file_commands", "_temp/_runner_file_commands"),
            ("/__w/runner_temp", "_temp"),
        ]
    );
    let script = prepare_script(&plan);
    assert!(
        script.starts_with("set -e\nmkdir -p '/__w/workspace' "),
        "{script}"
    );
    assert!(
        script.contains("l='/__w/home'; if [ -e \"$l\" ] && [ ! -L \"$l\" ]"),
        "{script}"
    );
    assert!(
        script.contains("ln -sfn '_temp/_github_home' \"$l\"\n"),
        "{script}"
    );
}

#[test]
fn mounts_the_volume_cannot_give_are_refused_naming_them() {
    let cases: [(Vec<ContainerMount>, &str); 6] = [
        (
            vec![mount("/github/home/x", "/github/x")],
            "only directories under the job's `/__w`",
        ),
        (
            vec![mount("/__w/../etc", "/github/etc")],
            "only directories under the job's `/__w`",
        ),
        (
            vec![mount("/__w/a", "/data")],
            "must be a directory below another one",
        ),
        (vec![mount("/__w/a", "relative")], "not an absolute path"),
        (
            vec![mount("/__w/a", "/x/a"), mount("/__w/b", "/y/b")],
            "every target must be in one directory (the others are in `/x`)",
        ),
        (
            vec![mount("/__w/workspace/sub", "/github/_temp")],
            "`/__w/_temp` is a directory of the job's own",
        ),
    ];
    for (mounts, expected) in cases {
        let error = plan_mounts(&mounts, "/__w")
            .expect_err("refused")
            .to_string();
        assert!(error.contains(expected), "{mounts:?}: {error}");
        assert!(
            error.contains(&mounts.last().expect("a mount").source),
            "{error}"
        );
    }
    // A name a source lives under is not replaced by a link either.
    let error = plan_mounts(
        &[
            mount("/__w/data/x", "/github/y"),
            mount("/__w/z", "/github/data"),
        ],
        "/__w",
    )
    .expect_err("refused")
    .to_string();
    assert!(
        error.contains("`/__w/data` is a directory of the job's own"),
        "{error}"
    );
    assert_eq!(
        plan_mounts(&[], "/__w").expect("no mounts"),
        MountPlan::default()
    );
}

#[test]
fn the_ephemeral_container_carries_the_runs_image_argv_env_and_workdir() {
    let run = ContainerRun {
        image: "runnel-test/busybox:local".to_owned(),
        entrypoint: Some("/entry.sh".to_owned()),
        args: vec!["a b".to_owned(), "echo $(HOME) $$ $x".to_owned()],
        env: BTreeMap::from([
            ("INPUT_WHO".to_owned(), "world $(HOME)".to_owned()),
            ("BAD=NAME".to_owned(), "dropped".to_owned()),
        ]),
        workdir: "/github/workspace".to_owned(),
        mounts: engine_mounts(),
        timeout: None,
    };
    let plan = plan_mounts(&run.mounts, "/__w").expect("a plan");
    let made = container("step-3", &run, &plan, Some("Never"));
    let json = serde_json::to_value(&made).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "name": "step-3",
            "image": "runnel-test/busybox:local",
            "imagePullPolicy": "Never",
            "command": ["/entry.sh"],
            // Kubernetes expands `$(NAME)` and `$$`: every `$` doubled, it passes them on as is.
            "args": ["a b", "echo $$(HOME) $$$$ $$x"],
            "env": [{"name": "INPUT_WHO", "value": "world $$(HOME)"}],
            "workingDir": "/github/workspace",
            "volumeMounts": [{"name": "work", "mountPath": "/github"}],
            "targetContainerName": "job",
        })
    );
    // The image's entrypoint and CMD stay when the step gives none.
    let plain = container(
        "step-4",
        &ContainerRun {
            entrypoint: None,
            args: Vec::new(),
            mounts: Vec::new(),
            ..run
        },
        &MountPlan::default(),
        None,
    );
    assert_eq!(plain.command, None);
    assert_eq!(plain.args, None);
    assert_eq!(plain.volume_mounts, None);
    assert_eq!(plain.image_pull_policy, None);
}

#[test]
fn a_step_containers_state_is_read_from_the_ephemeral_statuses() {
    let pod: Pod = serde_json::from_value(serde_json::json!({"status": {"phase": "Running",
    "ephemeralContainerStatuses": [
        {"name": "step-1", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
         "containerID": "containerd://abc123",
         "state": {"terminated": {"exitCode": 3, "reason": "Error"}}},
        {"name": "step-2", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
         "containerID": "containerd://def456", "state": {"running": {}}},
        {"name": "step-3", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
         "state": {"waiting": {"reason": "ErrImageNeverPull",
           "message": "Container image \"x\" is not present with pull policy of Never"}}}
    ]}}))
    .expect("a pod");
    assert!(matches!(state_of(&pod, "step-1"), State::Terminated(t) if t.exit_code == 3));
    assert!(matches!(state_of(&pod, "step-2"), State::Running { id } if id == "def456"));
    assert!(matches!(
        state_of(&pod, "step-3"),
        State::Waiting { reason, message } if reason == "ErrImageNeverPull"
            && message == "Container image \"x\" is not present with pull policy of Never"
    ));
    assert!(matches!(
        state_of(&pod, "step-9"),
        State::Waiting { reason, .. } if reason == "no status yet"
    ));
}

#[test]
fn a_container_that_never_ran_its_program_says_why() {
    let failed: ContainerStateTerminated = serde_json::from_value(serde_json::json!({
        "exitCode": 128, "reason": "StartError",
        "message": "exec: \"/nope\": stat /nope: no such file or directory"}))
    .expect("a state");
    assert_eq!(
        start_failure(&failed).as_deref(),
        Some(
            "could not start (exit code 128): exec: \"/nope\": stat /nope: no such file or directory"
        )
    );
    let exited: ContainerStateTerminated =
        serde_json::from_value(serde_json::json!({"exitCode": 7, "reason": "Error"}))
            .expect("a state");
    assert_eq!(start_failure(&exited), None);
}
