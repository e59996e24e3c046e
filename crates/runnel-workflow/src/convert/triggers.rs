//! `on:` in all its forms (a string, a list, a mapping) → [`Triggers`].
//!
//! Owns: event names, per-event filter keys, `schedule`, `workflow_dispatch` inputs and
//! `workflow_call` inputs/secrets/outputs, and the rule that a filter and its `-ignore` form
//! may not both be given.

use indexmap::IndexMap;
use runnel_yaml::{Node, NodeKind, ScalarValue};

use super::{Converter, Place};
use crate::model::{
    EventTrigger, InputType, PatternFilter, Spanned, Triggers, WorkflowCall, WorkflowCallInput,
    WorkflowCallOutput, WorkflowCallSecret, WorkflowDispatch, WorkflowDispatchInput,
};

/// Event names and the filter keys each accepts (an empty list: the event takes no
/// configuration, only null).
const EVENTS: &[(&str, &[&str])] = &[
    ("branch_protection_rule", &["types"]),
    ("check_run", &["types"]),
    ("check_suite", &["types"]),
    ("create", &[]),
    ("delete", &[]),
    ("deployment", &[]),
    ("deployment_status", &[]),
    ("discussion", &["types"]),
    ("discussion_comment", &["types"]),
    ("fork", &[]),
    ("gollum", &[]),
    ("image_version", &["types", "names", "versions"]),
    ("issue_comment", &["types"]),
    ("issues", &["types"]),
    ("label", &["types"]),
    ("merge_group", &["types", "branches", "branches-ignore"]),
    ("milestone", &["types"]),
    ("page_build", &[]),
    ("project", &["types"]),
    ("project_card", &["types"]),
    ("project_column", &["types"]),
    ("public", &[]),
    (
        "pull_request",
        &[
            "types",
            "branches",
            "branches-ignore",
            "paths",
            "paths-ignore",
        ],
    ),
    ("pull_request_comment", &["types"]),
    ("pull_request_review", &["types"]),
    ("pull_request_review_comment", &["types"]),
    (
        "pull_request_target",
        &[
            "types",
            "branches",
            "branches-ignore",
            "paths",
            "paths-ignore",
        ],
    ),
    (
        "push",
        &[
            "branches",
            "branches-ignore",
            "tags",
            "tags-ignore",
            "paths",
            "paths-ignore",
        ],
    ),
    ("registry_package", &["types"]),
    ("release", &["types"]),
    ("repository_dispatch", &["types"]),
    ("schedule", &[]),
    ("status", &[]),
    ("watch", &["types"]),
    ("workflow_call", &["inputs", "secrets", "outputs"]),
    ("workflow_dispatch", &["inputs"]),
    (
        "workflow_run",
        &["types", "workflows", "branches", "branches-ignore"],
    ),
];

fn event_names() -> Vec<&'static str> {
    EVENTS.iter().map(|(name, _)| *name).collect()
}

pub(super) fn convert(cx: &mut Converter<'_>, node: &Node) -> Option<Triggers> {
    let mut triggers = Triggers {
        events: IndexMap::new(),
        schedule: Vec::new(),
        workflow_dispatch: None,
        workflow_call: None,
        span: node.span,
    };
    match &node.kind {
        NodeKind::Scalar(_) | NodeKind::Sequence(_) => {
            for name in cx.string_list(node, "on")? {
                if let Some(event) = known_event(cx, &name) {
                    add_defaults(&mut triggers, event, &name);
                    triggers.events.insert(name.value.clone(), bare_event(name));
                }
            }
        }
        NodeKind::Mapping(_) => {
            for (name, key_node, value) in cx.mapping(node, "on")? {
                let name = Spanned {
                    value: name.to_owned(),
                    span: key_node.span,
                };
                let Some(keys) = known_event(cx, &name) else {
                    continue;
                };
                let trigger = event(cx, &mut triggers, name, keys, value);
                triggers.events.insert(trigger.name.value.clone(), trigger);
            }
        }
    }
    if triggers.events.is_empty()
        && matches!(node.kind, NodeKind::Sequence(_) | NodeKind::Mapping(_))
    {
        cx.error(node.span, "`on` names no events");
    }
    Some(triggers)
}

fn known_event(cx: &mut Converter<'_>, name: &Spanned<String>) -> Option<&'static [&'static str]> {
    match EVENTS.iter().find(|(known, _)| *known == name.value) {
        Some((_, keys)) => Some(keys),
        None => {
            let hint = match super::suggest::closest(&name.value, &event_names()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => "see the list of events that trigger workflows".to_owned(),
            };
            cx.error_hint(name.span, format!("unknown event `{}`", name.value), hint);
            None
        }
    }
}

fn bare_event(name: Spanned<String>) -> EventTrigger {
    EventTrigger {
        name,
        types: None,
        branches: None,
        tags: None,
        paths: None,
        workflows: None,
    }
}

/// `on: workflow_dispatch` without a mapping still declares the event.
fn add_defaults(triggers: &mut Triggers, _keys: &[&str], name: &Spanned<String>) {
    match name.value.as_str() {
        "workflow_dispatch" => {
            triggers.workflow_dispatch = Some(WorkflowDispatch {
                inputs: IndexMap::new(),
                span: name.span,
            });
        }
        "workflow_call" => {
            triggers.workflow_call = Some(WorkflowCall {
                inputs: IndexMap::new(),
                secrets: IndexMap::new(),
                outputs: IndexMap::new(),
                span: name.span,
            });
        }
        _ => {}
    }
}

fn event(
    cx: &mut Converter<'_>,
    triggers: &mut Triggers,
    name: Spanned<String>,
    keys: &[&str],
    value: &Node,
) -> EventTrigger {
    add_defaults(triggers, keys, &name);
    let mut trigger = bare_event(name);
    let event_name = trigger.name.value.clone();
    match event_name.as_str() {
        "schedule" => {
            triggers.schedule = schedule(cx, value);
            return trigger;
        }
        "workflow_dispatch" if !value.is_null() => {
            triggers.workflow_dispatch = workflow_dispatch(cx, value);
            return trigger;
        }
        "workflow_call" if !value.is_null() => {
            triggers.workflow_call = workflow_call(cx, value);
            return trigger;
        }
        _ => {}
    }
    if value.is_null() {
        return trigger;
    }
    if keys.is_empty() {
        cx.error(
            value.span,
            format!("the `{event_name}` event takes no configuration"),
        );
        return trigger;
    }
    let what = format!("the `{event_name}` event");
    let Some(entries) = cx.mapping(value, &event_name) else {
        return trigger;
    };
    let mut positive: IndexMap<&str, &Node> = IndexMap::new();
    for (key, key_node, value) in entries {
        if !keys.contains(&key) {
            cx.unknown_key(key_node, key, keys, &what);
            continue;
        }
        let list = cx.string_list(value, key);
        let base = key.trim_end_matches("-ignore");
        let ignore = base.len() != key.len();
        let filter = list.map(|patterns| PatternFilter {
            ignore,
            patterns,
            span: value.span,
        });
        if matches!(base, "branches" | "tags" | "paths")
            && let Some(other) = positive.insert(base, key_node)
        {
            let hint = format!(
                "`{}` at line {} is the other one; use `!pattern` inside `{base}` to exclude",
                other.scalar_text().unwrap_or(base),
                other.span.line
            );
            cx.error_hint(
                key_node.span,
                format!("`{base}` and `{base}-ignore` cannot both be used for one event"),
                hint,
            );
        }
        match base {
            "branches" => trigger.branches = filter,
            "tags" => trigger.tags = filter,
            "paths" => trigger.paths = filter,
            "types" => trigger.types = filter.map(|f| f.patterns),
            "workflows" => trigger.workflows = filter.map(|f| f.patterns),
            // `names`/`versions` of `image_version` are GitHub-only; accepted and ignored.
            _ => {}
        }
    }
    trigger
}

fn schedule(cx: &mut Converter<'_>, node: &Node) -> Vec<Spanned<String>> {
    let NodeKind::Sequence(items) = &node.kind else {
        cx.wrong_type(node, "schedule", "a list of `cron:` entries");
        return Vec::new();
    };
    let mut crons = Vec::new();
    for item in items {
        let mut cron = None;
        for (key, key_node, value) in cx.mapping(item, "schedule entry").unwrap_or_default() {
            match key {
                "cron" => cron = cx.plain_string(value, key),
                "timezone" => {
                    cx.scalar_string(value, key);
                }
                _ => cx.unknown_key(key_node, key, &["cron", "timezone"], "a `schedule` entry"),
            }
        }
        match cron {
            Some(cron) => {
                if !super::cron::is_valid(&cron.value) {
                    cx.error_hint(
                        cron.span,
                        super::cron::INVALID_CRON.to_owned(),
                        "fields: minute 0-59, hour 0-23, day 1-31, month 1-12 or JAN-DEC, \
                         weekday 0-6 or SUN-SAT; each `*`, a value, a range `a-b`, a step \
                         `x/n` or a list"
                            .to_owned(),
                    );
                }
                crons.push(cron);
            }
            None if matches!(item.kind, NodeKind::Mapping(_)) => {
                cx.error(item.span, "a `schedule` entry is missing `cron`");
            }
            None => {}
        }
    }
    crons
}

fn input_type(cx: &mut Converter<'_>, node: &Node, allowed: &[&str]) -> Option<InputType> {
    let text = node.scalar_text().unwrap_or_default();
    let input_type = match text {
        "string" => InputType::String,
        "boolean" => InputType::Boolean,
        "number" => InputType::Number,
        "choice" => InputType::Choice,
        "environment" => InputType::Environment,
        _ => InputType::String,
    };
    if !allowed.contains(&text) {
        cx.error_hint(
            node.span,
            format!("invalid input type `{text}`"),
            format!("use one of: {}", allowed.join(", ")),
        );
        return None;
    }
    Some(input_type)
}

fn literal_default(cx: &mut Converter<'_>, node: &Node) -> Option<Spanned<runnel_expr::Value>> {
    if node.as_scalar().is_none() {
        cx.wrong_type(node, "default", "a string, a boolean or a number");
        return None;
    }
    Some(Spanned {
        value: Converter::value(node),
        span: node.span,
    })
}

fn workflow_dispatch(cx: &mut Converter<'_>, node: &Node) -> Option<WorkflowDispatch> {
    let mut dispatch = WorkflowDispatch {
        inputs: IndexMap::new(),
        span: node.span,
    };
    for (key, _, value) in cx.mapping(node, "workflow_dispatch")? {
        if key != "inputs" {
            // GitHub ignores other keys here; say so rather than fail.
            cx.warning(value.span, format!("`workflow_dispatch.{key}` is ignored"));
            continue;
        }
        if value.is_null() {
            continue;
        }
        for (id, id_node, input) in cx.mapping(value, "inputs").unwrap_or_default() {
            let mut result = WorkflowDispatchInput {
                id: Spanned {
                    value: id.to_owned(),
                    span: id_node.span,
                },
                description: None,
                input_type: InputType::String,
                required: false,
                default: None,
                options: Vec::new(),
            };
            let entries = if input.is_null() {
                Vec::new()
            } else {
                cx.mapping(input, "input").unwrap_or_default()
            };
            for (key, key_node, value) in entries {
                match key {
                    "description" => result.description = cx.scalar_string(value, key),
                    "type" => {
                        let allowed = ["string", "boolean", "number", "choice", "environment"];
                        if let Some(t) = input_type(cx, value, &allowed) {
                            result.input_type = t;
                        }
                    }
                    "required" => result.required = cx.boolean(value, key).unwrap_or(false),
                    "default" => result.default = literal_default(cx, value),
                    "options" => result.options = cx.string_list(value, key).unwrap_or_default(),
                    _ => cx.unknown_key(
                        key_node,
                        key,
                        &["description", "type", "required", "default", "options"],
                        "a `workflow_dispatch` input",
                    ),
                }
            }
            if result.input_type == InputType::Choice && result.options.is_empty() {
                cx.error(input.span, format!("choice input `{id}` has no `options`"));
            }
            dispatch.inputs.insert(id.to_owned(), result);
        }
    }
    Some(dispatch)
}

fn workflow_call(cx: &mut Converter<'_>, node: &Node) -> Option<WorkflowCall> {
    let mut call = WorkflowCall {
        inputs: IndexMap::new(),
        secrets: IndexMap::new(),
        outputs: IndexMap::new(),
        span: node.span,
    };
    for (key, key_node, value) in cx.mapping(node, "workflow_call")? {
        if value.is_null() && ["inputs", "secrets", "outputs"].contains(&key) {
            continue;
        }
        match key {
            "inputs" => {
                for (id, id_node, input) in cx.mapping(value, key).unwrap_or_default() {
                    if let Some(input) = call_input(cx, id, id_node, input) {
                        call.inputs.insert(id.to_owned(), input);
                    }
                }
            }
            "secrets" => {
                for (id, id_node, secret) in cx.mapping(value, key).unwrap_or_default() {
                    let mut result = WorkflowCallSecret {
                        id: Spanned {
                            value: id.to_owned(),
                            span: id_node.span,
                        },
                        description: None,
                        required: false,
                    };
                    if !secret.is_null() {
                        for (key, key_node, value) in
                            cx.mapping(secret, "secret").unwrap_or_default()
                        {
                            match key {
                                "description" => result.description = cx.scalar_string(value, key),
                                "required" => {
                                    result.required = cx.boolean(value, key).unwrap_or(false)
                                }
                                _ => cx.unknown_key(
                                    key_node,
                                    key,
                                    &["description", "required"],
                                    "a `workflow_call` secret",
                                ),
                            }
                        }
                    }
                    call.secrets.insert(id.to_owned(), result);
                }
            }
            "outputs" => {
                for (id, id_node, output) in cx.mapping(value, key).unwrap_or_default() {
                    let mut description = None;
                    let mut output_value = None;
                    for (key, key_node, value) in cx.mapping(output, "output").unwrap_or_default() {
                        match key {
                            "description" => description = cx.scalar_string(value, key),
                            "value" => output_value = cx.template(value, key, Place::CallOutput),
                            _ => cx.unknown_key(
                                key_node,
                                key,
                                &["description", "value"],
                                "a `workflow_call` output",
                            ),
                        }
                    }
                    match output_value {
                        Some(value) => {
                            call.outputs.insert(
                                id.to_owned(),
                                WorkflowCallOutput {
                                    id: Spanned {
                                        value: id.to_owned(),
                                        span: id_node.span,
                                    },
                                    description,
                                    value,
                                },
                            );
                        }
                        None if matches!(output.kind, NodeKind::Mapping(_)) => {
                            cx.error(output.span, format!("output `{id}` is missing `value`"));
                        }
                        None => {}
                    }
                }
            }
            _ => cx.unknown_key(
                key_node,
                key,
                &["inputs", "secrets", "outputs"],
                "`workflow_call`",
            ),
        }
    }
    Some(call)
}

fn call_input(
    cx: &mut Converter<'_>,
    id: &str,
    id_node: &Node,
    node: &Node,
) -> Option<WorkflowCallInput> {
    let mut result = WorkflowCallInput {
        id: Spanned {
            value: id.to_owned(),
            span: id_node.span,
        },
        description: None,
        input_type: InputType::String,
        required: false,
        default: None,
        default_value: None,
    };
    let mut saw_type = false;
    for (key, key_node, value) in cx.mapping(node, "input")? {
        match key {
            "description" => result.description = cx.scalar_string(value, key),
            "type" => {
                saw_type = true;
                if let Some(t) = input_type(cx, value, &["string", "boolean", "number"]) {
                    result.input_type = t;
                }
            }
            "required" => result.required = cx.boolean(value, key).unwrap_or(false),
            "default" => {
                result.default_value = literal_default(cx, value);
                if value
                    .as_scalar()
                    .is_some_and(|s| s.value == ScalarValue::String)
                {
                    result.default = cx.template(value, key, Place::WorkflowLevel);
                }
            }
            _ => cx.unknown_key(
                key_node,
                key,
                &["description", "type", "required", "default"],
                "a `workflow_call` input",
            ),
        }
    }
    if !saw_type {
        cx.error_hint(
            node.span,
            format!("`workflow_call` input `{id}` is missing `type`"),
            "add `type: string`, `type: boolean` or `type: number`".to_owned(),
        );
    }
    Some(result)
}
