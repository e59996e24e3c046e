//! The expression contexts known before any job runs: `github` (from the event), `inputs`
//! (typed, defaults applied from the workflow), `vars`, and `needs` built from job results.
//!
//! Owns: building those objects and the [`JobResult`]/[`NeedOutcome`] vocabulary the engine
//! uses to report results back. Must not: read the environment or the file system; the
//! engine extends `github` with runner paths and tokens itself.

use std::fmt;

use indexmap::IndexMap;
use runnel_expr::{Object, Value};
use runnel_workflow::{InputType, Workflow};

use crate::event::{Event, RefKind};

/// A finished (or skipped) job's result as `needs.<id>.result` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    Success,
    Failure,
    Cancelled,
    Skipped,
}

impl JobResult {
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Success => "success",
            JobResult::Failure => "failure",
            JobResult::Cancelled => "cancelled",
            JobResult::Skipped => "skipped",
        }
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One direct dependency as a dependant sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedOutcome {
    pub job_id: String,
    pub result: JobResult,
    /// `needs.<id>.outputs`, in the order the job declared them.
    pub outputs: Vec<(String, String)>,
}

/// What the engine knows about a job's dependencies when it decides whether to start it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeedsState {
    /// Direct `needs`, in the order the job lists them.
    pub needs: Vec<NeedOutcome>,
    /// Some job this one depends on, directly or transitively, failed (`failure()`).
    pub any_ancestor_failed: bool,
    /// The run was cancelled (`cancelled()`).
    pub cancelled: bool,
}

/// `github` as far as the event tells: event name and payload, refs, sha, repository, actor.
/// `workflow` is the workflow's name, or its file when it has none.
pub fn github_context(workflow: &Workflow, event: &Event) -> Object {
    let mut github = Object::new();
    let text = |s: &str| Value::String(s.to_owned());
    github.insert("event_name", text(&event.name));
    github.insert(
        "event",
        Value::Object(event_payload(workflow, event).into()),
    );
    github.insert("ref", text(&event.git_ref));
    github.insert("ref_name", text(event.ref_name()));
    let ref_type = match event.ref_kind() {
        RefKind::Tag => "tag",
        RefKind::Branch => "branch",
        // GitHub reports pull request merge refs as branches.
        RefKind::Other if event.git_ref.is_empty() => "",
        RefKind::Other => "branch",
    };
    github.insert("ref_type", text(ref_type));
    github.insert("ref_protected", Value::Bool(false));
    github.insert("sha", text(&event.sha));
    github.insert("repository", text(&event.repository));
    let owner = event.repository.split('/').next().unwrap_or_default();
    github.insert("repository_owner", text(owner));
    github.insert("actor", text(&event.actor));
    github.insert("triggering_actor", text(&event.actor));
    github.insert(
        "base_ref",
        text(event.base_ref.as_deref().unwrap_or_default()),
    );
    github.insert(
        "head_ref",
        text(event.head_ref.as_deref().unwrap_or_default()),
    );
    let workflow_name = workflow
        .name
        .as_ref()
        .map_or(workflow.file.as_str(), |n| n.value.as_str());
    github.insert("workflow", text(workflow_name));
    github.insert("run_id", text("1"));
    github.insert("run_number", text("1"));
    github.insert("run_attempt", text("1"));
    github
}

/// The payload, completed with what the event's own fields say when the caller left it out
/// (`action`, and `inputs` of a dispatch as strings, as GitHub's payload has them).
fn event_payload(workflow: &Workflow, event: &Event) -> Object {
    let mut payload = event.payload.clone();
    if let Some(action) = &event.action
        && payload.get("action").is_none()
    {
        payload.insert("action", Value::String(action.clone()));
    }
    if event.name == "workflow_dispatch" && payload.get("inputs").is_none() {
        let mut inputs = Object::new();
        for (id, value) in resolved_inputs(workflow, event) {
            inputs.insert(id, Value::String(value.to_display_string()));
        }
        payload.insert("inputs", Value::Object(inputs.into()));
    }
    payload
}

/// `inputs`: typed values for `workflow_dispatch`/`workflow_call`, empty for other events.
pub fn inputs_context(workflow: &Workflow, event: &Event) -> Object {
    let mut inputs = Object::new();
    for (id, value) in resolved_inputs(workflow, event) {
        inputs.insert(id, value);
    }
    inputs
}

/// Declared inputs with the given value or the default, converted to the declared type;
/// then any given input the workflow does not declare, as a string.
fn resolved_inputs(workflow: &Workflow, event: &Event) -> IndexMap<String, Value> {
    let mut resolved = IndexMap::new();
    let given = |id: &str| {
        event
            .inputs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(id))
            .map(|(_, v)| v.as_str())
    };
    match event.name.as_str() {
        "workflow_dispatch" => {
            if let Some(dispatch) = &workflow.on.workflow_dispatch {
                for (id, input) in &dispatch.inputs {
                    let default = input.default.as_ref().map(|d| &d.value);
                    resolved.insert(
                        id.clone(),
                        typed_input(input.input_type, given(id), default),
                    );
                }
            }
        }
        "workflow_call" => {
            if let Some(call) = &workflow.on.workflow_call {
                for (id, input) in &call.inputs {
                    // Expression defaults (over github/inputs/vars) are left to the engine;
                    // a literal default keeps its YAML type.
                    let literal = input.default_value.as_ref().map(|d| &d.value);
                    let raw = input.default.as_ref().map(|t| Value::String(t.raw.clone()));
                    let default = literal.or(raw.as_ref());
                    resolved.insert(
                        id.clone(),
                        typed_input(input.input_type, given(id), default),
                    );
                }
            }
        }
        _ => return resolved,
    }
    for (id, value) in &event.inputs {
        if !resolved.keys().any(|k| k.eq_ignore_ascii_case(id)) {
            resolved.insert(id.clone(), Value::String(value.clone()));
        }
    }
    resolved
}

/// The value of one input: given text converted to the declared type, else the default,
/// else the type's empty value (`''`, `false`, `0`).
fn typed_input(input_type: InputType, given: Option<&str>, default: Option<&Value>) -> Value {
    match (given, default) {
        (Some(text), _) => from_text(input_type, text),
        (None, Some(Value::String(text))) => from_text(input_type, text),
        (None, Some(value)) => match input_type {
            InputType::Boolean | InputType::Number => value.clone(),
            _ => Value::String(value.to_display_string()),
        },
        (None, None) => match input_type {
            InputType::Boolean => Value::Bool(false),
            // GitHub's value for an unset number input is not documented; 0 is what it
            // appears to give (semantics.md 2.3).
            InputType::Number => Value::Number(0.0),
            _ => Value::String(String::new()),
        },
    }
}

fn from_text(input_type: InputType, text: &str) -> Value {
    match input_type {
        InputType::Boolean => Value::Bool(text.trim().eq_ignore_ascii_case("true")),
        InputType::Number => match text.trim().parse::<f64>() {
            Ok(number) => Value::Number(number),
            // Not a number: keep the text rather than inventing a value.
            Err(_) => Value::String(text.to_owned()),
        },
        _ => Value::String(text.to_owned()),
    }
}

/// `vars` from the event's configuration variables.
pub fn vars_context(event: &Event) -> Object {
    let mut vars = Object::new();
    for (name, value) in &event.vars {
        vars.insert(name.as_str(), Value::String(value.clone()));
    }
    vars
}

/// `needs`: each direct dependency's `result` and `outputs`.
pub fn needs_context(needs: &[NeedOutcome]) -> Object {
    let mut context = Object::new();
    for need in needs {
        let mut outputs = Object::new();
        for (name, value) in &need.outputs {
            outputs.insert(name.as_str(), Value::String(value.clone()));
        }
        let mut entry = Object::new();
        entry.insert("result", Value::String(need.result.as_str().to_owned()));
        entry.insert("outputs", Value::Object(outputs.into()));
        context.insert(need.job_id.as_str(), Value::Object(entry.into()));
    }
    context
}
