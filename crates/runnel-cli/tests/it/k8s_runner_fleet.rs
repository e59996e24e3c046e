//! The runner in the cluster as a fleet, and how a runner pod stops (slow: `RUN_SLOW_TESTS=1`,
//! the test cluster of `tests/k8s`, the real Gitea, and for the cache versitygw of `tests/s3`):
//! `packaging/k8s` installed by [`crate::k8s_install`].
//!
//! - Two replicas with capacity 1 each register separately (two runners in Gitea, named after
//!   their pods) and share one S3 bucket through `cache.s3`, its keys in the `runnel-cache-s3`
//!   Secret: a job saves an entry on one replica, a matrix of jobs that need it lands on both
//!   and every one restores it, so the replica that did not save got it from the bucket (each
//!   replica's local cache is its own volume). Then, with a job on each, the StatefulSet is
//!   scaled down to one: runnel-1 finishes its job (a success) before it goes.
//! - Deleting a runner pod mid-job (SIGTERM from the kubelet) drains it: the job runs to its
//!   end and is reported a success with its whole log, a job queued meanwhile is left to the
//!   replacement, the runner exits 0, its job pod is deleted, and the replacement (same
//!   registration) runs nothing twice. A job that outlasts `runner.shutdown_timeout` is
//!   cancelled then (its `always()` step runs, it is reported cancelled) and the runner exits
//!   0 long before the pod's grace period.

use std::io::Read;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cache_support::{S3Server, curl_script, keys};
use crate::daemon_gitea::{Gitea, gitea, unique, workflow};
use crate::k8s_install::{InCluster, S3Target, Setup, wait_for};
use crate::run_kubernetes::{cluster_or_skip, hold_cluster};
use crate::support::{run_expecting, runnel};

/// The jobs of `runner_ids` whose name starts with `name`, of the first run that has
/// such jobs, once `count` of them completed (up to 4 minutes).
fn completed_run(
    gitea: &Gitea,
    runner_ids: &[i64],
    name: &str,
    count: usize,
    log: &dyn Fn() -> String,
) -> Vec<Value> {
    let mut jobs = Vec::new();
    let found = wait_for(Duration::from_secs(240), || {
        jobs = runner_ids
            .iter()
            .flat_map(|id| gitea.jobs_of(*id))
            .filter(|job| job["name"].as_str().is_some_and(|n| n.starts_with(name)))
            .collect();
        let first = jobs.iter().filter_map(|j| j["run_id"].as_i64()).min();
        jobs.retain(|j| j["run_id"].as_i64() == first);
        (jobs.len() >= count && jobs.iter().all(|j| j["status"] == "completed")).then_some(())
    });
    assert!(
        found.is_some(),
        "{count} jobs named {name}… did not complete: {jobs:#?}\n{}",
        log()
    );
    jobs
}

#[test]
fn two_replicas_register_separately_and_share_one_s3_cache() {
    let test = "two_replicas_register_separately_and_share_one_s3_cache";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let Some(gitea) = gitea(test) else {
        return;
    };
    let s3 = S3Server::start();
    let prefix = format!("{}/", unique("fleet"));
    let installed = InCluster::install(
        &kubeconfig,
        gitea,
        Setup {
            prefix: "rkf",
            label_prefix: "k8s-fleet",
            replicas: 2,
            capacity: Some(1),
            shutdown_timeout: None,
            s3: Some(S3Target {
                endpoint: s3.get("S3_ENDPOINT").to_owned(),
                bucket: s3.get("S3_BUCKET").to_owned(),
                prefix: prefix.clone(),
                access_key: s3.get("AWS_ACCESS_KEY_ID").to_owned(),
                secret_key: s3.get("AWS_SECRET_ACCESS_KEY").to_owned(),
            }),
        },
    );
    let logs = || installed.all_logs();
    let ids = [installed.registration(0), installed.registration(1)];
    assert_ne!(ids[0], ids[1], "both replicas share one registration");
    for (i, id) in ids.iter().enumerate() {
        let runner = gitea.runner(*id);
        assert_eq!(runner["name"], format!("runnel-{i}"), "{runner}");
    }

    // `save` stores the entry on one replica; each `restore` (after it) prints the runner it
    // ran on and takes a few seconds, so that the idle replica polls while the other is busy.
    let key = unique("fleet-key");
    let label = &installed.label;
    let report = "          echo \"on runner $RUNNER_NAME\"\n";
    let jobs = format!(
        "  save:\n    runs-on: {label}\n    steps:\n      - run: |\n{report}{save}\
         \x20 restore:\n    needs: save\n    runs-on: {label}\n    strategy:\n      matrix:\n        \
         n: [1, 2, 3, 4]\n    steps:\n      - run: |\n{report}{restore}          sleep 6\n",
        save = curl_script(&keys(&[&key]), &[], 10),
        restore = curl_script(&[], &keys(&[&key]), 10),
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let mut jobs = completed_run(gitea, &ids, "restore", 4, &logs);
    jobs.extend(completed_run(gitea, &ids, "save", 1, &logs));
    let name_of = |id: i64| format!("runnel-{}", ids.iter().position(|i| *i == id).unwrap_or(9));
    let save = jobs
        .iter()
        .find(|j| j["name"] == "save")
        .unwrap_or_else(|| panic!("no save job: {jobs:#?}"));
    let save_log = gitea.log_text(save);
    assert_eq!(save["conclusion"], "success", "{save_log}\n{}", logs());
    let saver = save["runner_id"].as_i64().unwrap_or_default();
    assert!(
        save_log.contains(&format!("on runner {}", name_of(saver))),
        "{save_log}"
    );
    let mut restored_on = Vec::new();
    for job in jobs.iter().filter(|j| j["name"] != "save") {
        let text = gitea.log_text(job);
        let runner = job["runner_id"].as_i64().unwrap_or_default();
        assert_eq!(job["conclusion"], "success", "{job}\n{text}\n{}", logs());
        assert!(
            text.contains(&format!("GOT {key} data-{key}")),
            "{text}\n{}",
            logs()
        );
        assert!(
            text.contains(&format!("on runner {}", name_of(runner))),
            "{text}"
        );
        restored_on.push(runner);
    }
    assert!(
        restored_on.iter().any(|r| *r != saver),
        "every restore ran on the replica that saved ({saver}): {jobs:#?}"
    );
    let all: std::collections::BTreeSet<i64> = jobs
        .iter()
        .filter_map(|j| j["runner_id"].as_i64())
        .collect();
    assert_eq!(
        all.len(),
        2,
        "the jobs did not land on both replicas: {jobs:#?}"
    );

    // The entry is the bucket's, under the configured prefix.
    let mut command = runnel();
    command.args(["cache", "ls", "--format", "json", "--s3", &s3.url(&prefix)]);
    s3.credentials(&mut command);
    let listed = String::from_utf8_lossy(&run_expecting(command, None, &[0]).stdout).into_owned();
    assert!(listed.contains(&format!("\"{key}\"")), "{listed}");

    // Scaling down stops the highest ordinal the same way as a deletion: with a job running
    // on each replica, runnel-1 finishes its job, reports it and goes; runnel-0 stays.
    let scale = format!("{label}-scale");
    gitea.dispatch_workflow(
        &scale,
        &format!(
            "  scale:\n    runs-on: {label}\n    strategy:\n      matrix:\n        n: [1, 2]\n    \
             steps:\n      - run: echo step-started; sleep 12; echo step-finished\n"
        ),
    );
    let running = wait_for(Duration::from_secs(120), || {
        let started: std::collections::BTreeSet<i64> = ids
            .iter()
            .flat_map(|id| gitea.jobs_of(*id))
            .filter(|j| j["name"].as_str().is_some_and(|n| n.starts_with("scale")))
            .filter(|j| {
                gitea
                    .log_lines(j["id"].as_i64().unwrap_or_default())
                    .is_ok_and(|lines| lines.iter().any(|l| l.contains("step-started")))
            })
            .filter_map(|j| j["runner_id"].as_i64())
            .collect();
        (started.len() == 2).then_some(())
    });
    assert!(running.is_some(), "no job on each replica:\n{}", logs());
    installed.kubectl(&["scale", "statefulset", "runnel", "--replicas=1"]);
    let scaled = completed_run(gitea, &ids, "scale", 2, &logs);
    for job in &scaled {
        let text = gitea.log_text(job);
        assert_eq!(job["conclusion"], "success", "{job}\n{text}\n{}", logs());
        assert!(text.contains("step-finished"), "{text}");
    }
    let down = wait_for(Duration::from_secs(60), || {
        (installed.kubectl(&["get", "pods", "-o", "name"]) == "pod/runnel-0").then_some(())
    });
    assert!(down.is_some(), "runnel-1 did not go:\n{}", logs());

    // Nothing left: no job pod, and no replica once the StatefulSet is gone.
    uninstall(&installed);
    let gone = wait_for(Duration::from_secs(90), || {
        installed
            .kubectl(&["get", "pods", "-o", "name"])
            .is_empty()
            .then_some(())
    });
    assert!(gone.is_some(), "replicas left:\n{}", logs());
}

/// A `kubectl` as the admin in the background (a watch, a followed log); its output (and
/// error output) when stopped.
struct Background {
    child: Child,
    out: tempfile::NamedTempFile,
}

impl Background {
    fn kubectl(installed: &InCluster, args: &[&str]) -> Background {
        let state = installed.kubeconfig.parent().expect("state directory");
        let out = tempfile::NamedTempFile::new().expect("output file");
        let child = Command::new(state.join("bin/kubectl"))
            .arg("--kubeconfig")
            .arg(state.join("admin.kubeconfig"))
            .args(["-n", &installed.namespace])
            .args(args)
            .stdout(out.reopen().expect("reopen the output file"))
            .stderr(out.reopen().expect("reopen the output file"))
            .spawn()
            .expect("run kubectl in the background");
        Background { child, out }
    }

    /// Stops it (if it still runs); what it printed.
    fn output(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        let _ = self
            .out
            .reopen()
            .and_then(|mut file| file.read_to_string(&mut text));
        text
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The job `name` of `jobs`.
fn job_named<'a>(jobs: &'a [Value], name: &str) -> &'a Value {
    jobs.iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name}: {jobs:#?}"))
}

/// Replica `runnel-0`, deleted (SIGTERM from the kubelet) while a step of its job runs.
struct Deleted {
    uid: String,
    /// Its job pods.
    selector: String,
    at: Instant,
    /// The job as Gitea listed it when its step had started.
    job: Value,
    /// Each version of the pod as `<uid> <phase> <exit code of the runner container>`.
    watch: Background,
    /// The whole log of the runner container (it ends with the container).
    follow: Background,
}

impl Deleted {
    /// Dispatches the workflow `<label>-<name>` with one job `name` whose first step prints
    /// `step-started` (exactly one run: a push may start a workflow twice), and deletes the
    /// replica once that line is in Gitea's log and its job pod exists; returns once it
    /// drains.
    fn mid_step(installed: &InCluster, gitea: &Gitea, id: i64, name: &str, steps: &str) -> Self {
        let logs = || installed.logs("runnel-0");
        let uid = installed.pod_uid("runnel-0");
        let watch = Background::kubectl(
            installed,
            &[
                "get",
                "pod",
                "runnel-0",
                "--watch",
                "-o",
                "jsonpath={.metadata.uid} {.status.phase} \
                 {.status.containerStatuses[0].state.terminated.exitCode}{\"\\n\"}",
            ],
        );
        // The API server serves a log once the kubelet reported the container running, which
        // may come a little after the replica registered.
        installed.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "pod/runnel-0",
            "--timeout=60s",
        ]);
        let follow =
            Background::kubectl(installed, &["logs", "--follow", "runnel-0", "-c", "runner"]);
        let label = &installed.label;
        gitea.dispatch_workflow(
            &format!("{label}-{name}"),
            &format!("  {name}:\n    runs-on: {label}\n    steps:\n{steps}"),
        );
        let job = wait_for(Duration::from_secs(120), || {
            let job = gitea.jobs_of(id).into_iter().find(|j| j["name"] == name)?;
            let lines = gitea.log_lines(job["id"].as_i64()?).ok()?;
            lines
                .iter()
                .any(|l| l.contains("step-started"))
                .then_some(job)
        })
        .unwrap_or_else(|| panic!("the step did not start:\n{}", logs()));
        let selector = format!("runnel.runner-pod=runnel-0,runnel.runner-pod-uid={uid}");
        assert!(
            !installed.job_pods(Some(&selector)).is_empty(),
            "no job pod of the runner:\n{}",
            logs()
        );
        let at = Instant::now();
        installed.kubectl(&["delete", "pod", "runnel-0", "--wait=false"]);
        let draining = wait_for(Duration::from_secs(30), || {
            logs()
                .contains("shutting down: waiting for running jobs")
                .then_some(())
        });
        assert!(draining.is_some(), "no drain:\n{}", logs());
        Deleted {
            uid,
            selector,
            at,
            job,
            watch,
            follow,
        }
    }

    /// Waits until the deleted pod is gone (a replacement of the same name may follow), checks
    /// that its job pods went with it and that its runner exited 0; the time from the deletion
    /// and the runner's log.
    fn gone(self, installed: &InCluster) -> (Duration, String) {
        let gone = wait_for(Duration::from_secs(120), || {
            (!installed.pod_uid("runnel-0").contains(&self.uid)).then_some(())
        });
        let took = self.at.elapsed();
        let seen = self.watch.output();
        let log = self.follow.output();
        assert!(gone.is_some(), "the deleted runner pod stayed:\n{log}");
        assert!(
            installed.job_pods(Some(&self.selector)).is_empty(),
            "the deleted runner's job pod was left: {}",
            installed.job_pods(None)
        );
        assert!(
            seen.lines()
                .any(|l| l.starts_with(&self.uid) && l.trim_end().ends_with(" 0")),
            "the deleted runner did not exit 0: {seen}\n{log}"
        );
        assert!(log.contains("SIGTERM received"), "{log}");
        (took, log)
    }
}

/// Installs one replica (with `shutdown_timeout` when given); its id.
fn one_replica(
    kubeconfig: &std::path::Path,
    gitea: &'static Gitea,
    shutdown_timeout: Option<&'static str>,
) -> (InCluster, i64) {
    let installed = InCluster::install(
        kubeconfig,
        gitea,
        Setup {
            prefix: "rkd",
            label_prefix: "k8s-drain",
            replicas: 1,
            capacity: None,
            shutdown_timeout,
            s3: None,
        },
    );
    let id = installed.registration(0);
    (installed, id)
}

/// No job pod is left, and the StatefulSet goes.
fn uninstall(installed: &InCluster) {
    let left = wait_for(Duration::from_secs(30), || {
        installed.job_pods(None).is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "job pods left: {}",
        installed.job_pods(None)
    );
    installed.kubectl(&[
        "delete",
        "statefulset",
        "runnel",
        "--wait=true",
        "--timeout=90s",
    ]);
}

#[test]
fn a_runner_pod_deleted_mid_job_finishes_it_and_leaves_new_jobs_to_its_replacement() {
    let test = "a_runner_pod_deleted_mid_job_finishes_it_and_leaves_new_jobs_to_its_replacement";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let Some(gitea) = gitea(test) else {
        return;
    };
    let (installed, id) = one_replica(&kubeconfig, gitea, None);
    let logs = || installed.logs("runnel-0");
    let deleted = Deleted::mid_step(
        &installed,
        gitea,
        id,
        "long",
        "      - run: echo step-started; sleep 15; echo step-finished\n      \
         - run: echo second-step-ran\n",
    );
    // A job queued while it drains (capacity 2: it has room) must wait for the replacement.
    let label = &installed.label;
    gitea.dispatch_workflow(
        &format!("{label}-after"),
        &format!("  after:\n    runs-on: {label}\n    steps:\n      - run: echo after-ran\n"),
    );

    let long_jobs = completed_run(gitea, &[id], "long", 1, &logs);
    let long_job = job_named(&long_jobs, "long");
    assert_eq!(long_job["id"], deleted.job["id"], "{long_jobs:#?}");
    let text = gitea.log_text(long_job);
    assert_eq!(long_job["conclusion"], "success", "{text}\n{}", logs());
    for line in ["step-started", "step-finished", "second-step-ran"] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    let (took, drained_log) = deleted.gone(&installed);
    assert!(
        drained_log.contains("shutting down: waiting for running jobs")
            && !drained_log.contains("cancelling the jobs still running")
            && drained_log.contains("runner stopped: no job running"),
        "{drained_log}"
    );

    let after_jobs = completed_run(gitea, &[id], "after", 1, &logs);
    let after_job = job_named(&after_jobs, "after");
    assert_eq!(after_job["conclusion"], "success", "{after_job}");
    let (finished, taken) = (
        long_job["completed_at"].as_str().unwrap_or_default(),
        after_job["started_at"].as_str().unwrap_or_default(),
    );
    assert!(
        !finished.is_empty() && taken >= finished,
        "the draining runner took a new job: it started at {taken}, the long one ended at \
         {finished}\n{drained_log}"
    );
    // Nothing ran twice: the registration ran exactly these two jobs.
    let all = gitea.jobs_of(id);
    assert_eq!(all.len(), 2, "{all:#?}");
    eprintln!(
        "{test}: from the deletion to the pod gone {:.1} s (the step had up to 15 s to go)",
        took.as_secs_f64()
    );
    uninstall(&installed);
}

#[test]
fn a_runner_pod_whose_job_outlasts_shutdown_timeout_cancels_it_and_exits() {
    let test = "a_runner_pod_whose_job_outlasts_shutdown_timeout_cancels_it_and_exits";
    let _cluster = hold_cluster();
    let Some(kubeconfig) = cluster_or_skip(test) else {
        return;
    };
    let Some(gitea) = gitea(test) else {
        return;
    };
    let (installed, id) = one_replica(&kubeconfig, gitea, Some("5s"));
    let logs = || installed.logs("runnel-0");
    let deleted = Deleted::mid_step(
        &installed,
        gitea,
        id,
        "endless",
        "      - run: echo step-started; sleep 600; echo step-finished\n      \
         - if: always()\n        run: echo always-ran\n",
    );
    let jobs = completed_run(gitea, &[id], "endless", 1, &logs);
    let job = job_named(&jobs, "endless");
    let text = gitea.log_text(job);
    assert_eq!(job["conclusion"], "cancelled", "{text}\n{}", logs());
    assert!(
        text.contains("step-started") && !text.contains("step-finished"),
        "{text}"
    );
    assert!(text.contains("always-ran"), "{text}");
    let (took, drained_log) = deleted.gone(&installed);
    assert!(
        drained_log.contains("cancelling the jobs still running"),
        "{drained_log}"
    );
    // Far below the pod's grace period: the runner exited by itself.
    assert!(took < Duration::from_secs(120), "{took:?}\n{drained_log}");
    let all = gitea.jobs_of(id);
    assert_eq!(all.len(), 1, "{all:#?}");
    eprintln!(
        "{test}: from the deletion to the pod gone {:.1} s (shutdown_timeout 5s)",
        took.as_secs_f64()
    );
    uninstall(&installed);
}
