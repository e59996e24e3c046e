//! Step summaries reach the job log: kept while the job runs, then one headed block of rows
//! at the end, before the closing `Job <result>` row (Gitea 1.26 has no summary API).

use super::*;
use runnel_engine::{JobRef, StepRef};

fn sink_with_steps(steps: usize) -> ReporterSink {
    let state = ReportState {
        task_id: 7,
        rows: VecDeque::new(),
        acked: 0,
        started_at: None,
        stopped_at: None,
        steps: (0..steps)
            .map(|id| StepState {
                id: id as i64,
                ..StepState::default()
            })
            .collect(),
        current_step: None,
        state_dirty: false,
        outputs: BTreeMap::new(),
        result: None,
        spool: None,
        metrics: Arc::new(Metrics::default()),
        summaries: Vec::new(),
        copy: None,
    };
    ReporterSink {
        shared: Arc::new(Shared {
            state: Mutex::new(state),
            wake: Notify::new(),
        }),
    }
}

fn record(step: usize, name: &str, event: LogEvent) -> LogRecord {
    LogRecord {
        job: JobRef {
            job_id: "build".to_owned(),
            name: "build".to_owned(),
            key: "build".to_owned(),
        },
        step: Some(StepRef {
            index: step,
            name: name.to_owned(),
        }),
        time: SystemTime::now(),
        event,
    }
}

fn rows(sink: &ReporterSink) -> Vec<String> {
    sink.shared
        .lock()
        .rows
        .iter()
        .map(|row| row.content.clone())
        .collect()
}

#[test]
fn summaries_end_the_log_as_a_headed_block() {
    let sink = sink_with_steps(2);
    for (index, name, markdown) in [
        (0, "Run report", "## Results\n\n- all *good*\n"),
        (1, "Run more", "one more line"),
    ] {
        sink.record(record(index, name, LogEvent::StepStarted));
        sink.record(record(
            index,
            name,
            LogEvent::Line {
                stream: runnel_engine::Stream::Stdout,
                text: format!("output of {name}"),
            },
        ));
        sink.record(record(
            index,
            name,
            LogEvent::StepSummary {
                markdown: markdown.to_owned(),
            },
        ));
        sink.record(record(
            index,
            name,
            LogEvent::StepFinished {
                outcome: StepStatus::Success,
                conclusion: StepStatus::Success,
                duration: Duration::ZERO,
            },
        ));
    }
    // Nothing of the summaries is logged while the job runs.
    assert_eq!(rows(&sink), ["output of Run report", "output of Run more"]);
    let steps_before = sink.shared.lock().steps.clone();

    sink.shared.lock().close(JobResult::Success, Vec::new());
    assert_eq!(
        rows(&sink),
        [
            "output of Run report",
            "output of Run more",
            "==== Job summary ($GITHUB_STEP_SUMMARY) ====",
            "---- from step: Run report",
            "## Results",
            "",
            "- all *good*",
            "---- from step: Run more",
            "one more line",
            "==== end of job summary ====",
            "Job success",
        ]
    );
    // The block is outside every step's range.
    let steps_after = sink.shared.lock().steps.clone();
    for (before, after) in steps_before.iter().zip(&steps_after) {
        assert_eq!(
            (before.log_index, before.log_length),
            (after.log_index, after.log_length)
        );
    }
}

#[test]
fn a_job_without_summaries_closes_as_before() {
    let sink = sink_with_steps(1);
    sink.shared.lock().close(JobResult::Failure, Vec::new());
    assert_eq!(rows(&sink), ["Job failure"]);
}
