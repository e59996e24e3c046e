//! The node tree of an `action.yml` → [`Action`].
//!
//! Owns: the keys of action metadata and which of them GitHub would reject. Unknown keys are
//! warnings, not errors: GitHub's schema for this file is loose (`author`, `branding` and
//! anything else are accepted and ignored).
//! Must not: stop at the first problem.

use indexmap::IndexMap;
use runnel_yaml::{Node, NodeKind, ScalarValue};

use super::{Action, ActionInput, ActionOutput, ActionRuns, CompositeRuns, DockerRuns, NodeRuns};
use crate::convert::{Converter, Place, StepRules, steps_with};
use crate::model::{Spanned, TemplateMap, TemplateString};

const ROOT_KEYS: &[&str] = &[
    "name",
    "description",
    "author",
    "branding",
    "inputs",
    "outputs",
    "runs",
];
const INPUT_KEYS: &[&str] = &["description", "required", "default", "deprecationMessage"];
const OUTPUT_KEYS: &[&str] = &["description", "value"];
const NODE_KEYS: &[&str] = &["using", "main", "pre", "pre-if", "post", "post-if"];
const DOCKER_KEYS: &[&str] = &[
    "using",
    "image",
    "env",
    "args",
    "entrypoint",
    "pre-entrypoint",
    "pre-if",
    "post-entrypoint",
    "post-if",
];
const COMPOSITE_KEYS: &[&str] = &["using", "steps"];
const NODE_VERSIONS: &[&str] = &["node12", "node16", "node20", "node24"];

const COMPOSITE_STEPS: StepRules = StepRules {
    keys: Place::ActionStep,
    step_if: Place::ActionStepIf,
    composite: true,
};

/// A key GitHub would ignore: a warning naming the keys that mean something here.
fn ignored_key(cx: &mut Converter<'_>, key: &Node, name: &str, known: &[&str], what: &str) {
    cx.warning(
        key.span,
        format!(
            "unknown key `{name}` in {what} is ignored (known keys: {})",
            known.join(", ")
        ),
    );
}

pub(super) fn action(cx: &mut Converter<'_>, file: &str, root: &Node) -> Option<Action> {
    let entries = cx.mapping(root, "the action metadata")?;
    let mut name = None;
    let mut description = None;
    let mut inputs = IndexMap::new();
    let mut outputs = IndexMap::new();
    let mut runs = None;
    let mut runs_seen = false;
    for (key, key_node, value) in &entries {
        match *key {
            "name" => name = text(cx, value, key),
            "description" => description = text(cx, value, key),
            "author" | "branding" => {}
            "inputs" => inputs = action_inputs(cx, value),
            "outputs" => outputs = action_outputs(cx, value),
            "runs" => {
                runs_seen = true;
                runs = action_runs(cx, value);
            }
            _ => ignored_key(cx, key_node, key, ROOT_KEYS, "an action"),
        }
    }
    if !runs_seen {
        cx.error_hint(
            root.span,
            "the action has no `runs`",
            "add `runs:` with `using: composite`, `node20` or `docker`".to_owned(),
        );
    }
    if !matches!(runs, Some(ActionRuns::Composite(_))) {
        for (id, output) in &outputs {
            if let Some(value) = &output.value {
                cx.warning(
                    value.span,
                    format!("`outputs.{id}.value` is only used by composite actions"),
                );
            }
        }
    }
    Some(Action {
        file: file.to_owned(),
        name,
        description,
        inputs,
        outputs,
        runs: runs?,
        span: root.span,
    })
}

/// A free-text value: any scalar, as a string; other shapes are ignored with a warning.
fn text(cx: &mut Converter<'_>, node: &Node, key: &str) -> Option<Spanned<String>> {
    if node.as_scalar().is_none() {
        cx.warning(
            node.span,
            format!("`{key}` should be a string; it is ignored"),
        );
        return None;
    }
    cx.scalar_string(node, key).map(|value| Spanned {
        value,
        span: node.span,
    })
}

fn entries_or_empty<'n>(
    cx: &mut Converter<'_>,
    node: &'n Node,
    key: &str,
) -> Vec<(&'n str, &'n Node, &'n Node)> {
    if node.is_null() {
        return Vec::new();
    }
    cx.mapping(node, key).unwrap_or_default()
}

fn action_inputs(cx: &mut Converter<'_>, node: &Node) -> IndexMap<String, ActionInput> {
    let mut inputs: IndexMap<String, ActionInput> = IndexMap::new();
    for (id, id_node, value) in entries_or_empty(cx, node, "inputs") {
        if inputs.keys().any(|other| other.eq_ignore_ascii_case(id)) {
            cx.error(
                id_node.span,
                format!("duplicate input `{id}` (input ids ignore case)"),
            );
            continue;
        }
        let mut input = ActionInput {
            description: None,
            required: false,
            default: None,
            deprecation_message: None,
            span: id_node.span,
        };
        for (key, key_node, item) in entries_or_empty(cx, value, &format!("inputs.{id}")) {
            match key {
                "description" => input.description = text(cx, item, key).map(|t| t.value),
                "required" => input.required = required(cx, item),
                "default" => {
                    input.default = cx.template(item, key, Place::ActionInputDefault);
                }
                "deprecationMessage" => {
                    input.deprecation_message = text(cx, item, key).map(|t| t.value);
                }
                _ => ignored_key(cx, key_node, key, INPUT_KEYS, &format!("input `{id}`")),
            }
        }
        inputs.insert(id.to_owned(), input);
    }
    inputs
}

/// `required:` is loosely typed on GitHub (`true`, `'true'`, `false`); only its truth matters,
/// and only as advice.
fn required(cx: &mut Converter<'_>, node: &Node) -> bool {
    match node.as_scalar() {
        Some(scalar) => match scalar.value {
            ScalarValue::Bool(value) => value,
            ScalarValue::Null => false,
            _ if scalar.text.eq_ignore_ascii_case("true") => true,
            _ if scalar.text.eq_ignore_ascii_case("false") => false,
            _ => {
                cx.warning(
                    node.span,
                    "`required` should be `true` or `false`; it is treated as false",
                );
                false
            }
        },
        None => {
            cx.warning(node.span, "`required` should be `true` or `false`");
            false
        }
    }
}

fn action_outputs(cx: &mut Converter<'_>, node: &Node) -> IndexMap<String, ActionOutput> {
    let mut outputs = IndexMap::new();
    for (id, id_node, value) in entries_or_empty(cx, node, "outputs") {
        let mut output = ActionOutput {
            description: None,
            value: None,
            span: id_node.span,
        };
        for (key, key_node, item) in entries_or_empty(cx, value, &format!("outputs.{id}")) {
            match key {
                "description" => output.description = text(cx, item, key).map(|t| t.value),
                "value" => output.value = cx.template(item, key, Place::ActionOutputValue),
                _ => ignored_key(cx, key_node, key, OUTPUT_KEYS, &format!("output `{id}`")),
            }
        }
        outputs.insert(id.to_owned(), output);
    }
    outputs
}

fn action_runs(cx: &mut Converter<'_>, node: &Node) -> Option<ActionRuns> {
    let entries = cx.mapping(node, "runs")?;
    let Some((_, _, using_node)) = entries.iter().find(|(key, _, _)| *key == "using") else {
        cx.error_hint(
            node.span,
            "`runs` has no `using`",
            "add `using: composite`, `using: node20` or `using: docker`".to_owned(),
        );
        return None;
    };
    let using = cx.plain_string(using_node, "using")?;
    let kind = using.value.to_ascii_lowercase();
    if kind == "composite" {
        composite_runs(cx, node, &entries).map(ActionRuns::Composite)
    } else if kind == "docker" {
        docker_runs(cx, node, &entries).map(ActionRuns::Docker)
    } else if NODE_VERSIONS.contains(&kind.as_str()) {
        node_runs(cx, node, using, &entries).map(ActionRuns::Node)
    } else {
        cx.error_hint(
            using.span,
            format!("unsupported `runs.using: {}`", using.value),
            format!(
                "use `composite`, `docker` or one of {}",
                NODE_VERSIONS.join(", ")
            ),
        );
        None
    }
}

type Entries<'n> = [(&'n str, &'n Node, &'n Node)];

fn composite_runs(
    cx: &mut Converter<'_>,
    node: &Node,
    entries: &Entries<'_>,
) -> Option<CompositeRuns> {
    let mut steps = None;
    for (key, key_node, value) in entries {
        match *key {
            "using" => {}
            "steps" => steps = Some(steps_with(cx, value, COMPOSITE_STEPS)),
            _ => ignored_key(cx, key_node, key, COMPOSITE_KEYS, "composite `runs`"),
        }
    }
    let Some(steps) = steps else {
        cx.error(node.span, "a composite action needs `runs.steps`");
        return None;
    };
    Some(CompositeRuns {
        steps,
        span: node.span,
    })
}

fn node_runs(
    cx: &mut Converter<'_>,
    node: &Node,
    using: Spanned<String>,
    entries: &Entries<'_>,
) -> Option<NodeRuns> {
    let mut main = None;
    let mut pre = None;
    let mut pre_if = None;
    let mut post = None;
    let mut post_if = None;
    for (key, key_node, value) in entries {
        match *key {
            "using" => {}
            "main" => main = cx.plain_string(value, key),
            "pre" => pre = cx.plain_string(value, key),
            "post" => post = cx.plain_string(value, key),
            "pre-if" => pre_if = cx.if_condition(value, Place::ActionStepIf),
            "post-if" => post_if = cx.if_condition(value, Place::ActionStepIf),
            _ => ignored_key(cx, key_node, key, NODE_KEYS, "node `runs`"),
        }
    }
    let Some(main) = main else {
        cx.error(
            node.span,
            format!("a `{}` action needs `runs.main`", using.value),
        );
        return None;
    };
    Some(NodeRuns {
        using,
        main,
        pre,
        pre_if,
        post,
        post_if,
        span: node.span,
    })
}

fn docker_runs(cx: &mut Converter<'_>, node: &Node, entries: &Entries<'_>) -> Option<DockerRuns> {
    let mut image = None;
    let mut env = TemplateMap::default();
    let mut args = Vec::new();
    let mut entrypoint = None;
    let mut pre_entrypoint = None;
    let mut pre_if = None;
    let mut post_entrypoint = None;
    let mut post_if = None;
    for (key, key_node, value) in entries {
        match *key {
            "using" => {}
            "image" => image = cx.plain_string(value, key),
            "env" => env = cx.template_map(value, key, Place::ActionStep, Place::ActionStep),
            "args" => args = docker_args(cx, value),
            "entrypoint" => entrypoint = cx.plain_string(value, key),
            "pre-entrypoint" => pre_entrypoint = cx.plain_string(value, key),
            "post-entrypoint" => post_entrypoint = cx.plain_string(value, key),
            "pre-if" => pre_if = cx.if_condition(value, Place::ActionStepIf),
            "post-if" => post_if = cx.if_condition(value, Place::ActionStepIf),
            _ => ignored_key(cx, key_node, key, DOCKER_KEYS, "docker `runs`"),
        }
    }
    let Some(image) = image else {
        cx.error(node.span, "a docker action needs `runs.image`");
        return None;
    };
    Some(DockerRuns {
        image,
        env,
        args,
        entrypoint,
        pre_entrypoint,
        pre_if,
        post_entrypoint,
        post_if,
        span: node.span,
    })
}

fn docker_args(cx: &mut Converter<'_>, node: &Node) -> Vec<TemplateString> {
    match &node.kind {
        NodeKind::Sequence(items) => items
            .iter()
            .filter_map(|item| cx.template(item, "args", Place::ActionStep))
            .collect(),
        _ if node.is_null() => Vec::new(),
        _ => {
            cx.wrong_type(node, "args", "a list of strings");
            Vec::new()
        }
    }
}
