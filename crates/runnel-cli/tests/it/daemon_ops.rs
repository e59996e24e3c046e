//! The daemon as an operator runs it, against a real Gitea: the `/metrics`, `/healthz` and
//! `/readyz` endpoints, SIGHUP reloading `config.yaml`, the `github` context Gitea sends
//! reaching the job, an ephemeral runner, and Docker labels (with leftovers of a killed
//! runner removed at start). Slow: they return early unless `RUN_SLOW_TESTS` is set.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon_gitea::{
    Gitea, Runner, completed_jobs, free_port, gitea, http_get, register, register_with, signal,
    workflow,
};

/// Polls `url` until it answers `status` (bounded so a broken test ends); returns the body.
fn wait_for_status(url: &str, status: u16, runner: &Runner) -> String {
    for _ in 0..300 {
        let (code, body) = http_get(url);
        if code == status {
            return body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{url} never answered {status}; daemon log:\n{}",
        runner.daemon_log()
    );
}

/// A sample's value in a Prometheus exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in:\n{text}"))
}

#[test]
fn metrics_healthz_and_readyz_answer_while_the_daemon_runs_jobs() {
    let Some(gitea) = gitea("metrics_healthz_and_readyz_answer_while_the_daemon_runs_jobs") else {
        return;
    };
    let runner = register(gitea, "metrics");
    let port = free_port();
    runner.write_config(&format!(
        "runner:\n  capacity: 2\nmetrics:\n  enabled: true\n  addr: 127.0.0.1:{port}\n"
    ));
    let base = format!("http://127.0.0.1:{port}");
    let daemon = runner.daemon(&["-c", "config.yaml"]);
    assert_eq!(
        wait_for_status(&format!("{base}/healthz"), 200, &runner),
        "ok\n"
    );
    let ready = wait_for_status(&format!("{base}/readyz"), 200, &runner);
    assert_eq!(ready, "ready\n");
    let label = &runner.label;
    let jobs = format!(
        "  counted:\n    runs-on: {label}\n    steps:\n      - run: for i in 1 2 3; do echo line $i; done\n"
    );
    gitea.dispatch_workflow(label, &jobs);
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    assert_eq!(job["conclusion"], "success", "{job}");
    // The job is reported before the daemon counts its rows as sent: poll briefly.
    let mut text = String::new();
    for _ in 0..50 {
        text = http_get(&format!("{base}/metrics")).1;
        if text.contains("runnel_jobs_total{result=\"success\"} 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(text.contains("# TYPE runnel_jobs_total counter"), "{text}");
    assert_eq!(
        sample(&text, "runnel_jobs_total{result=\"success\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(sample(&text, "runnel_jobs_total{result=\"failure\"}"), 0.0);
    assert_eq!(sample(&text, "runnel_jobs_running"), 0.0);
    assert_eq!(sample(&text, "runnel_capacity"), 2.0);
    assert_eq!(sample(&text, "runnel_ready"), 1.0);
    assert!(sample(&text, "runnel_polls_total") >= 1.0);
    assert!(sample(&text, "runnel_last_successful_poll_timestamp_seconds") > 1.7e9);
    // 3 lines + the runner's first row + "Job success".
    assert!(sample(&text, "runnel_log_rows_sent_total") >= 5.0, "{text}");
    assert!(
        sample(&text, "runnel_log_rows_spooled_total") >= 5.0,
        "{text}"
    );
    assert_eq!(sample(&text, "runnel_log_rows_buffered"), 0.0);
    let (code, _) = http_get(&format!("{base}/nothing"));
    assert_eq!(code, 404);
    runner.stop(daemon);
    let (code, _) = http_get(&format!("{base}/healthz"));
    assert_eq!(code, 0, "the endpoints stop with the daemon");
}

#[test]
fn sighup_reloads_labels_and_capacity_and_a_bad_file_keeps_the_running_config() {
    let Some(gitea) =
        gitea("sighup_reloads_labels_and_capacity_and_a_bad_file_keeps_the_running_config")
    else {
        return;
    };
    let runner = register(gitea, "hup");
    let label = runner.label.clone();
    runner.write_config(&format!("runner:\n  labels: ['{label}:host']\n"));
    let daemon = runner.daemon(&["-c", "config.yaml"]);
    runner.wait_for_log("SIGHUP reloads the config");
    let extra = format!("{label}-x");
    runner.write_config(&format!(
        "runner:\n  capacity: 2\n  labels: ['{label}:host', '{extra}:host']\n  envs:\n    HUP_VAR: reloaded\n"
    ));
    signal(daemon.id(), "HUP");
    runner.wait_for_log("config reloaded: runner.capacity: 1 -> 2");
    let log = runner.daemon_log();
    assert!(
        log.contains("config reloaded: runner.envs: added HUP_VAR"),
        "{log}"
    );
    let listed = gitea.runner(runner.id);
    let mut labels: Vec<&str> = listed["labels"]
        .as_array()
        .map(|l| l.iter().filter_map(|l| l["name"].as_str()).collect())
        .unwrap_or_default();
    labels.sort_unstable();
    assert_eq!(labels, [label.as_str(), extra.as_str()], "{listed}");

    // A broken file: the error names the place, and the reloaded config stays in force.
    runner.write_config("runner:\n  capacity: lots\n");
    signal(daemon.id(), "HUP");
    runner.wait_for_log("the running config stays");
    let log = runner.daemon_log();
    assert!(
        log.contains("config.yaml:2:13: runner.capacity: `lots` is not an integer"),
        "{log}"
    );
    let jobs = format!(
        "  reloaded:\n    runs-on: {extra}\n    steps:\n      - run: echo \"var=$HUP_VAR\"\n"
    );
    gitea.push_workflow(&extra, &workflow(&extra, &jobs));
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    assert_eq!(job["conclusion"], "success", "{job}");
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(lines.iter().any(|l| l == "var=reloaded"), "{lines:?}");
    runner.stop(daemon);
}

/// Gitea's list of the runner's labels, sorted.
fn declared_labels(gitea: &Gitea, runner: &Runner) -> Vec<String> {
    let listed = gitea.runner(runner.id);
    let mut labels: Vec<String> = listed["labels"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|l| l["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    labels.sort_unstable();
    labels
}

/// `daemon --labels` wins over `runner.labels` and stays in force across a real SIGHUP that
/// reloads a config naming other labels (issue #16); a label of a scheme runnel does not run
/// is declared whole, as the Gitea runner v3.3 declares it, and its jobs fail saying why
/// instead of running on this machine.
#[test]
fn daemon_labels_survive_a_sighup_and_unknown_schemes_are_declared_whole() {
    let Some(gitea) =
        gitea("daemon_labels_survive_a_sighup_and_unknown_schemes_are_declared_whole")
    else {
        return;
    };
    let runner = register(gitea, "hupflag");
    let label = runner.label.clone();
    let flagged = format!("{label}-flag");
    let pool = format!("pool:{label}");
    runner.write_config(&format!("runner:\n  labels: ['{label}-config:host']\n"));
    let daemon = runner.daemon(&[
        "-c",
        "config.yaml",
        "--labels",
        &format!("{flagged}:host,{pool}"),
    ]);
    runner.wait_for_log("SIGHUP reloads the config");
    let log = runner.daemon_log();
    // The scheme is what follows the first `:`, as v3.3 splits a label.
    assert!(
        log.contains(&format!(
            "label `{pool}`: `{label}` is not a scheme runnel runs"
        )),
        "the start warns about the label: {log}"
    );
    let expected = {
        let mut expected = vec![flagged.clone(), pool.clone()];
        expected.sort_unstable();
        expected
    };
    assert_eq!(declared_labels(gitea, &runner), expected);

    runner.write_config(&format!(
        "runner:\n  capacity: 2\n  labels: ['{label}-other:host']\n"
    ));
    signal(daemon.id(), "HUP");
    runner.wait_for_log("config reloaded: runner.capacity: 1 -> 2");
    assert_eq!(
        declared_labels(gitea, &runner),
        expected,
        "{}",
        runner.daemon_log()
    );
    let jobs = format!(
        "  flagged:\n    runs-on: {flagged}\n    steps:\n      - run: echo on-the-flagged-label\n  \
         pooled:\n    runs-on: {pool}\n    steps:\n      - run: echo ran-on-this-machine\n"
    );
    gitea.push_workflow(&flagged, &workflow(&flagged, &jobs));
    let jobs = completed_jobs(gitea, &runner, 2);
    runner.stop(daemon);
    let log_of = |name: &str| -> (Value, String) {
        let job = jobs
            .iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in {jobs:?}"))
            .clone();
        let text = gitea.log_text(&job);
        (job, text)
    };
    let (flagged_job, flagged_log) = log_of("flagged");
    assert_eq!(flagged_job["conclusion"], "success", "{flagged_log}");
    assert!(
        flagged_log.contains("on-the-flagged-label"),
        "{flagged_log}"
    );
    let (pooled_job, pooled_log) = log_of("pooled");
    assert_eq!(pooled_job["conclusion"], "failure", "{pooled_log}");
    assert!(!pooled_log.contains("ran-on-this-machine"), "{pooled_log}");
    for expected in [
        format!("label `{pool}` has the scheme `{label}`, which runnel does not run"),
        "`docker://IMAGE`".to_owned(),
    ] {
        assert!(
            pooled_log.contains(&expected),
            "{expected:?} in {pooled_log}"
        );
    }
}

#[test]
fn the_job_sees_the_run_gitea_shows() {
    let Some(gitea) = gitea("the_job_sees_the_run_gitea_shows") else {
        return;
    };
    let runner = register(gitea, "ctx");
    let label = &runner.label;
    let jobs = format!(
        "  ctx:\n    runs-on: {label}\n    steps:\n      - run: |\n          echo \"expr=${{{{ github.run_id }}}}/${{{{ github.run_number }}}}/${{{{ github.run_attempt }}}}/${{{{ github.workflow }}}}\"\n          echo \"env=$GITHUB_RUN_ID/$GITHUB_RUN_NUMBER/$GITHUB_RUN_ATTEMPT/$GITHUB_WORKFLOW\"\n          echo \"sha=$GITHUB_SHA ref=$GITHUB_REF actor=$GITHUB_ACTOR repo=$GITHUB_REPOSITORY event=$GITHUB_EVENT_NAME\"\n          echo \"token=${{{{ github.token != '' }}}}\"\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let status = runner.wait(runner.daemon(&["--once"]));
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    assert_eq!(job["conclusion"], "success", "{job}");
    let run_id = job["run_id"].as_i64().unwrap_or_default();
    let run = gitea
        .api(
            "GET",
            &format!("/repos/{}/actions/runs/{run_id}", gitea.repo),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let run_number = run["run_number"].as_i64().unwrap_or_default();
    // The run's own `run_attempt` reads 0 in Gitea 1.26; the job's is the attempt.
    let attempt = job["run_attempt"].as_i64().unwrap_or_default();
    let path = run["path"].as_str().unwrap_or_default();
    // Gitea's `workflow` is the file name (`path` is `name.yml@ref`).
    let file = path.split('@').next().unwrap_or_default();
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let line = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no {prefix} line in {lines:?}"))
    };
    let fields = format!("{run_id}/{run_number}/{attempt}/{file}");
    assert_eq!(line("expr="), format!("expr={fields}"));
    assert_eq!(line("env="), format!("env={fields}"));
    let sha = job["head_sha"].as_str().unwrap_or_default();
    assert_eq!(
        line("sha="),
        format!(
            "sha={sha} ref=refs/heads/main actor={} repo={} event=push",
            gitea.admin_user, gitea.repo
        )
    );
    assert_eq!(line("token="), "token=true");
}

#[test]
fn an_ephemeral_runner_takes_one_job_exits_and_is_gone_from_gitea() {
    let Some(gitea) = gitea("an_ephemeral_runner_takes_one_job_exits_and_is_gone_from_gitea")
    else {
        return;
    };
    let runner = register_with(gitea, "eph", |l| format!("{l}:host"), &["--ephemeral"]);
    let label = &runner.label;
    let jobs = format!(
        "  one:\n    runs-on: {label}\n    steps:\n      - run: echo once\n  two:\n    needs: one\n    runs-on: {label}\n    steps:\n      - run: echo twice\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    // No --once: the ephemeral registration alone makes the daemon stop after one job.
    let status = runner.wait(runner.daemon(&[]));
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let jobs = gitea.jobs_of(runner.id);
    let done: Vec<&Value> = jobs.iter().filter(|j| j["status"] == "completed").collect();
    assert_eq!(done.len(), 1, "exactly one job ran: {jobs:?}");
    assert_eq!(done[0]["name"], "one");
    assert_eq!(done[0]["conclusion"], "success");
    let gone = gitea.api(
        "GET",
        &format!("/admin/actions/runners/{}", runner.id),
        None,
    );
    assert!(
        gone.is_err(),
        "Gitea still lists the ephemeral runner: {gone:?}"
    );
    // The job left for it is not taken by anyone: cancel the run so it does not linger.
    if let Some(run_id) = done[0]["run_id"].as_i64() {
        gitea.cancel_run(run_id, runner.dir.path());
    }
}

/// Docker and the test images, required when slow tests run.
fn docker_required(test: &str) {
    let images = Command::new("docker")
        .args([
            "image",
            "inspect",
            "runnel-test/busybox",
            "runnel-test/debian:bookworm",
        ])
        .output();
    assert!(
        images.is_ok_and(|o| o.status.success()),
        "{test}: Docker or the test images are missing: run tests/docker/ensure-dockerd.sh and tests/images/build.sh"
    );
}

/// Removes the container on drop, whatever the test did.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn a_docker_label_runs_the_job_in_its_image_after_removing_a_dead_runners_leftovers() {
    let test = "a_docker_label_runs_the_job_in_its_image_after_removing_a_dead_runners_leftovers";
    let Some(gitea) = gitea(test) else {
        return;
    };
    docker_required(test);
    // A container left by a runner process that no longer exists.
    let mut dead = Command::new("true")
        .spawn()
        .unwrap_or_else(|e| panic!("spawn true: {e}"));
    let dead_pid = dead.id();
    let _ = dead.wait();
    let runner = register_with(
        gitea,
        "dock",
        |l| format!("{l}:docker://runnel-test/debian:bookworm"),
        &[],
    );
    let created = Command::new("docker")
        .args(["create", "--label", &format!("runnel.pid={dead_pid}")])
        .args(["--label", &format!("runnel.job={}", runner.label)])
        .args(["runnel-test/busybox", "true"])
        .output()
        .unwrap_or_else(|e| panic!("docker create: {e}"));
    assert!(created.status.success(), "{created:?}");
    let leftover = Container(String::from_utf8_lossy(&created.stdout).trim().to_owned());

    let label = &runner.label;
    let jobs = format!(
        "  boxed:\n    runs-on: {label}\n    steps:\n      - run: echo \"debian $(cat /etc/debian_version)\"; test -f /.dockerenv && echo in-a-container\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let started = Instant::now();
    let daemon = runner.daemon(&["--once"]);
    let daemon_pid = daemon.id();
    let status = runner.wait(daemon);
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    assert_eq!(
        job["conclusion"],
        "success",
        "{job}\n{}",
        runner.daemon_log()
    );
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        lines.iter().any(|l| l.starts_with("debian 12")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l == "in-a-container"), "{lines:?}");
    println!(
        "measure: docker-label job, daemon start -> exit {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let still = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("id={}", leftover.0)])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    // Gone, whichever runner removed it: daemons of tests running at the same time clean up
    // at their start too, so this daemon's log need not be the one that says so.
    assert_eq!(still, "", "the dead runner's container was not removed");
    let mine = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=runnel.pid={daemon_pid}"),
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    assert_eq!(mine, "", "the job's containers are gone");
}
