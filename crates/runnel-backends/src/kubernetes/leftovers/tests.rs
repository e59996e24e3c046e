use super::*;

/// A host where pid 10 runs (started at tick 500) and runner pods as listed.
struct Fake {
    pods: BTreeMap<(String, String), RunnerPod>,
}

impl Facts for Fake {
    fn process_start(&self, pid: u32) -> Option<String> {
        (pid == 10).then(|| "500".to_owned())
    }

    fn runner_pod(&self, namespace: &str, name: &str) -> RunnerPod {
        self.pods
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or(RunnerPod::Unknown)
    }
}

fn registration(id: i64) -> RunnerRegistration {
    RunnerRegistration {
        id,
        address: "https://gitea.example/".to_owned(),
    }
}

fn runner_in_pod(name: &str, uid: &str, session: &str) -> RunnerLabels {
    RunnerLabels {
        owner: owner_of(Some(&registration(7)), "ignored"),
        session: session.to_owned(),
        liveness: Liveness::Pod {
            namespace: "runnel".to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
        },
    }
}

fn runner_on_host(host: &str, pid: u32, start: &str, session: &str) -> RunnerLabels {
    RunnerLabels {
        owner: owner_of(None, host),
        session: session.to_owned(),
        liveness: Liveness::Process {
            host: host.to_owned(),
            pid,
            start: Some(start.to_owned()),
        },
    }
}

fn cluster(pods: &[(&str, RunnerPod)]) -> Fake {
    Fake {
        pods: pods
            .iter()
            .map(|(name, state)| (("runnel".to_owned(), (*name).to_owned()), state.clone()))
            .collect(),
    }
}

#[test]
fn label_values_are_valid() {
    assert_eq!(label_value("build (linux, 1)"), "build--linux--1");
    assert_eq!(label_value("-x-"), "x");
    assert_eq!(label_value(&"a".repeat(80)).len(), 63);
}

#[test]
fn the_owner_is_the_registration_whatever_the_host() {
    let a = owner_of(Some(&registration(7)), "runnel-abc12");
    let b = owner_of(Some(&registration(7)), "runnel-xyz99");
    assert_eq!(a, b, "a restarted replica finds its predecessor's pods");
    let same_url = RunnerRegistration {
        id: 7,
        address: "https://gitea.example".to_owned(),
    };
    assert_eq!(owner_of(Some(&same_url), "h"), a);
    assert_ne!(owner_of(Some(&registration(8)), "h"), a);
    let other_instance = RunnerRegistration {
        id: 7,
        address: "https://other.example/".to_owned(),
    };
    assert_ne!(owner_of(Some(&other_instance), "h"), a);
    assert_eq!(owner_of(None, "build-1"), "host-build-1");
    let me = runner_in_pod("runnel-0", "u-1", "s1");
    assert_eq!(
        me.same_owner(),
        format!("{MANAGED_BY}=runnel,{LABEL_OWNER}={a}")
    );
}

#[test]
fn every_label_is_a_valid_label_value() {
    let me = RunnerLabels::of_this_process(Some(&registration(123_456_789)));
    for (key, value) in me.for_job(&"a very long job name (matrix: 1, 2) ".repeat(4)) {
        assert!(value.len() <= 63, "{key}={value}");
        assert_eq!(label_value(&value), value, "{key}");
    }
    let other = RunnerLabels::of_this_process(None);
    assert_ne!(me.session, other.session, "each start has its own session");
}

/// (what, the pod's runner, the runner judging, the cluster, gone?)
#[test]
fn the_leftover_rule() {
    let sts_replacement = cluster(&[("runnel-0", RunnerPod::Exists("u-2".to_owned()))]);
    let cases: Vec<(&str, RunnerLabels, RunnerLabels, Fake, bool)> = vec![
        (
            "a pod of this very process",
            runner_in_pod("runnel-0", "u-2", "s2"),
            runner_in_pod("runnel-0", "u-2", "s2"),
            cluster(&[]),
            false,
        ),
        (
            "the runner container restarted in the same pod",
            runner_in_pod("runnel-0", "u-2", "s1"),
            runner_in_pod("runnel-0", "u-2", "s2"),
            cluster(&[("runnel-0", RunnerPod::Exists("u-2".to_owned()))]),
            true,
        ),
        (
            "a StatefulSet's replacement pod (same name, new uid)",
            runner_in_pod("runnel-0", "u-1", "s1"),
            runner_in_pod("runnel-0", "u-2", "s2"),
            sts_replacement,
            true,
        ),
        (
            "the predecessor pod is deleted (a Deployment's new pod name)",
            runner_in_pod("runnel-5d8f-abcde", "u-1", "s1"),
            runner_in_pod("runnel-5d8f-fghij", "u-2", "s2"),
            cluster(&[("runnel-5d8f-abcde", RunnerPod::Missing)]),
            true,
        ),
        (
            "another live pod of the same registration (a rolling update) is kept",
            runner_in_pod("runnel-5d8f-abcde", "u-1", "s1"),
            runner_in_pod("runnel-5d8f-fghij", "u-2", "s2"),
            cluster(&[("runnel-5d8f-abcde", RunnerPod::Exists("u-1".to_owned()))]),
            false,
        ),
        (
            "a runner pod that cannot be looked up is taken to live",
            runner_in_pod("runnel-1", "u-1", "s1"),
            runner_in_pod("runnel-0", "u-2", "s2"),
            cluster(&[("runnel-1", RunnerPod::Unknown)]),
            false,
        ),
        (
            "a dead process of this host",
            runner_on_host("build-1", 99, "100", "s1"),
            runner_on_host("build-1", 10, "500", "s2"),
            cluster(&[]),
            true,
        ),
        (
            "a reused pid",
            runner_on_host("build-1", 10, "100", "s1"),
            runner_on_host("build-1", 11, "600", "s2"),
            cluster(&[]),
            true,
        ),
        (
            "a live process of this host",
            runner_on_host("build-1", 10, "500", "s1"),
            runner_on_host("build-1", 11, "600", "s2"),
            cluster(&[]),
            false,
        ),
        (
            "a process of another host is never judged",
            runner_on_host("build-2", 99, "100", "s1"),
            runner_on_host("build-1", 10, "500", "s2"),
            cluster(&[]),
            false,
        ),
    ];
    for (what, theirs, me, facts, gone) in cases {
        let labels = theirs.for_job("build");
        assert_eq!(runner_gone(&labels, &me, &facts), gone, "{what}");
    }
}

#[test]
fn pods_without_runner_labels_are_kept() {
    let me = runner_on_host("build-1", 10, "500", "s2");
    let labels = BTreeMap::from([
        (MANAGED_BY.to_owned(), "runnel".to_owned()),
        (LABEL_OWNER.to_owned(), me.owner.clone()),
    ]);
    assert!(!runner_gone(&labels, &me, &cluster(&[])));
}
