//! A whole task: a pushed workflow is fetched, its log and state reported, and the result read
//! back through Gitea's REST API.

use std::time::{Duration, SystemTime};

use runnel_protocol::Client;
use runnel_protocol::proto::runner::{
    self, LogRow, StepState, TaskState, UpdateLogRequest, UpdateTaskRequest,
};
use serde_json::json;

use crate::gitea::{Gitea, Instance, gitea, unique};
use crate::{TRANSPORTS, chain, registered};

#[tokio::test]
async fn a_pushed_workflow_runs_through_fetch_log_and_state() {
    let Some(gitea) = gitea(
        "a_pushed_workflow_runs_through_fetch_log_and_state",
        Instance::Http,
    ) else {
        return;
    };
    // One transport after the other: both push to the same branch.
    for transport in TRANSPORTS {
        let label = unique("task");
        let (client, runner) = registered(gitea, transport, std::slice::from_ref(&label)).await;
        push_workflow(gitea, &label);
        let task = wait_for_task(&client, &label).await;

        // What Gitea hands out.
        let payload = String::from_utf8_lossy(task.workflow_payload.as_deref().unwrap_or_default())
            .into_owned();
        assert!(
            payload.contains(&label),
            "{transport:?}: payload lacks runs-on label: {payload}"
        );
        let context = task.context.as_ref().map(|c| &c.fields);
        let field = |key: &str| -> String {
            match context
                .and_then(|fields| fields.get(key))
                .and_then(|v| v.kind.as_ref())
            {
                Some(prost_types::value::Kind::StringValue(s)) => s.clone(),
                other => panic!("{transport:?}: context.{key} is {other:?}"),
            }
        };
        assert_eq!(field("repository"), gitea.repo);
        assert_eq!(field("event_name"), "push");
        assert!(!field("token").is_empty());
        assert!(
            task.secrets.contains_key("GITEA_TOKEN") && task.secrets.contains_key("GITHUB_TOKEN")
        );

        // Log rows: a first batch, an overlapping resend (trimmed by the server), and a batch
        // past the end (ignored: the answer says where to resume).
        let ack = log(&client, task.id, 0, &["set up", "one", "two"], false).await;
        assert_eq!(ack, 3, "{transport:?}");
        let ack = log(&client, task.id, 2, &["two", "done"], false).await;
        assert_eq!(ack, 4, "{transport:?}: overlap not trimmed");
        let ack = log(&client, task.id, 10, &["gap"], false).await;
        assert_eq!(ack, 4, "{transport:?}: a gap was accepted");

        // A heartbeat with step ranges and an output, then the final log row and result.
        let started = prost_types::Timestamp::from(SystemTime::now());
        let steps = vec![
            step(0, runner::Result::Success, 1, 1, &started),
            step(1, runner::Result::Success, 2, 2, &started),
        ];
        let state = TaskState {
            id: task.id,
            result: runner::Result::Unspecified as i32,
            started_at: Some(started),
            stopped_at: None,
            steps: steps.clone(),
        };
        let response = update(&client, state.clone(), &[("greeting", "hello")]).await;
        assert_eq!(
            response.state.as_ref().map(|s| s.result),
            Some(runner::Result::Unspecified as i32)
        );
        assert_eq!(response.sent_outputs, ["greeting"], "{transport:?}");

        let ack = log(&client, task.id, 4, &["bye"], true).await;
        assert_eq!(ack, 5, "{transport:?}");
        let finished = TaskState {
            result: runner::Result::Success as i32,
            stopped_at: Some(prost_types::Timestamp::from(SystemTime::now())),
            ..state
        };
        let response = update(&client, finished, &[]).await;
        assert_eq!(
            response.state.as_ref().map(|s| s.result),
            Some(runner::Result::Success as i32)
        );

        // Gitea's view of the job: completed, successful, with our five rows in order.
        let job = find_job(gitea, runner.id);
        assert_eq!(job["status"], "completed", "{transport:?}: {job}");
        assert_eq!(job["conclusion"], "success", "{transport:?}: {job}");
        let job_id = job["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("job without id: {job}"));
        let logs = gitea
            .api_text(
                "GET",
                &format!("/repos/{}/actions/jobs/{job_id}/logs", gitea.repo),
                None,
            )
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        let contents: Vec<&str> = logs
            .lines()
            .map(|line| {
                line.split_once(' ')
                    .map_or(line, |(_time, content)| content)
            })
            .collect();
        assert_eq!(
            contents,
            ["set up", "one", "two", "done", "bye"],
            "{transport:?}: {logs}"
        );
    }
}

fn push_workflow(gitea: &Gitea, label: &str) {
    // `paths` keeps later pushes (other tests' workflows) from starting this one again.
    let workflow = format!(
        "name: {label}\non:\n  push:\n    paths: ['.gitea/workflows/{label}.yml']\njobs:\n  hello:\n    runs-on: {label}\n    steps:\n      - run: echo one\n      - run: echo two\n"
    );
    let body = json!({
        "content": base64(workflow.as_bytes()),
        "message": format!("add {label}"),
        "branch": "main",
    });
    let path = format!(
        "/repos/{}/contents/.gitea/workflows/{label}.yml",
        gitea.repo
    );
    if let Err(e) = gitea.api("POST", &path, Some(&body)) {
        panic!("push {label}: {e}");
    }
}

/// Polls until Gitea assigns the job (the push is processed asynchronously). The deadline only
/// bounds a failing test; nothing asserts how long it took.
async fn wait_for_task(client: &Client, label: &str) -> runner::Task {
    let mut tasks_version = 0;
    for _ in 0..300 {
        match client.fetch_task(tasks_version).await {
            Ok(response) => {
                if let Some(task) = response.task {
                    return task;
                }
                tasks_version = response.tasks_version;
            }
            Err(e) => panic!("fetch for {label}: {}", chain(&e)),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no task for {label} within 60 s");
}

async fn log(client: &Client, task_id: i64, index: i64, lines: &[&str], no_more: bool) -> i64 {
    let rows = lines
        .iter()
        .map(|line| LogRow {
            time: Some(prost_types::Timestamp::from(SystemTime::now())),
            content: (*line).to_owned(),
        })
        .collect();
    let request = UpdateLogRequest {
        task_id,
        index,
        rows,
        no_more,
    };
    match client.update_log(request).await {
        Ok(response) => response.ack_index,
        Err(e) => panic!("update_log at {index}: {}", chain(&e)),
    }
}

async fn update(
    client: &Client,
    state: TaskState,
    outputs: &[(&str, &str)],
) -> runner::UpdateTaskResponse {
    let outputs = outputs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match client
        .update_task(UpdateTaskRequest {
            state: Some(state),
            outputs,
        })
        .await
    {
        Ok(response) => response,
        Err(e) => panic!("update_task: {}", chain(&e)),
    }
}

fn step(
    id: i64,
    result: runner::Result,
    log_index: i64,
    log_length: i64,
    at: &prost_types::Timestamp,
) -> StepState {
    StepState {
        id,
        result: result as i32,
        started_at: Some(*at),
        stopped_at: Some(*at),
        log_index,
        log_length,
    }
}

/// The repository's job that `runner_id` ran, from the jobs list (GitHub's shape).
fn find_job(gitea: &Gitea, runner_id: i64) -> serde_json::Value {
    let jobs = gitea
        .api(
            "GET",
            &format!("/repos/{}/actions/jobs?limit=50", gitea.repo),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let found = jobs["jobs"].as_array().and_then(|jobs| {
        jobs.iter()
            .find(|job| job["runner_id"].as_i64() == Some(runner_id))
    });
    match found {
        Some(job) => job.clone(),
        None => panic!("no job run by runner {runner_id} in {jobs}"),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
