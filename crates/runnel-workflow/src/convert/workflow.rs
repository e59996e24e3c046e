//! The workflow's top level: `name`, `run-name`, `on`, `env`, `defaults`, `concurrency`,
//! `permissions`, `jobs`, and the checks that span jobs (ids, `needs`).
//!
//! Owns: converting the root mapping and the small shapes shared with jobs (`defaults.run`,
//! `concurrency`, `permissions`).

use indexmap::IndexMap;
use runnel_yaml::{Node, NodeKind};

use super::{ComputedKey, Converter, Place, graph, job, triggers};
use crate::model::{
    Concurrency, PermissionLevel, Permissions, RunDefaults, Span, Spanned, TemplateMap, Triggers,
    Workflow,
};

const ROOT_KEYS: &[&str] = &[
    "name",
    "run-name",
    "description",
    "on",
    "env",
    "defaults",
    "concurrency",
    "permissions",
    "jobs",
];

const PERMISSION_SCOPES: &[&str] = &[
    "actions",
    "artifact-metadata",
    "attestations",
    "checks",
    "code-quality",
    "contents",
    "copilot-requests",
    "deployments",
    "discussions",
    "drives",
    "id-token",
    "issues",
    "models",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "security-events",
    "statuses",
    "vulnerability-alerts",
];

pub(super) fn convert(cx: &mut Converter<'_>, root: &Node) -> Option<Workflow> {
    let entries = cx.mapping(root, "the workflow")?;
    let mut workflow = Workflow {
        file: cx.file.to_owned(),
        name: None,
        run_name: None,
        on: Triggers {
            events: IndexMap::new(),
            schedule: Vec::new(),
            workflow_dispatch: None,
            workflow_call: None,
            span: root.span,
        },
        env: TemplateMap::default(),
        defaults: None,
        concurrency: None,
        permissions: None,
        jobs: IndexMap::new(),
        span: root.span,
    };
    let mut saw_on = false;
    let mut jobs_node = None;
    for (key, key_node, value) in entries {
        match key {
            "name" => {
                if let Some(name) = cx.scalar_string(value, key) {
                    if name.contains("${{") {
                        cx.error(
                            value.span,
                            "expressions are not allowed in the workflow `name`",
                        );
                    }
                    workflow.name = Some(Spanned {
                        value: name,
                        span: value.span,
                    });
                }
            }
            "run-name" => workflow.run_name = cx.template(value, key, Place::WorkflowLevel),
            "description" => {
                cx.scalar_string(value, key);
            }
            "on" => {
                saw_on = true;
                if let Some(on) = triggers::convert(cx, value) {
                    workflow.on = on;
                }
            }
            "env" => {
                workflow.env = cx.template_map(value, key, Place::WorkflowEnv, Place::WorkflowEnv);
            }
            "defaults" => workflow.defaults = defaults(cx, value, None),
            "concurrency" => workflow.concurrency = concurrency(cx, value, Place::WorkflowLevel),
            "permissions" => workflow.permissions = permissions(cx, value),
            "jobs" => jobs_node = Some(value),
            _ => cx.unknown_key(key_node, key, ROOT_KEYS, "the workflow"),
        }
    }
    let start = Span { line: 1, col: 1 };
    if !saw_on {
        cx.error_hint(
            root.span.min(start),
            "the workflow has no `on:` section",
            "add the events that start it, e.g. `on: push`".to_owned(),
        );
    }
    match jobs_node {
        None => cx.error(root.span.min(start), "the workflow has no `jobs:` section"),
        Some(node) => workflow.jobs = jobs(cx, node),
    }
    graph::check_needs(cx, &workflow.jobs, jobs_node);
    Some(workflow)
}

fn jobs(cx: &mut Converter<'_>, node: &Node) -> IndexMap<String, crate::model::Job> {
    let mut jobs: IndexMap<String, crate::model::Job> = IndexMap::new();
    let Some(entries) = cx.mapping(node, "jobs") else {
        return jobs;
    };
    for (id, key_node, value) in entries {
        check_id(cx, id, key_node.span, "job");
        if let Some(first) = jobs.values().find(|j| j.id.value.eq_ignore_ascii_case(id)) {
            // An exact repeat was already reported as a duplicate YAML key.
            if first.id.value == id {
                continue;
            }
            let hint = format!(
                "`{}` is first defined at line {}, column {} (job ids ignore case)",
                first.id.value, first.id.span.line, first.id.span.col
            );
            cx.error_hint(key_node.span, format!("duplicate job id `{id}`"), hint);
            continue;
        }
        let id = Spanned {
            value: id.to_owned(),
            span: key_node.span,
        };
        if let Some(job) = job::convert(cx, id, value) {
            jobs.insert(job.id.value.clone(), job);
        }
    }
    jobs
}

/// Job and step ids: `^[A-Za-z_][A-Za-z0-9_-]*$`, shorter than 100, not starting with `__`
/// (reserved for generated ids).
pub(super) fn check_id(cx: &mut Converter<'_>, id: &str, span: Span, what: &str) {
    let mut chars = id.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && id.len() < 100;
    if !valid {
        cx.error_hint(
            span,
            format!("invalid {what} id `{id}`"),
            "ids start with a letter or `_` and contain only letters, digits, `_` and `-` (at most 99 characters)".to_owned(),
        );
    } else if id.starts_with("__") {
        cx.error(
            span,
            format!("invalid {what} id `{id}`: ids starting with `__` are reserved"),
        );
    }
}

/// `defaults: {run: {shell, working-directory}}`. `place` is `None` at workflow level, where
/// GitHub allows no expressions.
pub(super) fn defaults(
    cx: &mut Converter<'_>,
    node: &Node,
    place: Option<Place>,
) -> Option<RunDefaults> {
    let mut result = None;
    for (key, key_node, value) in cx.mapping(node, "defaults")? {
        if key != "run" {
            cx.unknown_key(key_node, key, &["run"], "`defaults`");
            continue;
        }
        let mut run = RunDefaults {
            shell: None,
            working_directory: None,
            computed: None,
            span: value.span,
        };
        // GitHub's parser evaluates computed keys in a job's `defaults.run` (it has contexts
        // there), not in the workflow's.
        if let Some(place) = place
            && super::has_computed_key(value)
        {
            let map = cx.template_map(value, "defaults.run", place, place);
            for entry in &map.entries {
                if let Some(name) = entry.key.literal()
                    && !matches!(name, "shell" | "working-directory")
                {
                    let span = entry.key.span();
                    cx.error_hint(
                        span,
                        format!("unknown key `{name}` in `defaults.run`"),
                        "valid keys are: shell, working-directory".to_owned(),
                    );
                }
            }
            run.computed = Some(map);
            result = Some(run);
            continue;
        }
        for (key, key_node, value) in cx
            .mapping_with(value, "defaults.run", ComputedKey::Refused)
            .unwrap_or_default()
        {
            let template = match place {
                Some(place) => cx.non_empty_template(value, key, place),
                None => cx.plain_string(value, key).map(|s| super::TemplateString {
                    raw: s.value.clone(),
                    template: runnel_expr::Template::Literal(s.value),
                    span: s.span,
                }),
            };
            match key {
                "shell" => run.shell = template,
                "working-directory" => run.working_directory = template,
                _ => cx.unknown_key(
                    key_node,
                    key,
                    &["shell", "working-directory"],
                    "`defaults.run`",
                ),
            }
        }
        result = Some(run);
    }
    result
}

pub(super) fn concurrency(
    cx: &mut Converter<'_>,
    node: &Node,
    place: Place,
) -> Option<Concurrency> {
    if !matches!(node.kind, NodeKind::Mapping(_)) {
        let group = cx.non_empty_template(node, "concurrency", place)?;
        return Some(Concurrency {
            group,
            cancel_in_progress: None,
            span: node.span,
        });
    }
    let mut group = None;
    let mut cancel_in_progress = None;
    for (key, key_node, value) in cx.mapping(node, "concurrency")? {
        match key {
            "group" => group = cx.non_empty_template(value, key, place),
            "cancel-in-progress" => cancel_in_progress = cx.bool_or_expr(value, key, place),
            "queue" => cx.warning(value.span, "`concurrency.queue` is ignored by this runner"),
            _ => cx.unknown_key(
                key_node,
                key,
                &["group", "cancel-in-progress", "queue"],
                "`concurrency`",
            ),
        }
    }
    let Some(group) = group else {
        cx.error(node.span, "`concurrency` is missing `group`");
        return None;
    };
    Some(Concurrency {
        group,
        cancel_in_progress,
        span: node.span,
    })
}

pub(super) fn permissions(cx: &mut Converter<'_>, node: &Node) -> Option<Permissions> {
    if let Some(scalar) = node.as_scalar() {
        return match scalar.text.as_str() {
            "read-all" => Some(Permissions::ReadAll(node.span)),
            "write-all" => Some(Permissions::WriteAll(node.span)),
            other => {
                cx.error_hint(
                    node.span,
                    format!("invalid `permissions` value `{other}`"),
                    "use `read-all`, `write-all` or a mapping of scopes".to_owned(),
                );
                None
            }
        };
    }
    let mut scopes = IndexMap::new();
    for (scope, key_node, value) in cx.mapping(node, "permissions")? {
        if !PERMISSION_SCOPES.contains(&scope) {
            cx.unknown_key(key_node, scope, PERMISSION_SCOPES, "`permissions`");
            continue;
        }
        let level = match value.scalar_text() {
            Some("read") => PermissionLevel::Read,
            Some("write") => PermissionLevel::Write,
            Some("none") => PermissionLevel::None,
            _ => {
                cx.error_hint(
                    value.span,
                    format!("invalid permission level for `{scope}`"),
                    "use `read`, `write` or `none`".to_owned(),
                );
                continue;
            }
        };
        scopes.insert(
            scope.to_owned(),
            Spanned {
                value: level,
                span: value.span,
            },
        );
    }
    Some(Permissions::Scopes(scopes, node.span))
}
