//! The job's `container:` as the pod's `job` container: applied, merged under the config, or
//! refused by name.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use runnel_engine::backend::ContainerSpec;

use super::plan;

fn container(options: &str) -> ContainerSpec {
    ContainerSpec {
        image: "runnel-test/debian:bookworm".to_owned(),
        env: BTreeMap::from([("FROM_ENV".to_owned(), "1".to_owned())]),
        ports: Vec::new(),
        volumes: Vec::new(),
        options: if options.is_empty() {
            Vec::new()
        } else {
            vec![options.to_owned()]
        },
        credentials: None,
    }
}

fn refusal(spec: &ContainerSpec) -> String {
    plan(spec, false).expect_err("refused").to_string()
}

#[test]
fn options_with_a_meaning_in_a_pod_are_applied() {
    let planned = plan(
        &container("-e FROM_OPTION=2 --env FROM_ENV=3 --cpus 1.5 --memory 256m --user 1000:1000"),
        false,
    )
    .expect("planned");
    let env: Vec<(String, String)> = planned
        .env
        .iter()
        .map(|var| (var.name.clone(), var.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        env,
        [
            ("FROM_OPTION".to_owned(), "2".to_owned()),
            ("FROM_ENV".to_owned(), "3".to_owned())
        ]
    );
    let security = planned.security_context.clone().expect("security context");
    assert_eq!(
        (security.run_as_user, security.run_as_group),
        (Some(1000), Some(1000))
    );
    let resources = planned.resources_under(None).expect("resources");
    let limits = resources.limits.expect("limits");
    assert_eq!(limits["cpu"], Quantity("1500m".to_owned()));
    assert_eq!(limits["memory"], Quantity((256 * 1024 * 1024).to_string()));
}

#[test]
fn the_configs_resources_win_and_the_workflows_fill_the_rest() {
    let planned = plan(&container("--cpus 8 --memory 64m"), false).expect("planned");
    let config = ResourceRequirements {
        limits: Some(BTreeMap::from([(
            "cpu".to_owned(),
            Quantity("500m".to_owned()),
        )])),
        ..ResourceRequirements::default()
    };
    let merged = planned.resources_under(Some(config)).expect("resources");
    let limits = merged.limits.expect("limits");
    assert_eq!(
        limits["cpu"],
        Quantity("500m".to_owned()),
        "the operator's cap"
    );
    assert_eq!(limits["memory"], Quantity((64 * 1024 * 1024).to_string()));
    let plain = plan(&container(""), false).expect("planned");
    assert_eq!(plain.resources_under(None), None);
    assert_eq!(plain.security_context, None);
}

#[test]
fn what_a_pod_cannot_do_is_refused_by_name() {
    let message = refusal(&container("--shm-size 1g --ulimit nofile=10"));
    assert!(
        message.contains("the job's container (runnel-test/debian:bookworm)"),
        "{message}"
    );
    assert!(message.contains("`--shm-size`, `--ulimit`"), "{message}");
    let message = refusal(&container("--privileged"));
    assert!(message.contains("--privileged"), "{message}");
    let message = refusal(&container("--user runner"));
    assert!(message.contains("numeric ids only"), "{message}");
    let message = refusal(&container("--workdir /src"));
    assert!(message.contains("`--workdir`"), "{message}");

    let mut with_volumes = container("");
    with_volumes.volumes = vec!["/etc:/host-etc".to_owned()];
    assert!(refusal(&with_volumes).contains("`volumes:`"));
    let mut with_ports = container("");
    with_ports.ports = vec!["8080:80".to_owned()];
    assert!(refusal(&with_ports).contains("`ports:`"));
    let mut with_credentials = container("");
    with_credentials.credentials = Some(("u".to_owned(), "p".to_owned()));
    assert!(refusal(&with_credentials).contains("image_pull_secrets"));
    assert!(plan(&with_credentials, true).is_ok());
}
