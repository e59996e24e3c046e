//! What a task says, turned into the engine's vocabulary: the `github` context Gitea sends
//! (a protobuf `Struct`) into an [`Event`], the task's `needs` into [`NeedsState`], and the
//! `Result` enum both ways.
//!
//! Owns: those conversions. Must not: run anything or talk to the server.

use std::collections::HashMap;

use prost_types::value::Kind;
use runnel_expr::{Object, Value};
use runnel_plan::{Event, JobResult, NeedOutcome, NeedsState};
use runnel_protocol::proto::runner;

/// A protobuf `Value` as an expression value (numbers are doubles on both sides).
pub(crate) fn value_from_proto(value: &prost_types::Value) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => Value::Number(*n),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(list)) => Value::Array(std::sync::Arc::new(
            list.values.iter().map(value_from_proto).collect(),
        )),
        Some(Kind::StructValue(s)) => Value::Object(object_from_struct(s).into()),
    }
}

/// A protobuf `Struct` as an object; keys in name order (a protobuf map has no order).
pub(crate) fn object_from_struct(s: &prost_types::Struct) -> Object {
    let mut keys: Vec<&String> = s.fields.keys().collect();
    keys.sort();
    let mut object = Object::new();
    for key in keys {
        if let Some(value) = s.fields.get(key) {
            object.insert(key.as_str(), value_from_proto(value));
        }
    }
    object
}

/// The task's `github` context, as Gitea sent it.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskContext {
    fields: Object,
}

impl TaskContext {
    pub(crate) fn new(context: Option<&prost_types::Struct>) -> TaskContext {
        TaskContext {
            fields: context.map(object_from_struct).unwrap_or_default(),
        }
    }

    /// A string field; empty when absent or not a string.
    pub(crate) fn text(&self, key: &str) -> String {
        match self.fields.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(_) | Value::Bool(_)) => self
                .fields
                .get(key)
                .map(Value::to_display_string)
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// The `github` fields Gitea knows and a local plan cannot: the run's id, number and
    /// attempt, the workflow (Gitea's value: the file name), the ref's details. Empty
    /// placeholders Gitea sends are left out, so the engine's own values stay.
    pub(crate) fn github_overrides(&self) -> Vec<(String, Value)> {
        const KEYS: &[&str] = &[
            "run_id",
            "run_number",
            "run_attempt",
            "workflow",
            "repository",
            "repository_owner",
            "actor",
            "triggering_actor",
            "event_name",
            "sha",
            "ref",
            "ref_name",
            "ref_type",
            "ref_protected",
            "base_ref",
            "head_ref",
            "retention_days",
        ];
        KEYS.iter()
            .filter_map(|key| match self.fields.get(key) {
                Some(Value::String(s)) if s.is_empty() => None,
                Some(value @ (Value::String(_) | Value::Bool(_) | Value::Number(_))) => {
                    let value = match value {
                        // Numbers as Gitea's strings would print them.
                        Value::Number(_) => Value::String(value.to_display_string()),
                        other => other.clone(),
                    };
                    Some(((*key).to_owned(), value))
                }
                _ => None,
            })
            .collect()
    }

    /// The event the task's run was made for: name, ref, sha, payload, actor, repository and
    /// the task's variables.
    pub(crate) fn event(&self, vars: &HashMap<String, String>) -> Event {
        let mut event = Event::new(&self.text("event_name"));
        event.git_ref = self.text("ref");
        let sha = self.text("sha");
        if !sha.is_empty() {
            event.sha = sha;
        }
        if let Some(Value::Object(payload)) = self.fields.get("event") {
            event.payload = (**payload).clone();
        }
        if let Some(Value::String(action)) = event.payload.get("action") {
            event.action = Some(action.clone());
        }
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        event.base_ref = non_empty(self.text("base_ref"));
        event.head_ref = non_empty(self.text("head_ref"));
        if let Some(Value::Object(inputs)) = event.payload.get("inputs") {
            event.inputs = inputs
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_display_string()))
                .collect();
        }
        let repository = self.text("repository");
        if !repository.is_empty() {
            event.repository = repository;
        }
        let actor = self.text("actor");
        if !actor.is_empty() {
            event.actor = actor;
        }
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        event.vars = names
            .into_iter()
            .filter_map(|name| vars.get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        event
    }
}

/// The task's `needs` (job id → outputs and result) in the order the job lists them.
pub(crate) fn needs_state(
    listed: &[String],
    needs: &HashMap<String, runner::TaskNeed>,
) -> NeedsState {
    let mut state = NeedsState::default();
    let mut ids: Vec<&String> = listed.iter().collect();
    // Needs Gitea sent that the payload does not list (it should not happen) still count.
    let mut extra: Vec<&String> = needs
        .keys()
        .filter(|id| !listed.iter().any(|l| l.eq_ignore_ascii_case(id)))
        .collect();
    extra.sort();
    ids.extend(extra);
    for id in ids {
        let found = needs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(id))
            .map(|(_, need)| need);
        let (result, outputs) = match found {
            Some(need) => {
                let mut outputs: Vec<(String, String)> = need
                    .outputs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                outputs.sort();
                (job_result_from_proto(need.result), outputs)
            }
            None => (JobResult::Skipped, Vec::new()),
        };
        state.any_ancestor_failed |= result == JobResult::Failure;
        state.needs.push(NeedOutcome {
            job_id: id.clone(),
            result,
            outputs,
        });
    }
    state
}

fn job_result_from_proto(result: i32) -> JobResult {
    match runner::Result::try_from(result) {
        Ok(runner::Result::Success) => JobResult::Success,
        Ok(runner::Result::Failure) => JobResult::Failure,
        Ok(runner::Result::Cancelled) => JobResult::Cancelled,
        _ => JobResult::Skipped,
    }
}

pub(crate) fn result_to_proto(result: JobResult) -> runner::Result {
    match result {
        JobResult::Success => runner::Result::Success,
        JobResult::Failure => runner::Result::Failure,
        JobResult::Cancelled => runner::Result::Cancelled,
        JobResult::Skipped => runner::Result::Skipped,
    }
}
