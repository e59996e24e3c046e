//! `runnel plan`: which workflows an event triggers and the job instances of each, in `needs`
//! order, as a readable table or as JSON.

use anyhow::{Context, Result, bail};
use runnel_expr::{Object, Value};
use runnel_plan::{Event, NoteSeverity, WorkflowPlan};
use serde_json::json;

use crate::Outcome;
use crate::args::{EventArgs, Format, PlanArgs};
use crate::discover;

pub(crate) fn run(args: &PlanArgs) -> Result<Outcome> {
    let event = event_from_args(&args.event, &args.event_args)?;
    let paths = match &args.workflows {
        Some(path) => vec![path.clone()],
        None => discover::default_paths()?,
    };
    let mut plans = Vec::new();
    let mut invalid = false;
    for path in discover::expand(&paths)? {
        let file = discover::read(&path)?;
        let loaded = runnel_workflow::load_workflow(&file.display, &file.text);
        let has_errors = loaded
            .diagnostics
            .iter()
            .any(|d| d.severity == runnel_workflow::Severity::Error);
        if has_errors {
            // A workflow with errors is not planned: show why, as `validate` would.
            invalid = true;
            for diagnostic in &loaded.diagnostics {
                eprintln!("{}", runnel_workflow::render(diagnostic, &file.text));
            }
            continue;
        }
        if let Some(workflow) = &loaded.workflow {
            plans.push(runnel_plan::plan_workflow(&file.display, workflow, &event));
        }
    }
    match args.format {
        Format::Text => print_text(&plans, &event),
        Format::Json => println!("{}", plans_json(&plans)),
    }
    let plan_errors = plans
        .iter()
        .flat_map(|p| &p.notes)
        .any(|n| n.severity == NoteSeverity::Error);
    Ok(if invalid || plan_errors {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

pub(crate) fn event_from_args(name: &str, args: &EventArgs) -> Result<Event> {
    let mut event = Event::new(name);
    let git_ref = match &args.git_ref {
        Some(git_ref) => git_ref.clone(),
        None => discover::current_branch().unwrap_or_else(|| "refs/heads/main".to_owned()),
    };
    event.git_ref = runnel_plan::full_ref(&git_ref);
    if let Some(sha) = args.sha.clone().or_else(discover::head_sha) {
        event.sha = sha;
    }
    event.inputs = match crate::common::default_file(args.input_file.as_deref(), ".input") {
        Some(path) => crate::common::read_key_values(&path)?,
        None => Vec::new(),
    };
    for (name, value) in &args.inputs {
        // `--input` wins over the file.
        event.inputs.retain(|(known, _)| known != name);
        event.inputs.push((name.clone(), value.clone()));
    }
    event.vars = args.vars.clone();
    if let Some(remote) = discover::origin_remote() {
        event.repository = remote.repository;
    }
    if let Some(actor) = &args.actor {
        event.actor = actor.clone();
    }
    if !args.changed_files.is_empty() {
        event.changed_files = Some(args.changed_files.clone());
    }
    match &args.eventpath {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", path.display()))?;
            let Value::Object(payload) = Value::from_json(&json) else {
                bail!(
                    "{}: the event payload must be a JSON object",
                    path.display()
                );
            };
            event.payload = (*payload).clone();
        }
        None => {
            event
                .payload
                .insert("ref", Value::String(event.git_ref.clone()));
            let inputs: Object = event
                .inputs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .fold(Object::new(), |mut o, (k, v)| {
                    o.insert(k, v);
                    o
                });
            if !inputs.is_empty() {
                event.payload.insert("inputs", Value::Object(inputs.into()));
            }
        }
    }
    // What the filters read from a pull request comes from its payload, as GitHub does.
    let text_at = |path: &[&str]| string_at(&event.payload, path);
    event.action = text_at(&["action"]);
    event.base_ref = text_at(&["pull_request", "base", "ref"]);
    event.head_ref = text_at(&["pull_request", "head", "ref"]);
    Ok(event)
}

fn string_at(object: &Object, path: &[&str]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    match (object.get(first)?, rest.is_empty()) {
        (Value::String(s), true) => Some(s.clone()),
        (Value::Object(inner), false) => string_at(inner, rest),
        _ => None,
    }
}

fn plans_json(plans: &[WorkflowPlan]) -> serde_json::Value {
    let workflows: Vec<_> = plans
        .iter()
        .map(|plan| {
            let jobs: Vec<_> = plan
                .jobs
                .iter()
                .map(|job| {
                    json!({
                        "id": job.id,
                        "name": job.name,
                        "matrix": job.matrix.as_ref().map(|m| Value::Object(m.clone().into()).to_json()),
                        "needs": job.needs,
                        "runs_on": job.runs_on,
                        "would_run": job.would_run,
                    })
                })
                .collect();
            let notes: Vec<_> = plan
                .notes
                .iter()
                .map(|n| json!({"job": n.job_id, "error": n.severity == NoteSeverity::Error, "message": n.message}))
                .collect();
            json!({
                "file": plan.file,
                "name": plan.name,
                "triggered": plan.triggered,
                "not_triggered_reason": plan.not_triggered.as_ref().map(|r| r.to_string()),
                "jobs": jobs,
                "notes": notes,
            })
        })
        .collect();
    json!({ "workflows": workflows })
}

pub(crate) fn print_text(plans: &[WorkflowPlan], event: &Event) {
    println!("event {} on {}", event.name, event.git_ref);
    for plan in plans {
        println!();
        match &plan.not_triggered {
            None => println!("{} ({}): triggered", plan.file, plan.name),
            Some(reason) => println!("{} ({}): not triggered: {reason}", plan.file, plan.name),
        }
        if plan.not_triggered.is_some() {
            continue;
        }
        let rows: Vec<[String; 4]> = plan
            .jobs
            .iter()
            .map(|job| {
                [
                    job.name.clone(),
                    if job.would_run { "run" } else { "skip" }.to_owned(),
                    join_or_dash(&job.runs_on),
                    join_or_dash(&job.needs),
                ]
            })
            .collect();
        print_table(&["JOB", "RUN?", "RUNS-ON", "NEEDS"], &rows);
        for note in &plan.notes {
            let level = match note.severity {
                NoteSeverity::Error => "error",
                NoteSeverity::Info => "note",
            };
            match &note.job_id {
                Some(job) => println!("  {level}: job `{job}`: {}", note.message),
                None => println!("  {level}: {}", note.message),
            }
        }
    }
}

fn join_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

fn print_table(header: &[&str; 4], rows: &[[String; 4]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    line(*header);
    for row in rows {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }
}
