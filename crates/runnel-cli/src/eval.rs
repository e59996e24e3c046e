//! `runnel eval`: one expression from the command line, or JSON lines from stdin, evaluated as
//! GitHub would, printed as JSON. Every key of the context is an allowed named-value; the status
//! functions answer as in a job that has succeeded so far.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use runnel_expr::{EvalContext, Host, Object, ParseOptions, Value};
use serde_json::json;

use crate::Outcome;
use crate::args::EvalArgs;

/// `runnel eval` reads no files for `hashFiles`; the engine supplies a real one.
struct EvalHost;
impl Host for EvalHost {}

pub(crate) fn run(args: &EvalArgs) -> Result<Outcome> {
    let default_context = match &args.context {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read {}", path.display()))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", path.display()))?;
            context_object(&json).with_context(|| format!("{}", path.display()))?
        }
        None => Object::new(),
    };
    match &args.expr {
        Some(expr) => match evaluate(expr, &default_context) {
            Ok(value) => {
                println!("{}", value.to_json());
                Ok(Outcome::Success)
            }
            Err(message) => {
                eprintln!("runnel: {message}");
                Ok(Outcome::Failed)
            }
        },
        None => {
            eval_lines(&default_context)?;
            Ok(Outcome::Success)
        }
    }
}

/// One JSON line in, one out, until stdin ends; a malformed line gets an `error` answer so the
/// output stays aligned with the input.
fn eval_lines(default_context: &Object) -> Result<()> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lines() {
        let line = line.context("read stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match answer_line(&line, default_context) {
            Ok(value) => json!({ "ok": value.to_json() }),
            Err(message) => json!({ "error": message }),
        };
        writeln!(stdout, "{answer}").context("write stdout")?;
    }
    stdout.flush().context("write stdout")
}

fn answer_line(line: &str, default_context: &Object) -> Result<Value, String> {
    let request: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("input is not JSON: {e}"))?;
    let Some(expr) = request.get("expr").and_then(|e| e.as_str()) else {
        return Err("input has no string field \"expr\"".to_owned());
    };
    match request.get("context") {
        Some(json) => {
            let context = context_object(json).map_err(|e| e.to_string())?;
            evaluate(expr, &context)
        }
        None => evaluate(expr, default_context),
    }
}

fn context_object(json: &serde_json::Value) -> Result<Object> {
    match Value::from_json(json) {
        Value::Object(object) => Ok((*object).clone()),
        other => bail!(
            "the context must be a JSON object, not {}",
            other.kind_name()
        ),
    }
}

fn evaluate(expr: &str, contexts: &Object) -> Result<Value, String> {
    let options = ParseOptions {
        named_values: contexts.iter().map(|(k, _)| k.to_owned()).collect(),
        status_functions: true,
        hash_files: true,
        job_status_arguments: false,
    };
    let parsed = runnel_expr::parse(expr, &options).map_err(|e| e.message)?;
    let cx = EvalContext {
        contexts,
        host: &EvalHost,
    };
    parsed.evaluate(&cx).map_err(|e| e.message)
}
