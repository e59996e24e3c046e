//! A fake Gitea for the daemon: answers Declare, hands out queued tasks on FetchTask, keeps
//! the log rows (by index, as Gitea does) and the latest task state each task reports, and
//! ends a task on request (a cancel in the UI: the next UpdateTask answer says so).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use prost_types::value::Kind;
use runnel_protocol::proto::runner;
use runnel_protocol::testing::{Answer, MockServer, Request, serve};

/// What the daemon told Gitea about one task.
#[derive(Debug, Default, Clone)]
pub(crate) struct Reported {
    /// The log, row by row.
    pub(crate) rows: Vec<String>,
    /// The last state's result (`Unspecified` while running).
    pub(crate) result: Option<runner::Result>,
    /// Each step's last result, in step order.
    pub(crate) steps: Vec<runner::Result>,
    /// Job outputs, as sent with the states.
    pub(crate) outputs: BTreeMap<String, String>,
    /// Whether the log was closed (`no_more`).
    pub(crate) log_closed: bool,
}

impl Reported {
    /// Whether some row contains `text`.
    pub(crate) fn logged(&self, text: &str) -> bool {
        self.rows.iter().any(|row| row.contains(text))
    }
}

#[derive(Default)]
struct State {
    tasks: VecDeque<runner::Task>,
    reported: BTreeMap<i64, Reported>,
    /// Tasks to end as cancelled once a row containing the text appears.
    cancel_after: BTreeMap<i64, String>,
    cancelled: BTreeSet<i64>,
    /// Context fields of the tasks queued after `set_context` (e.g. Gitea's OIDC offer).
    extra_context: Vec<(String, String)>,
    /// Calls that are not part of the runner protocol's daemon side.
    unexpected: Vec<String>,
    /// FetchTask calls answered.
    fetches: usize,
}

pub(crate) struct FakeGitea {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl FakeGitea {
    pub(crate) async fn start() -> FakeGitea {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = serve(move |request| {
            let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
            Some(state.answer(request))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        FakeGitea { server, state }
    }

    pub(crate) fn url(&self) -> String {
        self.server.url.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `key: value` to the context of the tasks queued from now on.
    pub(crate) fn set_context(&self, key: &str, value: &str) {
        self.lock()
            .extra_context
            .push((key.to_owned(), value.to_owned()));
    }

    /// Queues task `id` running `workflow` (one job), triggered by a push.
    pub(crate) fn add_task(&self, id: i64, workflow: &str) {
        let extra = self.lock().extra_context.clone();
        let text = |value: &str| prost_types::Value {
            kind: Some(Kind::StringValue(value.to_owned())),
        };
        let context = prost_types::Struct {
            fields: [
                ("workflow", "test.yml"),
                ("event_name", "push"),
                ("repository", "owner/repo"),
                ("ref", "refs/heads/main"),
                ("sha", "0123456789abcdef0123456789abcdef01234567"),
            ]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), text(value)))
            .chain(extra.iter().map(|(key, value)| (key.clone(), text(value))))
            .collect(),
        };
        self.lock().tasks.push_back(runner::Task {
            id,
            workflow_payload: Some(workflow.as_bytes().to_vec()),
            context: Some(context),
            ..runner::Task::default()
        });
    }

    /// Ends task `id` as cancelled once its log has a row containing `text`.
    pub(crate) fn cancel_after(&self, id: i64, text: &str) {
        self.lock().cancel_after.insert(id, text.to_owned());
    }

    /// How many FetchTask calls the daemon made.
    pub(crate) fn fetches(&self) -> usize {
        self.lock().fetches
    }

    /// What task `id` reported; fails on calls the fake did not expect.
    pub(crate) fn reported(&self, id: i64) -> Reported {
        let state = self.lock();
        assert!(state.unexpected.is_empty(), "{:?}", state.unexpected);
        state.reported.get(&id).cloned().unwrap_or_default()
    }
}

impl State {
    fn answer(&mut self, request: &Request) -> Answer {
        match request.rpc() {
            "Declare" => match request.decode::<runner::DeclareRequest>() {
                Ok(declare) => Answer::proto(&runner::DeclareResponse {
                    runner: Some(runner::Runner {
                        id: 7,
                        name: "fake".to_owned(),
                        labels: declare.labels,
                        ..runner::Runner::default()
                    }),
                }),
                Err(error) => self.bad(request, &error),
            },
            "FetchTask" => {
                self.fetches += 1;
                Answer::proto(&runner::FetchTaskResponse {
                    task: self.tasks.pop_front(),
                    tasks_version: 1,
                })
            }
            "UpdateLog" => match request.decode::<runner::UpdateLogRequest>() {
                Ok(update) => self.update_log(update),
                Err(error) => self.bad(request, &error),
            },
            "UpdateTask" => match request.decode::<runner::UpdateTaskRequest>() {
                Ok(update) => self.update_task(update),
                Err(error) => self.bad(request, &error),
            },
            _ => {
                self.unexpected.push(request.head.clone());
                Answer::json_error(404, "unimplemented", "not in the fake")
            }
        }
    }

    fn bad(&mut self, request: &Request, error: &prost::DecodeError) -> Answer {
        self.unexpected.push(format!("{}: {error}", request.head));
        Answer::json_error(400, "invalid_argument", "undecodable")
    }

    fn update_log(&mut self, update: runner::UpdateLogRequest) -> Answer {
        let reported = self.reported.entry(update.task_id).or_default();
        // Rows from `index` on replace what was there (a resend after a lost answer).
        let index = usize::try_from(update.index).unwrap_or_default();
        if index <= reported.rows.len() {
            reported.rows.truncate(index);
            reported
                .rows
                .extend(update.rows.into_iter().map(|row| row.content));
        }
        reported.log_closed |= update.no_more;
        if let Some(text) = self.cancel_after.get(&update.task_id)
            && reported.logged(text)
        {
            self.cancelled.insert(update.task_id);
        }
        let ack_index = i64::try_from(reported.rows.len()).unwrap_or(i64::MAX);
        Answer::proto(&runner::UpdateLogResponse { ack_index })
    }

    fn update_task(&mut self, update: runner::UpdateTaskRequest) -> Answer {
        let Some(state) = update.state else {
            self.unexpected
                .push("UpdateTask without a state".to_owned());
            return Answer::json_error(400, "invalid_argument", "no state");
        };
        let reported = self.reported.entry(state.id).or_default();
        reported.result = runner::Result::try_from(state.result).ok();
        reported.steps = state
            .steps
            .iter()
            .map(|step| runner::Result::try_from(step.result).unwrap_or_default())
            .collect();
        let sent_outputs: Vec<String> = update.outputs.keys().cloned().collect();
        reported.outputs.extend(update.outputs);
        let result = if self.cancelled.contains(&state.id) {
            runner::Result::Cancelled
        } else {
            runner::Result::try_from(state.result).unwrap_or_default()
        };
        Answer::proto(&runner::UpdateTaskResponse {
            state: Some(runner::TaskState {
                id: state.id,
                result: result as i32,
                ..runner::TaskState::default()
            }),
            sent_outputs,
        })
    }
}
