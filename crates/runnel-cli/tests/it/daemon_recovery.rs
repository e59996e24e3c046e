//! The daemon's durability against a real Gitea: a runner SIGKILLed mid-job while Gitea is not
//! answering (so rows are certainly unacknowledged) delivers every row at its next start and
//! fails the job, leaving none of the job's processes running; a result Gitea missed before a
//! clean stop is delivered at the next start; Gitea stopped for 30 s mid-job loses no line
//! and still gets the result; and a final report that gave up while Gitea stayed away is
//! delivered by the same daemon once Gitea is back.
//!
//! These tests stop the Gitea process (SIGSTOP), so they use their own instance
//! (`daemon-recovery`) and take turns. Slow: they return early unless `RUN_SLOW_TESTS` is set.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::daemon_gitea::{
    Gitea, Runner, completed_jobs, obtain_named, register, signal, slow_instance, wait_for_line,
    workflow,
};

static INSTANCE: OnceLock<Result<Gitea, String>> = OnceLock::new();
/// One test at a time stops the server.
static TURN: Mutex<()> = Mutex::new(());

fn instance(test: &str) -> Option<&'static Gitea> {
    slow_instance(&INSTANCE, test, || obtain_named("daemon-recovery"))
}

/// Gitea frozen with SIGSTOP until dropped (so a failing test never leaves it stopped).
struct Frozen(u32);

impl Frozen {
    fn new(gitea: &Gitea) -> Frozen {
        let pid = gitea
            .pid
            .unwrap_or_else(|| panic!("the instance's env file has no GITEA_PID"));
        signal(pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

/// Waits until the runner's job has printed `started`; returns the job's id.
fn started_job(gitea: &Gitea, runner: &Runner) -> i64 {
    wait_for_line(gitea, runner, "started")["id"]
        .as_i64()
        .unwrap_or_default()
}

/// The completed job `job_id` of `runner`.
fn completed_job(gitea: &Gitea, runner: &Runner, job_id: i64) -> serde_json::Value {
    completed_jobs(gitea, runner, 1)
        .into_iter()
        .find(|j| j["id"].as_i64() == Some(job_id))
        .unwrap_or_else(|| panic!("job {job_id} not found"))
}

/// Registers a runner (final reports given up on after 1 s per call: `config.yaml`) and
/// pushes job `job`: it prints `started`, then a second later `while-gitea-was-away`.
fn quick_job(gitea: &Gitea, prefix: &str, job: &str) -> Runner {
    let runner = register(gitea, prefix);
    runner.write_config("runner:\n  report_close_timeout: 1s\n");
    let label = &runner.label;
    let jobs = format!(
        "  {job}:\n    runs-on: {label}\n    steps:\n      - run: echo started\n      - run: sleep 1; echo while-gitea-was-away\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    runner
}

/// The log of a [`quick_job`] has its second step's line and ends with the job's success.
fn assert_finished_after_the_pause(gitea: &Gitea, job_id: i64) {
    let log = gitea.log_lines(job_id).unwrap_or_default();
    assert!(log.iter().any(|l| l == "while-gitea-was-away"), "{log:?}");
    assert_eq!(
        log.last().map(String::as_str),
        Some("Job success"),
        "{log:?}"
    );
}

/// Lines of the job's log that start with `prefix`.
fn lines_with(gitea: &Gitea, job_id: i64, prefix: &str) -> Vec<String> {
    gitea
        .log_lines(job_id)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l.starts_with(prefix))
        .collect()
}

#[test]
fn a_runner_killed_mid_job_delivers_every_row_at_restart_and_fails_the_job() {
    let test = "a_runner_killed_mid_job_delivers_every_row_at_restart_and_fails_the_job";
    let Some(gitea) = instance(test) else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let runner = register(gitea, "kill");
    let label = &runner.label;
    let marker = runner.dir.path().join("printed.txt");
    let marker_text = marker.display();
    // Processes the killed runner leaves: a background `sleep` of a step whose shell has
    // exited, and the shell of the step that is running.
    let background_pid = runner.dir.path().join("background.pid");
    let step_pid = runner.dir.path().join("step.pid");
    let (background_text, step_text) = (background_pid.display(), step_pid.display());
    // Every line also goes to a file, so the test knows what was printed before the kill.
    let jobs = format!(
        "  doomed:\n    runs-on: {label}\n    steps:\n      - run: |\n          sleep 300 >/dev/null 2>&1 &\n          echo $! > {background_text}\n          echo started\n      - run: |\n          echo $$ > {step_text}\n          for i in $(seq 1 100); do echo \"row $i\" | tee -a {marker_text}; sleep 0.2; done\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon(&[]);
    let job_id = started_job(gitea, &runner);

    // Gitea stops answering, so what the job prints now stays unacknowledged.
    let frozen = Frozen::new(gitea);
    let printed = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let until = Instant::now() + Duration::from_secs(30);
    while printed(&marker) < 10 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Right after a line, so the runner has had time to read it (lines come every 200 ms).
    let seen = printed(&marker);
    while printed(&marker) == seen {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let printed_before_kill = printed(&marker);
    let mut daemon = daemon;
    let _ = daemon.kill();
    let _ = daemon.wait();
    drop(frozen);

    let restarted = Instant::now();
    let daemon = runner.daemon(&[]);
    let job = { completed_job(gitea, &runner, job_id) };
    let recovery = restarted.elapsed();
    runner.stop(daemon);

    assert_eq!(job["conclusion"], "failure", "{job}");
    let rows = lines_with(gitea, job_id, "row ");
    let expected: Vec<String> = (1..=rows.len()).map(|i| format!("row {i}")).collect();
    assert_eq!(rows, expected, "rows in order, none missing or doubled");
    let lost = printed_before_kill.saturating_sub(rows.len());
    println!(
        "measure: SIGKILL with Gitea frozen: {printed_before_kill} rows printed before the kill, {} in Gitea after restart, rows lost = {lost}; restart -> job completed in Gitea {:.2} s",
        rows.len(),
        recovery.as_secs_f64()
    );
    assert_eq!(lost, 0, "{}", runner.daemon_log());
    let log = gitea.log_lines(job_id).unwrap_or_default();
    assert!(
        log.iter()
            .any(|l| l.contains("The runner restarted while this job was running")),
        "{log:?}"
    );
    assert_eq!(
        log.last().map(String::as_str),
        Some("Job failure"),
        "{log:?}"
    );
    let spool = runner.dir.path().join(".runnel-spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "delivered tasks leave the spool: {left:?}");
    for file in [&background_pid, &step_pid] {
        let pid = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_owned();
        assert!(
            gone(&pid),
            "process {pid} of the killed runner's job still runs after the restart ({})",
            file.display()
        );
    }
}

/// Whether process `pid` is gone (no such process, or a zombie), waiting up to 5 s.
fn gone(pid: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let running = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let state = stat
                    .get(stat.rfind(')')? + 1..)?
                    .split_whitespace()
                    .next()?;
                Some(state != "Z")
            })
            .unwrap_or(false);
        if !running {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn gitea_frozen_for_30_s_mid_job_loses_no_line_and_gets_the_result() {
    let test = "gitea_frozen_for_30_s_mid_job_loses_no_line_and_gets_the_result";
    let Some(gitea) = instance(test) else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let runner = register(gitea, "outage");
    let label = &runner.label;
    let jobs = format!(
        "  steady:\n    runs-on: {label}\n    steps:\n      - run: echo started\n      - run: |\n          for i in $(seq 1 40); do echo \"tick $i\"; sleep 0.5; done\n      - run: echo done\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon(&["--once"]);
    let job_id = started_job(gitea, &runner);
    let frozen = Frozen::new(gitea);
    std::thread::sleep(Duration::from_secs(30));
    drop(frozen);
    let thawed = Instant::now();
    let status = runner.wait(daemon);
    let reported = thawed.elapsed();
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_job(gitea, &runner, job_id);
    assert_eq!(job["conclusion"], "success", "{job}");
    let ticks = lines_with(gitea, job_id, "tick ");
    let expected: Vec<String> = (1..=40).map(|i| format!("tick {i}")).collect();
    assert_eq!(ticks, expected);
    let log = gitea.log_lines(job_id).unwrap_or_default();
    assert!(log.iter().any(|l| l == "done"), "{log:?}");
    println!(
        "measure: Gitea frozen 30 s mid-job: 40/40 ticks delivered, lines lost = 0; Gitea back -> daemon reported and exited in {:.2} s",
        reported.as_secs_f64()
    );
}

#[test]
fn a_result_gitea_missed_before_a_clean_stop_is_delivered_at_the_next_start() {
    let test = "a_result_gitea_missed_before_a_clean_stop_is_delivered_at_the_next_start";
    let Some(gitea) = instance(test) else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let runner = quick_job(gitea, "later", "quick");
    let daemon = runner.daemon(&["-c", "config.yaml"]);
    let job_id = started_job(gitea, &runner);
    let frozen = Frozen::new(gitea);
    // The job ends while Gitea is away; SIGTERM then stops the daemon before Gitea took the
    // result, which stays in the spool.
    runner.wait_for_log("job finished");
    runner.stop(daemon);
    assert!(
        runner
            .daemon_log()
            .contains("the spool keeps it for the next start"),
        "{}",
        runner.daemon_log()
    );
    drop(frozen);
    let daemon = runner.daemon(&["-c", "config.yaml"]);
    let job = completed_job(gitea, &runner, job_id);
    runner.stop(daemon);
    assert_eq!(
        job["conclusion"], "success",
        "the recorded result, not a restart failure"
    );
    assert_finished_after_the_pause(gitea, job_id);
}

#[test]
fn a_report_that_gave_up_is_redelivered_by_the_running_daemon_when_gitea_is_back() {
    let test = "a_report_that_gave_up_is_redelivered_by_the_running_daemon_when_gitea_is_back";
    let Some(gitea) = instance(test) else {
        return;
    };
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    // Each report call waits 1 s, and one final report is tried for 5 s (instead of 15
    // minutes) before it is parked: Gitea stays away well past that budget.
    let runner = quick_job(gitea, "redeliver", "parked");
    let mut daemon = Reaped(Some(
        runner.daemon_with_env(&["-c", "config.yaml"], &[("RUNNEL_REPORT_PATIENCE", "5s")]),
    ));
    let job_id = started_job(gitea, &runner);
    let frozen = Frozen::new(gitea);
    runner.wait_for_log("job finished");
    runner.wait_for_log("it is retried in the background");
    // A background round while Gitea is still away fails and parks the report again.
    runner.wait_for_log("retrying the report Gitea did not take");
    let rounds_before = runner
        .daemon_log()
        .matches("it is retried in the background")
        .count();
    for _ in 0..300 {
        if runner
            .daemon_log()
            .matches("it is retried in the background")
            .count()
            > rounds_before
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let spool = runner.dir.path().join(".runnel-spool");
    let spooled = |dir: &std::path::Path| -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        spooled(&spool).len(),
        1,
        "the parked report is in the spool"
    );
    drop(frozen);
    let thawed = Instant::now();
    let job = completed_job(gitea, &runner, job_id);
    let delivered = thawed.elapsed();
    assert!(
        matches!(daemon.0.as_mut().map(|d| d.try_wait()), Some(Ok(None))),
        "delivered by the same daemon process, not a restart"
    );
    assert_eq!(
        job["conclusion"],
        "success",
        "{job}\n{}",
        runner.daemon_log()
    );
    assert_finished_after_the_pause(gitea, job_id);
    for _ in 0..50 {
        if spooled(&spool).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        spooled(&spool).is_empty(),
        "delivered reports leave the spool"
    );
    assert!(runner.daemon_log().contains("Gitea answers again"));
    let log = runner.daemon_log();
    println!(
        "measure: report parked after its retry budget while Gitea was frozen, {} background tries; Gitea back -> job completed in Gitea {:.2} s (same daemon process)",
        log.matches("retrying the report Gitea did not take")
            .count(),
        delivered.as_secs_f64()
    );
    assert!(
        log.contains("task reported"),
        "delivered by the redelivery: {log}"
    );
    let daemon = daemon
        .0
        .take()
        .unwrap_or_else(|| panic!("the daemon is gone"));
    runner.stop(daemon);
}

/// A daemon killed when a failing assertion unwinds past it (so no runner outlives its test).
pub(crate) struct Reaped(pub(crate) Option<std::process::Child>);

impl Reaped {
    /// The daemon, for a clean stop at the end of the test.
    pub(crate) fn take(&mut self) -> std::process::Child {
        self.0
            .take()
            .unwrap_or_else(|| panic!("the daemon was already taken"))
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
