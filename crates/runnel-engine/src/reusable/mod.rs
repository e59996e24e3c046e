//! Jobs that call a reusable workflow (`jobs.<id>.uses`), run in-process as act_runner does:
//! the called file is read or fetched, checked against the call (`on: workflow_call`, inputs,
//! secrets), and its jobs run through the driver in `needs` order on the same backend, with
//! the caller's `github`, the call's typed `inputs` and the passed (or inherited) `secrets`.
//! The call job's outputs are `on.workflow_call.outputs.*.value` over the called `jobs`, its
//! result failure when a called job failed.
//!
//! Owns: [`CallFrame`] (what the jobs of a called workflow inherit), [`run_call`], the sink
//! that names called jobs `caller / inner` (key `caller/inner`), nesting depth and cycles.
//! Must not: run steps or order jobs itself (the job runner and the driver do).

mod resolve;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Instant, SystemTime};

use runnel_expr::{EvalContext, Host, Object, Value};
use runnel_plan::JobResult;
use runnel_workflow::{InputType, Job, LiteralOrExpr, TemplateString, Workflow, WorkflowSecrets};
use tokio_util::sync::CancellationToken;

pub(crate) use resolve::Origin;

use crate::backend::Backend;
use crate::contexts;
use crate::driver::{aggregate, drive};
use crate::job::JobRequest;
use crate::options::{JobOutcome, WorkflowResult};
use crate::output::Masker;
use crate::sink::{JobRef, LogEvent, LogRecord, LogSink, RunnerLevel};

/// What the jobs of a called workflow inherit from the call.
#[derive(Debug, Clone)]
pub(crate) struct CallFrame {
    /// `github` of the top-level caller (GitHub: "the github context is always associated
    /// with the caller workflow"), before the job-specific fields.
    pub(crate) github: Object,
    /// The call's `with:`, typed and with defaults.
    pub(crate) inputs: Object,
    /// Identities of the files from the top-level workflow down to this one.
    pub(crate) chain: Vec<String>,
    /// Where `./` calls of the called file resolve.
    pub(crate) origin: Origin,
    /// Every secret of the levels above: masked below even when not passed down.
    pub(crate) mask: Vec<String>,
    /// `<call job key>/`: what the keys of the called job instances start with.
    pub(crate) key_prefix: String,
}

type CallFuture<'a> = Pin<Box<dyn Future<Output = JobOutcome> + Send + 'a>>;

/// Runs the call job `request` names. Boxed: a called workflow may call another one, and the
/// future of a recursive call needs a known size.
pub(crate) fn run_call<'a>(
    request: &'a JobRequest<'a>,
    frame: Option<&'a CallFrame>,
    backend: &'a dyn Backend,
    sink: &'a dyn LogSink,
    cancel: &'a CancellationToken,
) -> CallFuture<'a> {
    Box::pin(async move {
        let started = Instant::now();
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
        let call = Call {
            request,
            frame,
            sink,
            job_ref: &job_ref,
            masker: &masker,
        };
        emit(sink, &job_ref, LogEvent::JobStarted);
        let (result, outputs, called) = match call.run(backend, cancel).await {
            Ok(done) => done,
            Err(message) => {
                call.runner(RunnerLevel::Error, &message);
                (JobResult::Failure, Vec::new(), Vec::new())
            }
        };
        let duration = started.elapsed();
        emit(sink, &job_ref, LogEvent::JobFinished { result, duration });
        JobOutcome {
            job_id: request.instance.id.clone(),
            name: request.instance.name.clone(),
            key: request.key.clone(),
            result,
            continue_on_error: false,
            outputs,
            duration,
            steps: Vec::new(),
            called,
        }
    })
}

/// The call job's result, outputs and the called job instances.
type CallDone = (JobResult, Vec<(String, String)>, Vec<JobOutcome>);

struct Call<'a> {
    request: &'a JobRequest<'a>,
    frame: Option<&'a CallFrame>,
    sink: &'a dyn LogSink,
    job_ref: &'a JobRef,
    masker: &'a Masker,
}

/// Call-level expressions have no status functions and no `hashFiles`.
struct CallHost;

impl Host for CallHost {}

impl Call<'_> {
    fn runner(&self, level: RunnerLevel, text: &str) {
        let text = self.masker.mask(text).into_owned();
        emit(self.sink, self.job_ref, LogEvent::Runner { level, text });
    }

    async fn run(
        &self,
        backend: &dyn Backend,
        cancel: &CancellationToken,
    ) -> Result<CallDone, String> {
        let request = self.request;
        let workflow = request.workflow;
        let job = workflow
            .jobs
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(&request.instance.id))
            .map(|(_, job)| job)
            .ok_or_else(|| format!("workflow has no job `{}`", request.instance.id))?;
        let Some(call) = &job.call else {
            return Err(format!("job `{}` calls no workflow", request.instance.id));
        };
        let uses = &call.uses;
        let at = format!("{}:{}:{}", workflow.file, uses.span.line, uses.span.col);
        let caller_contexts = contexts::job_contexts(
            workflow,
            request.event,
            request.instance,
            request.needs,
            request.strategy,
            request.options,
            self.frame,
        );

        let origin = self.frame.map_or(Origin::Workspace, |f| f.origin.clone());
        let resolved =
            resolve::resolve(&uses.value, &origin, request.options, request.event, cancel)
                .await
                .map_err(|error| {
                    format!(
                        "{at}: cannot load the called workflow: {}",
                        chain_text(&error)
                    )
                })?;
        let mut chain = match self.frame {
            Some(frame) => frame.chain.clone(),
            None => vec![resolve::top_level_id(&workflow.file)],
        };
        if chain.contains(&resolved.id) {
            chain.push(resolved.id);
            return Err(format!(
                "{at}: reusable workflows call each other in a cycle: {}",
                chain_display(&chain)
            ));
        }
        if chain.len() > runnel_workflow::MAX_NESTED_CALL_DEPTH {
            chain.push(resolved.id);
            return Err(format!(
                "{at}: reusable workflows are nested more than {} levels deep (GitHub's limit): {}",
                runnel_workflow::MAX_NESTED_CALL_DEPTH,
                chain_display(&chain)
            ));
        }
        let commit = resolved
            .commit
            .as_deref()
            .map(|c| format!(" (SHA:{c})"))
            .unwrap_or_default();
        self.runner(
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
                return Err(format!(
                    "{at}: the called workflow is not valid:\n{}",
                    errors.join("\n")
                ));
            }
        };
        let problems: Vec<String> = runnel_workflow::check_call(&workflow.file, job, &called)
            .iter()
            .map(diagnostic_text)
            .collect();
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }

        let github = match self.frame {
            Some(frame) => frame.github.clone(),
            None => contexts::caller_github(workflow, request.event),
        };
        let inputs = self.inputs(job, &called, &caller_contexts, &github)?;
        let mut options = request.options.clone();
        options.secrets = self.secrets(job, &caller_contexts)?;
        options.job_filter = None;
        let mut mask = self.frame.map(|f| f.mask.clone()).unwrap_or_default();
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
        let prefixed = PrefixSink {
            inner: self.sink,
            name: request.instance.name.clone(),
        };
        let result = drive(
            &called,
            request.event,
            &options,
            backend,
            &prefixed,
            cancel.clone(),
            Some(&frame),
        )
        .await
        .map_err(|error| error.to_string())?;
        let outputs = self.outputs(&called, &frame, &result);
        let called_jobs = result
            .jobs
            .into_iter()
            .map(|outcome| prefixed.outcome(outcome))
            .collect();
        Ok((result.result, outputs, called_jobs))
    }

    /// `with:` evaluated over the caller job's contexts and converted to the declared types;
    /// absent inputs get their default (an expression over `github`, `inputs`, `vars`).
    fn inputs(
        &self,
        job: &Job,
        called: &Workflow,
        caller_contexts: &Object,
        github: &Object,
    ) -> Result<Object, String> {
        let mut inputs = Object::new();
        let (Some(call), Some(trigger)) = (&job.call, &called.on.workflow_call) else {
            return Ok(inputs);
        };
        let caller_file = &self.request.workflow.file;
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
                                Value::Object(runnel_plan::vars_context(self.request.event).into()),
                            );
                            evaluate(&cx, template, &called.file)?
                        }
                        (None, Some(literal)) => literal.value.clone(),
                        (None, None) => empty_input(input.input_type),
                    };
                    (value, place)
                }
            };
            let typed = typed_input(input.input_type, value)
                .map_err(|found| format!("{place}: input `{id}` must be a {found}"))?;
            inputs.insert(id.as_str(), typed);
        }
        Ok(inputs)
    }

    /// `secrets: inherit` passes every secret; a mapping passes what it names (evaluated over
    /// the caller's contexts); `GITHUB_TOKEN` is always passed, as on GitHub.
    fn secrets(
        &self,
        job: &Job,
        caller_contexts: &Object,
    ) -> Result<BTreeMap<String, String>, String> {
        let options = self.request.options;
        let mut secrets = BTreeMap::new();
        match job.call.as_ref().and_then(|call| call.secrets.as_ref()) {
            Some(WorkflowSecrets::Inherit(_)) => secrets = options.secrets.clone(),
            Some(WorkflowSecrets::Map(map, _)) => {
                for (name, template) in map {
                    let value = evaluate(caller_contexts, template, &self.request.workflow.file)?;
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

    /// `on.workflow_call.outputs.*.value` over the called jobs' results and outputs. A value
    /// that holds a secret is dropped, as job outputs are.
    fn outputs(
        &self,
        called: &Workflow,
        frame: &CallFrame,
        result: &WorkflowResult,
    ) -> Vec<(String, String)> {
        let Some(trigger) = &called.on.workflow_call else {
            return Vec::new();
        };
        let mut jobs = Object::new();
        for id in called.jobs.keys() {
            let legs: Vec<&JobOutcome> = result.jobs.iter().filter(|o| &o.job_id == id).collect();
            if legs.is_empty() {
                continue;
            }
            let (job_result, outputs) = aggregate(&legs);
            let mut output_object = Object::new();
            for (name, value) in outputs {
                output_object.insert(name, Value::String(value));
            }
            let mut entry = Object::new();
            entry.insert("result", Value::String(job_result.as_str().to_owned()));
            entry.insert("outputs", Value::Object(output_object.into()));
            jobs.insert(id.as_str(), Value::Object(entry.into()));
        }
        let mut cx = Object::new();
        cx.insert("github", Value::Object(frame.github.clone().into()));
        cx.insert("inputs", Value::Object(frame.inputs.clone().into()));
        cx.insert(
            "vars",
            Value::Object(runnel_plan::vars_context(self.request.event).into()),
        );
        cx.insert("jobs", Value::Object(jobs.into()));
        let mut outputs = Vec::new();
        for (name, output) in &trigger.outputs {
            match evaluate(&cx, &output.value, &called.file) {
                Ok(value) => {
                    let value = value.to_display_string();
                    if self.masker.mask(&value) != value {
                        self.runner(
                            RunnerLevel::Warning,
                            &format!("Skip output '{name}' since it may contain secret."),
                        );
                    } else {
                        outputs.push((name.clone(), value));
                    }
                }
                Err(message) => self.runner(RunnerLevel::Warning, &message),
            }
        }
        outputs
    }
}

fn evaluate(contexts: &Object, template: &TemplateString, file: &str) -> Result<Value, String> {
    let cx = EvalContext {
        contexts,
        host: &CallHost,
    };
    template.template.evaluate(&cx).map_err(|error| {
        format!(
            "{file}:{}:{}: `{}`: {error}",
            template.span.line, template.span.col, template.raw
        )
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

/// An error with its causes, `: `-joined.
fn chain_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

/// Names the records of a called workflow's jobs after the call job: `Caller / Inner`, as
/// GitHub lists them (their keys, `caller/inner`, are made so by the driver).
struct PrefixSink<'a> {
    inner: &'a dyn LogSink,
    name: String,
}

impl PrefixSink<'_> {
    fn outcome(&self, mut outcome: JobOutcome) -> JobOutcome {
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

fn emit(sink: &dyn LogSink, job: &JobRef, event: LogEvent) {
    sink.record(LogRecord {
        job: job.clone(),
        step: None,
        time: SystemTime::now(),
        event,
    });
}

#[cfg(test)]
mod tests;
