//! `runnel register` and `runnel daemon` against a real Gitea (see `daemon_gitea`): passing and
//! failing jobs, secrets and needs, cancelling. Workflows are pushed through the contents API
//! and results read back through Gitea's REST API, as a user would see them. Slow: they return
//! early unless `RUN_SLOW_TESTS` is set.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::daemon_gitea::{
    completed_jobs, gitea, register, run_the_failing_job, step_states, wait_for_line, workflow,
};
use crate::support::runnel;

#[test]
fn register_writes_the_runner_file_and_gitea_lists_the_runner() {
    let Some(gitea) = gitea("register_writes_the_runner_file_and_gitea_lists_the_runner") else {
        return;
    };
    let runner = register(gitea, "reg");
    let listed = gitea.runner(runner.id);
    assert_eq!(listed["name"], runner.label.as_str(), "{listed}");
    let labels: Vec<&str> = listed["labels"]
        .as_array()
        .map(|l| l.iter().filter_map(|l| l["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        labels,
        [runner.label.as_str()],
        "only the name goes to Gitea"
    );
    // Registering again replaces the file, as the Gitea runner does; the token may come
    // from a file and the labels from the config (its `-c` before the verb).
    let dir = runner.dir.path();
    std::fs::write(dir.join("token"), format!("{}\n", gitea.registration_token))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("config.yaml"),
        "runner:\n  labels: ['from-config:host']\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let again = runnel()
        .current_dir(dir)
        .args(["-c", "config.yaml", "register", "--no-interactive"])
        .args(["--instance", &gitea.url, "--token-file", "token"])
        .args(["--name", &format!("{}-again", runner.label)])
        // The config's labels win, as in the Gitea runner v3.3.
        .args(["--labels", "from-flag:host"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(
        stderr.contains("replacing the registration of runner"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--labels is ignored: the config's runner.labels are registered"),
        "{stderr}"
    );
    let file = std::fs::read_to_string(dir.join(".runner")).unwrap_or_else(|e| panic!("{e}"));
    let file: serde_json::Value = serde_json::from_str(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(file["id"].as_i64(), Some(runner.id), "{file}");
    assert_eq!(
        file["labels"],
        serde_json::json!(["from-config:host"]),
        "{file}"
    );
}

/// `daemon --labels` (or `GITEA_RUNNER_LABELS`) wins over the config's and the `.runner`
/// file's labels, declares them and writes them to `.runner`, as the Gitea runner's flag.
#[test]
fn daemon_labels_replace_the_registered_ones() {
    let Some(gitea) = gitea("daemon_labels_replace_the_registered_ones") else {
        return;
    };
    let runner = register(gitea, "labels");
    runner.write_config("runner:\n  labels: ['from-config:host']\n");
    let (a, b) = (format!("{}-a", runner.label), format!("{}-b", runner.label));
    let flag = format!("{a}:host, {b}:host");
    let child = runner.daemon(&["-c", "config.yaml", "--labels", &flag]);
    runner.wait_for_log("declared to");
    runner.stop(child);
    let names = |id| -> Vec<String> {
        let listed = gitea.runner(id);
        listed["labels"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|l| l["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut declared = names(runner.id);
    declared.sort();
    assert_eq!(declared, [a.clone(), b.clone()]);
    let file = std::fs::read_to_string(runner.dir.path().join(".runner"))
        .unwrap_or_else(|e| panic!("{e}"));
    let file: serde_json::Value = serde_json::from_str(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        file["labels"],
        serde_json::json!([format!("{a}:host"), format!("{b}:host")]),
        "{file}"
    );
    // The environment variable, as the Gitea runner's container image sets it.
    let c = format!("{}-c", runner.label);
    let spec = format!("{c}:host");
    let child = runner.daemon_with_env(&["-c", "config.yaml"], &[("GITEA_RUNNER_LABELS", &spec)]);
    for _ in 0..100 {
        if names(runner.id) == [c.clone()] {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    runner.stop(child);
    assert_eq!(names(runner.id), [c]);
}

#[test]
fn a_passing_and_a_failing_job_with_step_states_logs_and_live_latency() {
    let Some(gitea) = gitea("a_passing_and_a_failing_job_with_step_states_logs_and_live_latency")
    else {
        return;
    };
    let runner = register(gitea, "pass");
    let label = &runner.label;
    let jobs = format!(
        "  hello:\n    runs-on: {label}\n    steps:\n      - run: echo hello from runnel\n      - name: ticks\n        run: |\n          for i in $(seq 1 15); do echo \"tick $i $(date +%s%N)\"; sleep 0.2; done\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&["--once"]);
    // While the job runs, read its log as a user would and note when each tick appears.
    let mut seen: HashMap<String, u128> = HashMap::new();
    let started = Instant::now();
    let mut job_id = None;
    while started.elapsed() < Duration::from_secs(60) && seen.len() < 15 {
        if job_id.is_none() {
            job_id = gitea
                .jobs_of(runner.id)
                .first()
                .and_then(|j| j["id"].as_i64());
        }
        if let Some(id) = job_id
            && let Ok(lines) = gitea.log_lines(id)
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            for line in lines.iter().filter(|l| l.starts_with("tick ")) {
                seen.entry(line.clone()).or_insert(now);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = runner.wait(child);
    assert!(
        status.success(),
        "daemon: {status}\n{}",
        runner.daemon_log()
    );
    let mut latencies: Vec<f64> = seen
        .iter()
        .filter_map(|(line, at)| {
            let written: u128 = line.split(' ').nth(2)?.parse().ok()?;
            Some(at.saturating_sub(written) as f64 / 1e6)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "measure: line written -> readable through Gitea's API: n={} p50={:.0} ms p95={:.0} ms max={:.0} ms (includes this test's ~20 ms polling and curl)",
        latencies.len(),
        pick(0.5),
        pick(0.95),
        pick(1.0)
    );

    let job = completed_jobs(gitea, &runner, 1).remove(0);
    assert_eq!(job["conclusion"], "success", "{job}");
    assert_eq!(
        step_states(&job),
        [
            (
                "Run echo hello from runnel".to_owned(),
                "success".to_owned()
            ),
            ("ticks".to_owned(), "success".to_owned())
        ]
    );
    let id = job["id"].as_i64().unwrap_or_default();
    let lines = gitea.log_lines(id).unwrap_or_else(|e| panic!("{e}"));
    assert!(lines.iter().any(|l| l == "hello from runnel"), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("tick ")).count(),
        15,
        "{lines:?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("Job success"));

    // A failing step fails the job; the step after it is skipped, `always()` still runs.
    let job = run_the_failing_job(gitea, &runner);
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(lines.iter().any(|l| l == "cleanup"), "{lines:?}");
    assert!(!lines.iter().any(|l| l == "never"), "{lines:?}");
}

#[test]
fn secrets_are_masked_and_outputs_cross_needs() {
    let Some(gitea) = gitea("secrets_are_masked_and_outputs_cross_needs") else {
        return;
    };
    let runner = register(gitea, "needs");
    let label = &runner.label;
    let (secret_name, secret_value) = gitea.new_secret("S", label, "hush");
    let jobs = format!(
        "  first:\n    runs-on: {label}\n    outputs:\n      answer: ${{{{ steps.compute.outputs.answer }}}}\n    steps:\n      - id: compute\n        run: |\n          echo \"answer=42\" >> \"$GITHUB_OUTPUT\"\n          echo \"the secret is ${{{{ secrets.{secret_name} }}}}\"\n  second:\n    needs: first\n    runs-on: {label}\n    steps:\n      - run: echo \"got ${{{{ needs.first.outputs.answer }}}} after ${{{{ needs.first.result }}}}\"\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&[]);
    let jobs = completed_jobs(gitea, &runner, 2);
    runner.terminate(&child);
    let status = runner.wait(child);
    assert!(
        status.success(),
        "SIGTERM ends the daemon cleanly: {status}"
    );
    let by_name = |name: &str| {
        jobs.iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in {jobs:?}"))
    };
    let first = by_name("first");
    let second = by_name("second");
    assert_eq!(first["conclusion"], "success", "{first}");
    assert_eq!(second["conclusion"], "success", "{second}");
    let first_log = gitea.log_text(first);
    assert!(first_log.contains("the secret is ***"), "{first_log}");
    assert!(
        !first_log.contains(&secret_value),
        "secret leaked: {first_log}"
    );
    let second_log = gitea.log_text(second);
    assert!(second_log.contains("got 42 after success"), "{second_log}");
}

#[test]
fn a_run_cancelled_in_gitea_stops_the_job() {
    let Some(gitea) = gitea("a_run_cancelled_in_gitea_stops_the_job") else {
        return;
    };
    let runner = register(gitea, "cancel");
    let label = &runner.label;
    let jobs = format!(
        "  sleepy:\n    runs-on: {label}\n    steps:\n      - run: echo started; sleep 120; echo woke\n      - run: echo after\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let child = runner.daemon(&["--once"]);
    let job = wait_for_line(gitea, &runner, "started");
    let run_id = job["run_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no run_id: {job}"));
    let cancelled_at = Instant::now();
    gitea.cancel_run(run_id, runner.dir.path());
    let status = runner.wait(child);
    println!(
        "measure: cancel in Gitea -> daemon exited after the job stopped: {:.2} s",
        cancelled_at.elapsed().as_secs_f64()
    );
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    assert_eq!(job["conclusion"], "cancelled", "{job}");
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !lines.iter().any(|l| l == "woke" || l == "after"),
        "{lines:?}"
    );
}
