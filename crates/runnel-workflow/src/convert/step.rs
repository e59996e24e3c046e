//! `steps:` → [`Step`]s: exactly one of `run`/`uses` per step, the keys each kind accepts,
//! `uses` syntax, and step ids (valid, unique within the job).
//!
//! Owns: step-level keys and their shapes.

use runnel_yaml::{Node, NodeKind};

use super::workflow::check_id;
use super::{Converter, Place};
use crate::model::{RunStep, Spanned, Step, StepKind, TemplateMap, TemplateString, UsesStep};

const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "if",
    "uses",
    "run",
    "shell",
    "with",
    "env",
    "working-directory",
    "continue-on-error",
    "timeout-minutes",
];

/// Composite steps take the job step keys except `timeout-minutes`.
const COMPOSITE_STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "if",
    "uses",
    "run",
    "shell",
    "with",
    "env",
    "working-directory",
    "continue-on-error",
];

/// Where steps are written: a job's `steps` or a composite action's `runs.steps`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepRules {
    /// Contexts of every key but `if`.
    pub(crate) keys: Place,
    pub(crate) step_if: Place,
    /// Composite action steps: `run` needs `shell`, and there is no `timeout-minutes`.
    pub(crate) composite: bool,
}

const JOB_STEPS: StepRules = StepRules {
    keys: Place::Step,
    step_if: Place::StepIf,
    composite: false,
};

pub(super) fn steps(cx: &mut Converter<'_>, node: &Node) -> Vec<Step> {
    steps_with(cx, node, JOB_STEPS)
}

pub(crate) fn steps_with(cx: &mut Converter<'_>, node: &Node, rules: StepRules) -> Vec<Step> {
    let NodeKind::Sequence(items) = &node.kind else {
        cx.wrong_type(node, "steps", "a list of steps");
        return Vec::new();
    };
    if items.is_empty() {
        cx.error(node.span, "`steps` is empty");
    }
    let mut steps: Vec<Step> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(step) = step(cx, index, item, rules) else {
            continue;
        };
        if let Some(id) = &step.id {
            let earlier = steps
                .iter()
                .filter_map(|s| s.id.as_ref())
                .find(|other| other.value.eq_ignore_ascii_case(&id.value));
            if let Some(earlier) = earlier {
                let hint = format!(
                    "`{}` is first used at line {}, column {} (step ids ignore case)",
                    earlier.value, earlier.span.line, earlier.span.col
                );
                cx.error_hint(id.span, format!("duplicate step id `{}`", id.value), hint);
            }
        }
        steps.push(step);
    }
    steps
}

fn step(cx: &mut Converter<'_>, index: usize, node: &Node, rules: StepRules) -> Option<Step> {
    let entries = cx.mapping(node, "a step")?;
    let place = rules.keys;
    let mut result = Step {
        index,
        id: None,
        name: None,
        if_condition: None,
        kind: StepKind::Run(RunStep {
            run: cx.template_from(node, String::new(), place),
            shell: None,
            working_directory: None,
        }),
        env: TemplateMap::default(),
        continue_on_error: None,
        timeout_minutes: None,
        span: node.span,
    };
    let mut run: Option<(Spanned<()>, Option<TemplateString>)> = None;
    let mut uses: Option<(Spanned<()>, Option<Spanned<String>>)> = None;
    let mut shell = None;
    let mut working_directory = None;
    let mut with = None;
    for (key, key_node, value) in &entries {
        let key_span = Spanned {
            value: (),
            span: key_node.span,
        };
        match *key {
            "id" => {
                if let Some(id) = cx.plain_string(value, key) {
                    check_id(cx, &id.value, id.span, "step");
                    result.id = Some(id);
                }
            }
            "name" => result.name = cx.template(value, key, place),
            "if" => result.if_condition = cx.if_condition(value, rules.step_if),
            "run" => run = Some((key_span, cx.template(value, key, place))),
            "uses" => {
                let reference = cx.plain_string(value, key);
                if let Some(reference) = &reference {
                    check_action_ref(cx, reference);
                }
                uses = Some((key_span, reference));
            }
            "shell" => shell = Some((key_span, cx.non_empty_template(value, key, place))),
            "working-directory" => {
                working_directory = Some((key_span, cx.non_empty_template(value, key, place)));
            }
            "with" => with = Some((key_span, with_inputs(cx, value, place))),
            "env" => result.env = cx.template_map(value, key, place, place),
            "continue-on-error" => {
                result.continue_on_error = cx.bool_or_expr(value, key, place);
            }
            "timeout-minutes" if !rules.composite => {
                result.timeout_minutes = cx.number_or_expr(value, key, place);
            }
            _ if rules.composite => {
                cx.unknown_key(
                    key_node,
                    key,
                    COMPOSITE_STEP_KEYS,
                    "a composite action step",
                );
            }
            _ => cx.unknown_key(key_node, key, STEP_KEYS, "a step"),
        }
    }
    match (run, uses) {
        (Some(run), Some(uses)) => {
            let later = if (run.0.span.line, run.0.span.col) > (uses.0.span.line, uses.0.span.col) {
                run.0.span
            } else {
                uses.0.span
            };
            cx.error_hint(
                later,
                "a step cannot have both `run` and `uses`",
                "split it into two steps".to_owned(),
            );
            None
        }
        (Some((run_key, run)), None) => {
            if rules.composite && shell.is_none() {
                cx.error_hint(
                    run_key.span,
                    "a `run` step in a composite action needs `shell`",
                    "add `shell: bash` (workflow defaults do not apply inside actions)".to_owned(),
                );
            }
            if let Some((span, _)) = &with {
                cx.error(span.span, "`with` is only valid in a step with `uses`");
            }
            result.kind = StepKind::Run(RunStep {
                run: run?,
                shell: shell.and_then(|(_, s)| s),
                working_directory: working_directory.and_then(|(_, w)| w),
            });
            Some(result)
        }
        (None, Some((_, uses))) => {
            for (key, present) in [("shell", &shell), ("working-directory", &working_directory)] {
                if let Some((span, _)) = present {
                    cx.error(
                        span.span,
                        format!("`{key}` is only valid in a step with `run`"),
                    );
                }
            }
            result.kind = StepKind::Uses(UsesStep {
                uses: uses?,
                with: with.map(|(_, w)| w).unwrap_or_default(),
            });
            Some(result)
        }
        (None, None) => {
            cx.error_hint(
                node.span,
                "a step needs `run` or `uses`",
                "add `run:` with a command or `uses:` with an action".to_owned(),
            );
            None
        }
    }
}

fn with_inputs(cx: &mut Converter<'_>, node: &Node, place: Place) -> TemplateMap {
    cx.template_map(node, "with", place, place)
}

/// `docker://image`, `./path`, `owner/repo[/path]@ref`, or (Gitea) a full URL with `@ref`.
fn check_action_ref(cx: &mut Converter<'_>, uses: &Spanned<String>) {
    let value = uses.value.as_str();
    let valid = if let Some(image) = value.strip_prefix("docker://") {
        !image.is_empty()
    } else if value.starts_with("./") || value.starts_with("../") {
        true
    } else if let Some((path, git_ref)) = value.rsplit_once('@') {
        let path = path
            .strip_prefix("https://")
            .or_else(|| path.strip_prefix("http://"))
            .unwrap_or(path);
        let mut parts = path.split('/');
        let owner = parts.next().unwrap_or_default();
        let repo = parts.next().unwrap_or_default();
        !git_ref.is_empty() && !owner.is_empty() && !repo.is_empty()
    } else {
        false
    };
    if !valid {
        cx.error_hint(
            uses.span,
            format!("invalid action reference `{value}`"),
            "use `owner/repo@ref`, `owner/repo/path@ref`, `./local/path` or `docker://image`"
                .to_owned(),
        );
    }
}
