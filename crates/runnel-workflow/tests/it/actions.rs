//! Action metadata files in `tests/actions/`: each `X.yml` and, in `X.expected`, its
//! rendered diagnostics followed by a summary of the model it loaded to. Run with
//! `UPDATE_EXPECT=1` to rewrite the expectations after a deliberate change.

use std::fmt::Write;

use runnel_workflow::{Action, ActionRuns, StepKind, load_action, render};

use crate::check_snapshots;

#[test]
fn action_files_load_to_expected_models_and_diagnostics() {
    check_snapshots("actions", 10, false, check);
}

fn check(name: &str, text: &str) -> String {
    let result = load_action(name, text);
    let mut out = String::new();
    for diagnostic in &result.diagnostics {
        out.push_str(&render(diagnostic, text));
        out.push('\n');
    }
    match &result.action {
        Some(action) => out.push_str(&summary(action)),
        None => out.push_str("(no model)\n"),
    }
    out
}

/// The parts of the model the engine relies on, one fact a line.
fn summary(action: &Action) -> String {
    let mut out = String::new();
    let name = action.name.as_ref().map_or("-", |n| n.value.as_str());
    let _ = writeln!(out, "name: {name}");
    for (id, input) in &action.inputs {
        let default = input.default.as_ref().map_or("-", |d| d.raw.as_str());
        let deprecated = input.deprecation_message.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "input {id}: required={} default={default} deprecated={deprecated}",
            input.required
        );
    }
    for (id, output) in &action.outputs {
        let value = output.value.as_ref().map_or("-", |v| v.raw.as_str());
        let _ = writeln!(out, "output {id}: value={value}");
    }
    let _ = writeln!(out, "using: {}", action.runs.using());
    match &action.runs {
        ActionRuns::Composite(composite) => {
            for step in &composite.steps {
                let kind = match &step.kind {
                    StepKind::Run(run) => format!(
                        "run shell={}",
                        run.shell.as_ref().map_or("-", |s| s.raw.as_str())
                    ),
                    StepKind::Uses(uses) => format!(
                        "uses {} with={:?}",
                        uses.uses.value,
                        uses.with
                            .entries
                            .iter()
                            .map(|e| e.key.raw())
                            .collect::<Vec<_>>()
                    ),
                };
                let id = step.id.as_ref().map_or("-", |i| i.value.as_str());
                let condition = step
                    .if_condition
                    .as_ref()
                    .map_or("-", |c| c.source.as_str());
                let _ = writeln!(out, "step {}: id={id} if={condition} {kind}", step.index);
            }
        }
        ActionRuns::Node(node) => {
            let optional = |v: &Option<runnel_workflow::Spanned<String>>| {
                v.as_ref().map_or("-".to_owned(), |v| v.value.clone())
            };
            let _ = writeln!(
                out,
                "main={} pre={} pre-if={} post={} post-if={}",
                node.main.value,
                optional(&node.pre),
                node.pre_if.as_ref().map_or("-", |c| c.source.as_str()),
                optional(&node.post),
                node.post_if.as_ref().map_or("-", |c| c.source.as_str()),
            );
        }
        ActionRuns::Docker(docker) => {
            let args: Vec<&str> = docker.args.iter().map(|a| a.raw.as_str()).collect();
            let env: Vec<&str> = docker.env.entries.iter().map(|e| e.key.raw()).collect();
            let _ = writeln!(
                out,
                "image={} args={args:?} env={env:?} entrypoint={} post-entrypoint={}",
                docker.image.value,
                docker.entrypoint.as_ref().map_or("-", |e| e.value.as_str()),
                docker
                    .post_entrypoint
                    .as_ref()
                    .map_or("-", |e| e.value.as_str()),
            );
        }
    }
    out
}
