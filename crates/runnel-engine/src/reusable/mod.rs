//! Jobs that call a reusable workflow (`jobs.<id>.uses`), run in-process as act_runner does:
//! the called file is read or fetched and checked against the call (`on: workflow_call`,
//! inputs, secrets), and becomes a [`SubPlan`] — the called workflow with the caller's
//! `github`, the call's typed `inputs` and the passed (or inherited) `secrets` — that the
//! driver runs like any workflow, on the same backend. The call job's outputs are
//! `on.workflow_call.outputs.*.value` over the called `jobs`.
//!
//! Owns: [`plan_call`], [`SubPlan`], [`CallError`], [`CallLog`] (the call job's own log
//! lines), [`call_outputs`], the sink that names called jobs `caller / inner` (key
//! `caller/inner`), nesting depth and cycles.
//! Must not: run jobs or order them (the driver does); it never calls back into the driver.

mod resolve;

use std::collections::BTreeMap;

use runnel_expr::{EvalContext, EvalError, Host, Object, Value};
use runnel_workflow::{
    InputType, Job, LiteralOrExpr, ReusableWorkflowCall, TemplateString, Workflow, WorkflowSecrets,
};
use tokio_util::sync::CancellationToken;

use crate::call_frame::{CallFrame, Origin};
use crate::contexts;
use crate::job::JobRequest;
use crate::options::{JobOutcome, RunOptions};
use crate::output::Masker;
use crate::sink::{JobRef, LogEvent, LogRecord, LogSink, RunnerLevel, emit};
use crate::with_causes;

/// Why a call job could not run the workflow it calls. The text is the job's log line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("{at}: cannot load the called workflow: {}", with_causes(.source))]
    Resolve {
        /// `file:line:col` of the call's `uses:`.
        at: String,
        #[source]
        source: Box<resolve::ResolveError>,
    },
    #[error("{at}: reusable workflows call each other in a cycle: {}", chain_display(.chain))]
    Cycle { at: String, chain: Vec<String> },
    #[error(
        "{at}: reusable workflows are nested more than {depth} levels deep (GitHub's limit): {}",
        chain_display(.chain)
    )]
    TooDeep {
        at: String,
        depth: usize,
        chain: Vec<String>,
    },
    /// `diagnostics`: each error of the called file, rendered with its position.
    #[error("{at}: the called workflow is not valid:\n{}", .diagnostics.join("\n"))]
    InvalidWorkflow {
        at: String,
        diagnostics: Vec<String>,
    },
    /// What `check_call` found wrong with the call, rendered with positions.
    #[error("{}", .diagnostics.join("\n"))]
    CallMismatch { diagnostics: Vec<String> },
    #[error("{place}: input `{id}` must be a {expected}")]
    InputType {
        place: String,
        id: String,
        /// The declared type and what was found (`boolean, got 'yes'`).
        expected: String,
    },
    #[error("{file}:{line}:{col}: `{raw}`: {source}")]
    Evaluate {
        file: String,
        line: usize,
        col: usize,
        raw: String,
        #[source]
        source: EvalError,
    },
}

/// A called workflow ready for the driver: what it runs and what its jobs inherit.
pub(crate) struct SubPlan {
    pub(crate) workflow: Workflow,
    /// The caller's options with the call's secrets and no job filter.
    pub(crate) options: RunOptions,
    pub(crate) frame: CallFrame,
    /// The call job's name: the called jobs are named `<caller> / <inner>`.
    caller_name: String,
}

impl SubPlan {
    /// `sink` with the called jobs' records named after the call job.
    pub(crate) fn sink<'s>(&self, sink: &'s dyn LogSink) -> PrefixSink<'s> {
        PrefixSink {
            inner: sink,
            name: self.caller_name.clone(),
        }
    }
}

/// The call job's own log lines (the jobs it calls log through the driver), masked with the
/// secrets of this level and those above.
pub(crate) struct CallLog<'a> {
    sink: &'a dyn LogSink,
    job_ref: JobRef,
    masker: Masker,
}

impl<'a> CallLog<'a> {
    pub(crate) fn new(
        request: &JobRequest<'_>,
        frame: Option<&CallFrame>,
        sink: &'a dyn LogSink,
    ) -> CallLog<'a> {
        let job_ref = JobRef {
            job_id: request.instance.id.clone(),
            name: request.instance.name.clone(),
            key: request.key.clone(),
        };
        let masker = Masker::new();
        for value in request.options.secrets.values() {
            masker.add(value);
        }
        for value in frame.map_or(&[][..], |frame| frame.mask.as_slice()) {
            masker.add(value);
        }
        CallLog {
            sink,
            job_ref,
            masker,
        }
    }

    pub(crate) fn emit(&self, event: LogEvent) {
        emit(self.sink, &self.job_ref, event);
    }

    pub(crate) fn runner(&self, level: RunnerLevel, text: &str) {
        let text = self.masker.mask(text).into_owned();
        self.emit(LogEvent::Runner { level, text });
    }
}

/// Resolves, loads and checks the workflow that `job` of `request` calls, and makes the
/// [`SubPlan`] its jobs run as. `frame` is the frame `request`'s own workflow runs in.
pub(crate) async fn plan_call(
    request: &JobRequest<'_>,
    job: &Job,
    call: &ReusableWorkflowCall,
    frame: Option<&CallFrame>,
    log: &CallLog<'_>,
    cancel: &CancellationToken,
) -> Result<SubPlan, CallError> {
    let workflow = request.workflow;
    let uses = &call.uses;
    let at = format!("{}:{}:{}", workflow.file, uses.span.line, uses.span.col);
    let caller_contexts = contexts::job_contexts(
        workflow,
        request.event,
        request.instance,
        request.needs,
        request.strategy,
        request.options,
        frame,
    );

    let origin = frame.map_or(Origin::Workspace, |f| f.origin.clone());
    let resolved = resolve::resolve(&uses.value, &origin, request.options, request.event, cancel)
        .await
        .map_err(|source| CallError::Resolve {
            at: at.clone(),
            source: Box::new(source),
        })?;
    let mut chain = match frame {
        Some(frame) => frame.chain.clone(),
        None => vec![resolve::top_level_id(&workflow.file)],
    };
    if chain.contains(&resolved.id) {
        chain.push(resolved.id);
        return Err(CallError::Cycle { at, chain });
    }
    if chain.len() > runnel_workflow::MAX_NESTED_CALL_DEPTH {
        chain.push(resolved.id);
        return Err(CallError::TooDeep {
            at,
            depth: runnel_workflow::MAX_NESTED_CALL_DEPTH,
            chain,
        });
    }
    let commit = resolved
        .commit
        .as_deref()
        .map(|c| format!(" (SHA:{c})"))
        .unwrap_or_default();
    log.runner(
        RunnerLevel::Info,
        &format!("Calling reusable workflow '{}'{commit}", uses.value),
    );

    let loaded = runnel_workflow::load_workflow(&resolved.file, &resolved.text);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(diagnostic_text)
        .collect();
    let called = match loaded.workflow {
        Some(called) if errors.is_empty() => called,
        _ => {
            return Err(CallError::InvalidWorkflow {
                at,
                diagnostics: errors,
            });
        }
    };
    let problems: Vec<String> = runnel_workflow::check_call(&workflow.file, job, &called)
        .iter()
        .map(diagnostic_text)
        .collect();
    if !problems.is_empty() {
        return Err(CallError::CallMismatch {
            diagnostics: problems,
        });
    }

    let github = match frame {
        Some(frame) => frame.github.clone(),
        None => contexts::caller_github(workflow, request.event),
    };
    let inputs = call_inputs(request, call, &called, &caller_contexts, &github)?;
    let mut options = request.options.clone();
    options.secrets = call_secrets(request, call, &caller_contexts)?;
    options.job_filter = None;
    let mut mask = frame.map(|f| f.mask.clone()).unwrap_or_default();
    mask.extend(request.options.secrets.values().cloned());
    chain.push(resolved.id);
    let frame = CallFrame {
        github,
        inputs,
        chain,
        origin: resolved.origin,
        mask,
        key_prefix: format!("{}/", request.key),
    };
    Ok(SubPlan {
        workflow: called,
        options,
        frame,
        caller_name: request.instance.name.clone(),
    })
}

/// Call-level expressions have no status functions and no `hashFiles`.
struct CallHost;

impl Host for CallHost {}

/// `with:` evaluated over the caller job's contexts and converted to the declared types;
/// absent inputs get their default (an expression over `github`, `inputs`, `vars`).
fn call_inputs(
    request: &JobRequest<'_>,
    call: &ReusableWorkflowCall,
    called: &Workflow,
    caller_contexts: &Object,
    github: &Object,
) -> Result<Object, CallError> {
    let mut inputs = Object::new();
    let Some(trigger) = &called.on.workflow_call else {
        return Ok(inputs);
    };
    let caller_file = &request.workflow.file;
    for (id, input) in &trigger.inputs {
        let given = call
            .with
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(id))
            .map(|(_, value)| value);
        let (value, place) = match given {
            Some(LiteralOrExpr::Literal(literal)) => (
                literal.value.clone(),
                format!("{caller_file}:{}:{}", literal.span.line, literal.span.col),
            ),
            Some(LiteralOrExpr::Expr(template)) => (
                evaluate(caller_contexts, template, caller_file)?,
                format!("{caller_file}:{}:{}", template.span.line, template.span.col),
            ),
            None => {
                let place = format!(
                    "{}:{}:{}",
                    called.file, input.id.span.line, input.id.span.col
                );
                let value = match (&input.default, &input.default_value) {
                    (Some(template), _) => {
                        let mut cx = Object::new();
                        cx.insert("github", Value::Object(github.clone().into()));
                        cx.insert("inputs", Value::Object(inputs.clone().into()));
                        cx.insert(
                            "vars",
                            Value::Object(runnel_plan::vars_context(request.event).into()),
                        );
                        evaluate(&cx, template, &called.file)?
                    }
                    (None, Some(literal)) => literal.value.clone(),
                    (None, None) => empty_input(input.input_type),
                };
                (value, place)
            }
        };
        let typed =
            typed_input(input.input_type, value).map_err(|expected| CallError::InputType {
                place,
                id: id.clone(),
                expected,
            })?;
        inputs.insert(id.as_str(), typed);
    }
    Ok(inputs)
}

/// `secrets: inherit` passes every secret; a mapping passes what it names (evaluated over
/// the caller's contexts); `GITHUB_TOKEN` is always passed, as on GitHub.
fn call_secrets(
    request: &JobRequest<'_>,
    call: &ReusableWorkflowCall,
    caller_contexts: &Object,
) -> Result<BTreeMap<String, String>, CallError> {
    let options = request.options;
    let mut secrets = BTreeMap::new();
    match call.secrets.as_ref() {
        Some(WorkflowSecrets::Inherit(_)) => secrets = options.secrets.clone(),
        Some(WorkflowSecrets::Map(map, _)) => {
            for (name, template) in map {
                let value = evaluate(caller_contexts, template, &request.workflow.file)?;
                secrets.insert(name.clone(), value.to_display_string());
            }
        }
        None => {}
    }
    if let Some(token) = options.secrets.get("GITHUB_TOKEN") {
        secrets
            .entry("GITHUB_TOKEN".to_owned())
            .or_insert_with(|| token.clone());
    }
    Ok(secrets)
}

/// `on.workflow_call.outputs.*.value` over `jobs` (the called jobs' results and outputs, as
/// the driver aggregated them). A value that holds a secret is dropped, as job outputs are.
pub(crate) fn call_outputs(
    plan: &SubPlan,
    event: &runnel_plan::Event,
    jobs: Object,
    log: &CallLog<'_>,
) -> Vec<(String, String)> {
    let (called, frame) = (&plan.workflow, &plan.frame);
    let Some(trigger) = &called.on.workflow_call else {
        return Vec::new();
    };
    let mut cx = Object::new();
    cx.insert("github", Value::Object(frame.github.clone().into()));
    cx.insert("inputs", Value::Object(frame.inputs.clone().into()));
    cx.insert(
        "vars",
        Value::Object(runnel_plan::vars_context(event).into()),
    );
    cx.insert("jobs", Value::Object(jobs.into()));
    let mut outputs = Vec::new();
    for (name, output) in &trigger.outputs {
        match evaluate(&cx, &output.value, &called.file) {
            Ok(value) => {
                let value = value.to_display_string();
                if log.masker.mask(&value) != value {
                    log.runner(
                        RunnerLevel::Warning,
                        &format!("Skip output '{name}' since it may contain secret."),
                    );
                } else {
                    outputs.push((name.clone(), value));
                }
            }
            Err(error) => log.runner(RunnerLevel::Warning, &error.to_string()),
        }
    }
    outputs
}

fn evaluate(contexts: &Object, template: &TemplateString, file: &str) -> Result<Value, CallError> {
    let cx = EvalContext {
        contexts,
        host: &CallHost,
    };
    template
        .template
        .evaluate(&cx)
        .map_err(|source| CallError::Evaluate {
            file: file.to_owned(),
            line: template.span.line,
            col: template.span.col,
            raw: template.raw.clone(),
            source,
        })
}

/// The value of an input nobody set and that has no default.
fn empty_input(input_type: InputType) -> Value {
    match input_type {
        InputType::Boolean => Value::Bool(false),
        InputType::Number => Value::Number(0.0),
        _ => Value::String(String::new()),
    }
}

/// `value` as the declared type: strings take any scalar (`null` is `''`); booleans take
/// `true`/`false` (also as text, which is what an expression over outputs gives); numbers
/// take numbers and numeric text. `Err` names the expected type and what was found.
fn typed_input(input_type: InputType, value: Value) -> Result<Value, String> {
    let found = |value: &Value| format!("{}, got {}", type_name(input_type), describe(value));
    match (input_type, value) {
        (InputType::Boolean, Value::Bool(b)) => Ok(Value::Bool(b)),
        (InputType::Boolean, Value::String(text)) if text.eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (InputType::Boolean, Value::String(text)) if text.eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (InputType::Number, Value::Number(n)) => Ok(Value::Number(n)),
        (InputType::Number, Value::String(text)) => match text.trim().parse::<f64>() {
            Ok(n) if !text.trim().is_empty() => Ok(Value::Number(n)),
            _ => Err(found(&Value::String(text))),
        },
        (InputType::Boolean | InputType::Number, other) => Err(found(&other)),
        (_, Value::Null) => Ok(Value::String(String::new())),
        (_, value @ (Value::Array(_) | Value::Object(_))) => Err(found(&value)),
        (_, value) => Ok(Value::String(value.to_display_string())),
    }
}

fn type_name(input_type: InputType) -> &'static str {
    match input_type {
        InputType::Boolean => "boolean",
        InputType::Number => "number",
        _ => "string",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(text) => format!("'{text}'"),
        Value::Array(_) | Value::Object(_) => value.kind_name().to_owned(),
        other => other.to_display_string(),
    }
}

/// The called files of a chain as a reader knows them (the identity without its origin).
fn chain_display(chain: &[String]) -> String {
    chain
        .iter()
        .map(|id| id.rsplit_once(':').map_or(id.as_str(), |(_, path)| path))
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// `file:line:col: message`, and the hint on a line of its own.
fn diagnostic_text(diagnostic: &runnel_workflow::Diagnostic) -> String {
    let mut text = format!(
        "{}:{}:{}: {}",
        diagnostic.file, diagnostic.line, diagnostic.col, diagnostic.message
    );
    if let Some(hint) = &diagnostic.hint {
        text.push_str(&format!("\nhint: {hint}"));
    }
    text
}

/// Names the records of a called workflow's jobs after the call job: `Caller / Inner`, as
/// GitHub lists them (their keys, `caller/inner`, are made so by the driver).
pub(crate) struct PrefixSink<'a> {
    inner: &'a dyn LogSink,
    name: String,
}

impl PrefixSink<'_> {
    /// `outcome` (and the outcomes it called) named after the call job.
    pub(crate) fn outcome(&self, mut outcome: JobOutcome) -> JobOutcome {
        outcome.name = format!("{} / {}", self.name, outcome.name);
        outcome.called = outcome
            .called
            .into_iter()
            .map(|inner| self.outcome(inner))
            .collect();
        outcome
    }
}

impl LogSink for PrefixSink<'_> {
    fn record(&self, mut record: LogRecord) {
        record.job.name = format!("{} / {}", self.name, record.job.name);
        self.inner.record(record);
    }
}

#[cfg(test)]
mod tests;
