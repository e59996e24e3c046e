//! Step summaries through the real binary on the host backend: what steps write to
//! `$GITHUB_STEP_SUMMARY` is printed after their job as one headed block, masked, and
//! `--summary-dir` writes each job's summary to `<job key>.md`; `runnel daemon` appends them
//! to the job's log in a real Gitea 1.26, which has no summary API (with `RUN_SLOW_TESTS`;
//! Gitea 1.27's upload is tested in `daemon_gitea_next`).

use std::path::Path;

use crate::support::{run_expecting, runnel};

const WORKFLOW: &str = r###"on: push
jobs:
  report:
    runs-on: ubuntu-latest
    steps:
      - name: Write the report
        run: |
          echo "## Results" >> "$GITHUB_STEP_SUMMARY"
          echo "token ${{ secrets.TOKEN }} stays hidden" >> "$GITHUB_STEP_SUMMARY"
      - run: echo "no summary here"
      - name: Second part
        run: echo "- second *item*" >> "$GITHUB_STEP_SUMMARY"
  quiet:
    runs-on: ubuntu-latest
    steps:
      - run: echo quiet
"###;

fn run_in(dir: &Path, args: &[&str]) -> String {
    let mut command = runnel();
    command
        .current_dir(dir)
        .arg("run")
        .args(args)
        .env("NO_COLOR", "1");
    let output = run_expecting(command, None, &[0]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn step_summaries_are_printed_after_their_job_and_written_to_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let workflows = dir.path().join(".gitea/workflows");
    std::fs::create_dir_all(&workflows).expect("workflow dir");
    std::fs::write(workflows.join("ci.yml"), WORKFLOW).expect("workflow");
    let summaries = dir.path().join("out/summaries");
    let summary_dir = summaries.to_string_lossy().into_owned();
    let stdout = run_in(
        dir.path(),
        &["-s", "TOKEN=hunter2-secret", "--summary-dir", &summary_dir],
    );

    let block = "== Job summary: report ==\n\
                 -- from step: Write the report\n\
                 ## Results\n\
                 token *** stays hidden\n\
                 -- from step: Second part\n\
                 - second *item*\n\
                 == end of job summary: report ==\n";
    let at = stdout
        .find(block)
        .unwrap_or_else(|| panic!("no summary block in:\n{stdout}"));
    let finished = stdout
        .find("[report] ✓ job success")
        .unwrap_or_else(|| panic!("no job end in:\n{stdout}"));
    assert!(finished < at, "the block comes after the job:\n{stdout}");
    assert!(!stdout.contains("Job summary: quiet"), "{stdout}");
    assert!(!stdout.contains("hunter2-secret"), "{stdout}");

    let written = std::fs::read_to_string(summaries.join("report.md")).expect("report.md");
    assert_eq!(
        written,
        "## Results\ntoken *** stays hidden\n- second *item*\n"
    );
    let files: Vec<_> = std::fs::read_dir(&summaries)
        .expect("summary dir")
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(files, ["report.md"], "a job without a summary has no file");
}

/// The daemon ends the job's log in Gitea with the summaries as a headed block (Gitea 1.26 has
/// no summary API, and does not announce `job-summary`), after the steps' own rows and before
/// the closing `Job success`.
#[test]
fn the_daemon_appends_step_summaries_to_the_job_log() {
    use crate::daemon_gitea::{completed_jobs, gitea, register, workflow};
    let Some(gitea) = gitea("the_daemon_appends_step_summaries_to_the_job_log") else {
        return;
    };
    let runner = register(gitea, "summary");
    let label = &runner.label;
    let jobs = format!(
        "  report:\n    runs-on: {label}\n    steps:\n      - name: Write the report\n        run: |\n          echo step-output\n          printf '## From the daemon\\n\\n- item\\n' >> \"$GITHUB_STEP_SUMMARY\"\n"
    );
    gitea.push_workflow(label, &workflow(label, &jobs));
    let daemon = runner.daemon(&["--once"]);
    let status = runner.wait(daemon);
    assert!(status.success(), "{status}\n{}", runner.daemon_log());
    let job = completed_jobs(gitea, &runner, 1).remove(0);
    let lines = gitea
        .log_lines(job["id"].as_i64().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job["conclusion"], "success", "{job}\n{lines:#?}");
    let start = lines
        .iter()
        .position(|line| line == "==== Job summary ($GITHUB_STEP_SUMMARY) ====")
        .unwrap_or_else(|| panic!("no summary block in {lines:#?}"));
    assert_eq!(
        lines[start..],
        [
            "==== Job summary ($GITHUB_STEP_SUMMARY) ====",
            "---- from step: Write the report",
            "## From the daemon",
            "",
            "- item",
            "==== end of job summary ====",
            "Job success",
        ],
        "{lines:#?}"
    );
    let output = lines.iter().position(|line| line == "step-output");
    assert!(output.is_some_and(|at| at < start), "{lines:#?}");
    // 1.26 announces no `job-summary`: no upload is tried.
    let daemon_log = runner.daemon_log();
    assert!(
        daemon_log.contains("server_capabilities=[]"),
        "{daemon_log}"
    );
    assert!(!daemon_log.contains("job summary"), "{daemon_log}");
}
