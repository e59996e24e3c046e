//! `runnel daemon` against the newer Gitea (`tests/gitea/NEXT_VERSION`, 1.27.3), the one that
//! speaks proto v0.6.0 (`capabilities`, the *cancelling* task state) and expands reusable
//! workflows itself: registering, a passing and a failing job with step states and logs,
//! outputs across `needs` with a masked secret, a cancel that runs the job's cleanup before
//! the final report, job summaries uploaded to Gitea's summary API (masked, after a SIGHUP
//! re-declare, and from a cleanup step after a cancel), and a local reusable workflow with
//! inputs, secrets and outputs — also run on Gitea 1.26, where the runner expands the call.
//!
//! Instance `next-it` (started with `GITEA_VERSION=next`, reused while it lives and is that
//! version; `RUNNEL_GITEA_NEXT_ENV` names another instance's env file). Slow: the tests return
//! early unless `RUN_SLOW_TESTS` is set.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon_gitea::{
    Gitea, Runner, completed_jobs, obtain_named, obtain_version, read_env, register,
    run_the_failing_job, signal, slow_instance, step_states, wait_for_line, workflow,
};
use crate::daemon_recovery::Reaped;
use crate::support::repo_root;

static NEXT: OnceLock<Result<Gitea, String>> = OnceLock::new();

/// The newer Gitea for `test`, or `None` (with a note) when slow tests are off.
fn next(test: &str) -> Option<&'static Gitea> {
    slow_instance(&NEXT, test, obtain_next)
}

fn obtain_next() -> Result<Gitea, String> {
    if let Some(path) = std::env::var_os("RUNNEL_GITEA_NEXT_ENV") {
        return read_env(Path::new(&path));
    }
    let path = repo_root().join("tests/gitea/NEXT_VERSION");
    let version =
        std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    obtain_version("next-it", Some(version.trim()))
}

/// All jobs of run `run_id` (a call job has no runner, so `jobs_of` does not list it).
fn run_jobs(gitea: &Gitea, run_id: i64) -> Vec<Value> {
    gitea
        .api(
            "GET",
            &format!("/repos/{}/actions/runs/{run_id}/jobs", gitea.repo),
            None,
        )
        .map(|v| v["jobs"].as_array().cloned().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The job summaries the web UI's run view shows for one job (`jobSummaries`: job id, name,
/// the summary rendered as HTML); Gitea has no REST API for them.
fn web_job_summaries(gitea: &Gitea, dir: &Path, run_id: i64, job_id: i64) -> Vec<Value> {
    gitea.web_job_view(dir, run_id, job_id)["state"]["run"]["jobSummaries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn next_declares_capabilities_and_runs_a_passing_and_a_failing_job() {
    let test = "next_declares_capabilities_and_runs_a_passing_and_a_failing_job";
    let Some(gitea) = next(test) else {
        return;
    };
    let runner = register(gitea, "nx-pass");
    let listed = gitea.runner(runner.id);
    assert_eq!(listed["name"], runner.label.as_str(), "{listed}");
    let label = &runner.label;
    let jobs = format!(
        "  hello:\n    runs-on: {label}\n    steps:\n      - run: echo hello from runnel\n      - name: second\n        run: echo second step\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let status = runner.wait(runner.daemon(&["--once"]));
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    // Declare's answer header names what the server supports.
    assert!(
        runner
            .daemon_log()
            .contains(r#"server_capabilities=["job-summary"]"#),
        "{}",
        runner.daemon_log()
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
            ("second".to_owned(), "success".to_owned())
        ]
    );
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(lines.iter().any(|l| l == "hello from runnel"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "second step"), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("Job success"));

    let job = run_the_failing_job(gitea, &runner);
    let log = gitea.log_text(&job);
    assert!(log.contains("cleanup") && !log.contains("\nnever"), "{log}");
}

#[test]
fn next_outputs_cross_needs_and_the_secret_is_masked() {
    let Some(gitea) = next("next_outputs_cross_needs_and_the_secret_is_masked") else {
        return;
    };
    let runner = register(gitea, "nx-needs");
    let label = &runner.label;
    let (secret_name, secret_value) = gitea.new_secret("S", label, "hush");
    let jobs = "  first:\n    runs-on: LABEL\n    outputs:\n      answer: ${{ steps.compute.outputs.answer }}\n    steps:\n      - id: compute\n        run: |\n          echo \"answer=42\" >> \"$GITHUB_OUTPUT\"\n          echo \"the secret is ${{ secrets.SECRET }}\"\n  second:\n    needs: first\n    runs-on: LABEL\n    steps:\n      - run: echo \"got ${{ needs.first.outputs.answer }} after ${{ needs.first.result }}\"\n"
        .replace("LABEL", label)
        .replace("SECRET", &secret_name);
    gitea.push_workflow(label, &workflow(label, &jobs));
    let mut child = Reaped(Some(runner.daemon(&[])));
    let jobs = completed_jobs(gitea, &runner, 2);
    runner.stop(child.take());
    let by_name = |name: &str| {
        jobs.iter()
            .find(|j| j["name"] == name)
            .unwrap_or_else(|| panic!("no job {name} in {jobs:?}"))
    };
    let first_log = gitea.log_text(by_name("first"));
    assert!(first_log.contains("the secret is ***"), "{first_log}");
    assert!(!first_log.contains(&secret_value), "secret leaked");
    let second = by_name("second");
    assert_eq!(second["conclusion"], "success", "{second}");
    assert!(gitea.log_text(second).contains("got 42 after success"));
}

/// The runner declares `cancelling`, so a cancel in Gitea 1.27 leaves the task *cancelling*
/// (its token valid) until the runner's final report: the job's `always()` step runs and its
/// state is recorded (a task already *cancelled* would ignore later step states), and the job
/// ends cancelled whatever the cleanup's result.
#[test]
fn next_a_cancel_runs_the_cleanup_step_and_records_it_before_the_job_ends_cancelled() {
    let test = "next_a_cancel_runs_the_cleanup_step_and_records_it_before_the_job_ends_cancelled";
    let Some(gitea) = next(test) else {
        return;
    };
    let runner = register(gitea, "nx-cancel");
    let label = &runner.label;
    let jobs = format!(
        "  sleepy:\n    runs-on: {label}\n    steps:\n      - run: echo started; sleep 120; echo woke\n      - run: echo after\n      - if: always()\n        run: sleep 2; echo cleanup ran; echo '## cleanup summary' >> \"$GITHUB_STEP_SUMMARY\"\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let mut child = Reaped(Some(runner.daemon(&["--once"])));
    let job = wait_for_line(gitea, &runner, "started");
    let run_id = job["run_id"].as_i64().unwrap_or_default();
    let job_id = job["id"].as_i64().unwrap_or_default();
    let cancelled_at = Instant::now();
    gitea.cancel_run(run_id, runner.dir.path());
    let status = runner.wait(child.take());
    println!(
        "measure: cancel in Gitea 1.27 -> cleanup ran, daemon exited: {:.2} s",
        cancelled_at.elapsed().as_secs_f64()
    );
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    assert_eq!(job["conclusion"], "cancelled", "{job}");
    let log = gitea.log_text(&job);
    assert!(log.contains("cleanup ran"), "{log}");
    assert!(!log.contains("woke") && !log.contains("\nafter"), "{log}");
    let steps = gitea.web_steps(runner.dir.path(), run_id, job_id);
    let cleanup = steps
        .iter()
        .find(|(name, _)| name.contains("cleanup ran"))
        .unwrap_or_else(|| panic!("no cleanup step in {steps:?}"));
    assert_eq!(cleanup.1, "success", "{steps:?}");
    // The cleanup's summary is uploaded while the task is *cancelling*: with the task token
    // (Gitea refuses the runtime JWT of a task that is no longer running).
    let summaries = web_job_summaries(gitea, runner.dir.path(), run_id, job_id);
    let html = summaries
        .first()
        .and_then(|s| s["summaryHTML"].as_str())
        .unwrap_or_default();
    assert!(
        html.contains("cleanup summary</h2>"),
        "{summaries:?}\n{log}"
    );
    assert!(!log.contains("==== Job summary"), "{log}");
}

/// Gitea 1.27 announces `job-summary`: the steps' summaries go to its summary API before the
/// final report (masked, one upload per step, shown by the run view as HTML), the log keeps
/// one line saying so instead of the block 1.26 gets, and a SIGHUP that declares the labels
/// again keeps the capability for the tasks after it.
#[test]
fn next_uploads_job_summaries_masked_also_after_a_sighup_redeclare() {
    let test = "next_uploads_job_summaries_masked_also_after_a_sighup_redeclare";
    let Some(gitea) = next(test) else {
        return;
    };
    let runner = register(gitea, "nx-sum");
    let label = runner.label.clone();
    let (secret_name, secret_value) = gitea.new_secret("M", &label, "summary");
    runner.write_config(&format!("runner:\n  labels: ['{label}:host']\n"));
    let mut child = Reaped(Some(runner.daemon(&["-c", "config.yaml"])));
    runner.wait_for_log("SIGHUP reloads the config");
    let extra = format!("{label}-x");
    runner.write_config(&format!(
        "runner:\n  labels: ['{label}:host', '{extra}:host']\n"
    ));
    signal(child.0.as_ref().map_or(0, std::process::Child::id), "HUP");
    runner.wait_for_log("labels declared to Gitea");
    let log = runner.daemon_log();
    assert_eq!(
        log.matches(r#"server_capabilities=["job-summary"]"#)
            .count(),
        2,
        "at start and again at the reload: {log}"
    );
    let jobs = "  report:\n    runs-on: EXTRA\n    steps:\n      - name: Write the report\n        run: |\n          echo step-output\n          printf '## Report\\n\\n| check | result |\\n|---|---|\\n| unit | passed |\\n\\ntoken %s stays hidden\\n' '${{ secrets.SECRET }}' >> \"$GITHUB_STEP_SUMMARY\"\n      - run: echo no summary here\n      - name: Second part\n        run: echo '- second *item*' >> \"$GITHUB_STEP_SUMMARY\"\n"
        .replace("EXTRA", &extra)
        .replace("SECRET", &secret_name);
    // Dispatched: a push can start two runs when other tests push at the same moment.
    gitea.dispatch_workflow(&extra, &jobs);
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    runner.stop(child.take());
    assert_eq!(job["conclusion"], "success", "{job}");
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let text = lines.join("\n");
    assert!(!text.contains("==== Job summary"), "{text}");
    assert!(!text.contains(&secret_value), "secret leaked: {text}");
    assert_eq!(
        lines[lines.len().saturating_sub(2)..],
        [
            "The job summary (written by 2 steps) was uploaded to Gitea; the run's page shows it",
            "Job success",
        ],
        "{text}"
    );
    let run_id = job["run_id"].as_i64().unwrap_or_default();
    let job_id = job["id"].as_i64().unwrap_or_default();
    let summaries = web_job_summaries(gitea, runner.dir.path(), run_id, job_id);
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert_eq!(
        summaries[0]["jobId"].as_i64(),
        Some(job_id),
        "{summaries:?}"
    );
    assert_eq!(summaries[0]["jobName"], "report", "{summaries:?}");
    let html = summaries[0]["summaryHTML"].as_str().unwrap_or_default();
    for piece in [
        "Report</h2>",
        "<table>",
        "<td>passed</td>",
        "token *** stays hidden",
        "<em>item</em>",
    ] {
        assert!(html.contains(piece), "{piece:?} not in {html}");
    }
    assert!(!html.contains(&secret_value), "secret leaked: {html}");
    let report = html.find("Report</h2>").unwrap_or_default();
    assert!(
        report < html.find("<em>item</em>").unwrap_or_default(),
        "{html}"
    );
}

/// A local reusable workflow with typed inputs (one left to its default), a secret passed by
/// name and an output read by a later job. Its text; `LABEL` is the runner's label.
const LIBRARY: &str = "on:
  workflow_call:
    inputs:
      who:
        type: string
        required: true
      loud:
        type: boolean
        default: false
      times:
        type: number
        default: 2
    secrets:
      token:
        required: true
    outputs:
      said:
        value: ${{ jobs.say.outputs.said }}
jobs:
  say:
    runs-on: LABEL
    outputs:
      said: ${{ steps.s.outputs.said }}
    steps:
      - id: s
        run: |
          echo \"called for ${{ inputs.who }} loud=${{ inputs.loud }} times=${{ inputs.times }} token=${{ secrets.token }} event=${{ github.event_name }}\"
          echo \"said=hi-${{ inputs.who }}-${{ inputs.loud && 'loud' || 'quiet' }}-${{ inputs.times }}\" >> \"$GITHUB_OUTPUT\"
";

/// The caller's jobs (dispatched once, so exactly one run).
const CALLER: &str = "  call:
    uses: ./.gitea/workflows/LABEL-lib.yml
    with:
      who: gitea
      loud: true
    secrets:
      token: ${{ secrets.SECRET }}
  after:
    needs: call
    runs-on: LABEL
    steps:
      - run: echo \"after got ${{ needs.call.outputs.said }} (${{ needs.call.result }})\"
";

/// What a reusable-workflow run looked like: the jobs of its run, by name.
struct CallRun {
    jobs: HashMap<String, Value>,
    secret_value: String,
}

/// Pushes the library and dispatches the caller; waits for `after` to complete.
fn run_reusable(gitea: &Gitea, runner: &Runner) -> CallRun {
    let label = &runner.label;
    let (secret_name, secret_value) = gitea.new_secret("R", label, "lib");
    gitea.push_workflow(&format!("{label}-lib"), &LIBRARY.replace("LABEL", label));
    gitea.dispatch_workflow(
        label,
        &CALLER
            .replace("LABEL", label)
            .replace("SECRET", &secret_name),
    );
    let child = runner.daemon(&[]);
    let mut after = None;
    for _ in 0..600 {
        after = gitea
            .jobs_of(runner.id)
            .into_iter()
            .find(|j| j["name"] == "after" && j["status"] == "completed");
        if after.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    runner.stop(child);
    let after = after.unwrap_or_else(|| {
        panic!(
            "no `after` job finished; daemon log:\n{}",
            runner.daemon_log()
        )
    });
    let jobs = run_jobs(gitea, after["run_id"].as_i64().unwrap_or_default())
        .into_iter()
        .map(|j| (j["name"].as_str().unwrap_or_default().to_owned(), j))
        .collect();
    CallRun { jobs, secret_value }
}

impl CallRun {
    fn job(&self, name: &str) -> &Value {
        self.jobs
            .get(name)
            .unwrap_or_else(|| panic!("no job {name} in {:?}", self.jobs.keys()))
    }

    /// Job `name` ran the called workflow on `runner` with the call's inputs and secret (masked)
    /// and `event_name` `event`, and `after` got the call's output.
    fn assert_called(&self, gitea: &Gitea, runner: &Runner, name: &str, event: &str) {
        let job = self.job(name);
        assert_eq!(job["runner_id"].as_i64(), Some(runner.id), "{job}");
        assert_eq!(job["conclusion"], "success", "{job}");
        let log = gitea.log_text(job);
        let wanted = format!("called for gitea loud=true times=2 token=*** event={event}");
        assert!(log.contains(&wanted), "{log}");
        assert!(!log.contains(&self.secret_value), "secret leaked");
        let after_log = gitea.log_text(self.job("after"));
        assert!(
            after_log.contains("after got hi-gitea-loud-2 (success)"),
            "{after_log}"
        );
    }
}

/// Gitea 1.27 expands the call itself: the call job never reaches a runner, the called job
/// `say` arrives as a task of its own whose context carries the call's inputs (typed, the
/// default filled in) with `event_name` `workflow_call`, and whose secrets are only the ones
/// the call passes; Gitea computes the call's outputs from the task's outputs.
#[test]
fn next_gitea_expands_a_reusable_workflow_and_the_runner_runs_the_called_job() {
    let test = "next_gitea_expands_a_reusable_workflow_and_the_runner_runs_the_called_job";
    let Some(gitea) = next(test) else {
        return;
    };
    let runner = register(gitea, "nx-call");
    let run = run_reusable(gitea, &runner);
    let call = run.job("call");
    assert_eq!(call["conclusion"], "success", "{call}");
    assert!(
        call["runner_id"].as_i64().unwrap_or(0) == 0,
        "the call job ran on no runner: {call}"
    );
    run.assert_called(gitea, &runner, "say", "workflow_call");
    let log = runner.daemon_log();
    assert_eq!(
        log.matches("task received").count(),
        2,
        "two tasks (say, after), no call job: {log}"
    );
}

/// The same workflow on Gitea 1.26, which hands the call job itself to a runner (`runs-on`
/// empty, no steps): runnel expands the call in-process, with the same inputs, secret and
/// output (`github.event_name` stays the caller's event there, as on GitHub).
#[test]
fn gitea_1_26_hands_the_call_job_to_the_runner_which_expands_it() {
    let test = "gitea_1_26_hands_the_call_job_to_the_runner_which_expands_it";
    static GITEA_1_26: OnceLock<Result<Gitea, String>> = OnceLock::new();
    let Some(gitea) = slow_instance(&GITEA_1_26, test, || obtain_named("reusable-it")) else {
        return;
    };
    let runner = register(gitea, "call26");
    let run = run_reusable(gitea, &runner);
    assert!(!run.jobs.contains_key("say"), "{:?}", run.jobs.keys());
    run.assert_called(gitea, &runner, "call", "workflow_dispatch");
}
