//! Labels: how a label string splits into a name and where its jobs run, and what the runner
//! makes of bare `docker` labels and schemes it does not run.

use runnel_config::{Label, LabelKind};

#[test]
fn labels_split_on_the_first_two_colons() {
    let host = |name: &str| Label {
        name: name.to_owned(),
        kind: LabelKind::Host,
    };
    let docker = |name: &str, image: &str| Label {
        name: name.to_owned(),
        kind: LabelKind::Docker {
            image: image.to_owned(),
        },
    };
    let cases = [
        ("linux", Ok(host("linux"))),
        ("linux:host", Ok(host("linux"))),
        (
            "ubuntu-latest:docker://docker.gitea.com/runner-images:ubuntu-latest",
            Ok(docker(
                "ubuntu-latest",
                "docker.gitea.com/runner-images:ubuntu-latest",
            )),
        ),
        (
            "node:docker://node:20-bookworm",
            Ok(docker("node", "node:20-bookworm")),
        ),
        ("odd:docker:node", Ok(docker("odd", "node"))),
    ];
    for (text, expected) in cases {
        assert_eq!(Label::parse(text), expected, "{text}");
    }
    let errors = [(":host", "label `:host` has an empty name")];
    for (text, message) in errors {
        match Label::parse(text) {
            Ok(label) => panic!("{text}: accepted as {label:?}"),
            Err(error) => assert_eq!(error.to_string(), message),
        }
    }
    assert_eq!(
        docker("a", "node:20").to_label_string(),
        "a:docker://node:20"
    );
    assert_eq!(host("a").to_label_string(), "a:host");
}

/// The Gitea runner (v3) keeps a bare `name:docker` (its `default_image`) and labels of other
/// schemes; runnel keeps them too, gives the first the default image and says it cannot run
/// the second.
#[test]
fn bare_docker_and_unknown_schemes_are_kept_as_the_gitea_runner_keeps_them() {
    let host = |name: &str| Label {
        name: name.to_owned(),
        kind: LabelKind::Host,
    };
    let docker = |name: &str, image: &str| Label {
        name: name.to_owned(),
        kind: LabelKind::Docker {
            image: image.to_owned(),
        },
    };
    let parse = |text: &str| match Label::parse(text) {
        Ok(label) => label,
        Err(error) => panic!("{text}: {error}"),
    };
    for text in ["x:docker", "x:docker://"] {
        assert_eq!(parse(text), docker("x", ""), "{text}");
    }
    assert_eq!(parse("x:docker").to_label_string(), "x:docker");
    let pod = parse("x:kubernetes://runnel-test/debian:bookworm");
    assert_eq!(
        pod.kind,
        LabelKind::Kubernetes {
            image: "runnel-test/debian:bookworm".to_owned()
        }
    );
    assert_eq!(
        pod.to_label_string(),
        "x:kubernetes://runnel-test/debian:bookworm"
    );
    let vm = parse("x:lxc:debian");
    assert_eq!(
        vm.kind,
        LabelKind::Unsupported {
            scheme: "lxc".to_owned(),
            argument: "debian".to_owned()
        }
    );
    // An unknown scheme belongs to the name, as the Gitea runner v3.3 reads it: Gitea is
    // declared the whole string, so it sends the same jobs.
    assert_eq!(vm.name, "x:lxc:debian");
    assert_eq!(vm.to_label_string(), "x:lxc:debian", "kept as written");
    let pool = parse("pool:e57e18d4-0c5d");
    assert_eq!(pool.name, "pool:e57e18d4-0c5d");
    assert_eq!(pool.to_label_string(), "pool:e57e18d4-0c5d");
    // `vm://IMAGE` is runnel's microVM backend.
    let microvm = parse("x:vm://debian-bookworm");
    assert_eq!(
        microvm.kind,
        LabelKind::Vm {
            image: "debian-bookworm".to_owned()
        }
    );
    assert_eq!(microvm.to_label_string(), "x:vm://debian-bookworm");

    let labels = vec![parse("x:docker"), vm.clone(), host("h")];
    let (kept, warnings) = runnel_config::resolve_labels(labels.clone(), "node:20");
    assert_eq!(kept, vec![docker("x", "node:20"), vm, host("h")]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for expected in [
        "label `x:lxc:debian`: `lxc` is not a scheme runnel runs",
        "jobs sent to it will fail",
        runnel_config::KNOWN_SCHEMES,
    ] {
        assert!(
            warnings[0].contains(expected),
            "{expected:?} in {warnings:?}"
        );
    }
    let (kept, warnings) = runnel_config::resolve_labels(labels, "");
    assert_eq!(kept.len(), 2, "the bare docker label is left out: {kept:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("runner.default_image is not set")),
        "{warnings:?}"
    );
}
