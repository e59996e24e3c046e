//! Calls of reusable workflows checked against the called workflow: the `workflow_call`
//! trigger, `with:` against the declared inputs (unknown, missing required, literal type
//! mismatch), `secrets:` against the declared secrets, and, through a resolver that returns a
//! called file's text, whole call trees (nesting depth, cycles, errors in called files, and
//! token `permissions:` a called workflow asks for beyond what its caller grants).
//!
//! Owns: [`check_call`], [`check_calls`], [`CallCheckOptions`], [`PermissionsPolicy`] and
//! [`MAX_NESTED_CALL_DEPTH`].
//! Must not: read files or fetch repositories; the caller's resolver does that (the engine
//! at run time, tests from their data).

use std::collections::BTreeMap;

use runnel_expr::Value;

use crate::diagnostic::{Diagnostic, Severity};
use crate::model::{
    InputType, Job, LiteralOrExpr, PermissionLevel, Permissions, ReusableWorkflowCall, Span,
    WorkflowSecrets,
};
use crate::{LoadResult, Workflow};

/// How many levels of reusable workflows may sit below the top-level caller. GitHub.com
/// allows ten levels of workflows in all: the caller and nine called ones (the docs said four
/// levels, caller included, until 2025; GitHub Enterprise Server still does).
pub const MAX_NESTED_CALL_DEPTH: usize = 9;

/// Limits of [`check_calls`].
#[derive(Debug, Clone, Copy)]
pub struct CallCheckOptions {
    /// Called workflows below the top-level one; deeper calls are an error.
    pub max_depth: usize,
    /// The token permissions of jobs when no `permissions:` is written.
    pub permissions_policy: PermissionsPolicy,
}

impl Default for CallCheckOptions {
    fn default() -> CallCheckOptions {
        CallCheckOptions {
            max_depth: MAX_NESTED_CALL_DEPTH,
            permissions_policy: PermissionsPolicy::Write,
        }
    }
}

/// The repository setting for the default `GITHUB_TOKEN` permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionsPolicy {
    /// "Read and write permissions": every scope `write` (GitHub's older default, and what
    /// a Gitea token that ignores `permissions:` amounts to).
    Write,
    /// "Read repository contents and packages permissions": `contents` and `packages` read.
    LimitedRead,
}

/// The scopes `read-all`/`write-all` cover, in the order GitHub lists them.
const ALL_SCOPES: &[&str] = &[
    "actions",
    "checks",
    "contents",
    "deployments",
    "discussions",
    "issues",
    "packages",
    "pages",
    "pull-requests",
    "repository-projects",
    "statuses",
    "security-events",
    "id-token",
];

/// Token permissions as a grant: one level for every scope, or levels per scope (others
/// `none`).
#[derive(Debug, Clone)]
enum Grant {
    All(PermissionLevel),
    Scopes(BTreeMap<String, PermissionLevel>),
}

impl Grant {
    fn of(permissions: &Permissions) -> Grant {
        match permissions {
            Permissions::ReadAll(_) => Grant::All(PermissionLevel::Read),
            Permissions::WriteAll(_) => Grant::All(PermissionLevel::Write),
            Permissions::Scopes(scopes, _) => Grant::Scopes(
                scopes
                    .iter()
                    .map(|(scope, level)| (scope.clone(), level.value))
                    .collect(),
            ),
        }
    }

    fn policy(policy: PermissionsPolicy) -> Grant {
        match policy {
            PermissionsPolicy::Write => Grant::All(PermissionLevel::Write),
            PermissionsPolicy::LimitedRead => Grant::Scopes(
                [
                    ("contents", PermissionLevel::Read),
                    ("packages", PermissionLevel::Read),
                ]
                .into_iter()
                .map(|(scope, level)| (scope.to_owned(), level))
                .collect(),
            ),
        }
    }

    fn level(&self, scope: &str) -> PermissionLevel {
        match self {
            Grant::All(level) => *level,
            Grant::Scopes(scopes) => scopes.get(scope).copied().unwrap_or(PermissionLevel::None),
        }
    }

    fn scopes(&self) -> Vec<String> {
        match self {
            Grant::All(_) => ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            Grant::Scopes(scopes) => scopes.keys().cloned().collect(),
        }
    }

    /// The scopes `self` asks for beyond `allowed`: (`scope: wanted`, `scope: allowed`).
    fn beyond(&self, allowed: &Grant) -> Option<(String, String)> {
        let rank = |level: PermissionLevel| match level {
            PermissionLevel::None => 0,
            PermissionLevel::Read => 1,
            PermissionLevel::Write => 2,
        };
        let name = |level: PermissionLevel| match level {
            PermissionLevel::None => "none",
            PermissionLevel::Read => "read",
            PermissionLevel::Write => "write",
        };
        let over: Vec<String> = self
            .scopes()
            .into_iter()
            .filter(|scope| rank(self.level(scope)) > rank(allowed.level(scope)))
            .collect();
        if over.is_empty() {
            return None;
        }
        let list = |grant: &Grant| {
            over.iter()
                .map(|scope| format!("{scope}: {}", name(grant.level(scope))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some((list(self), list(allowed)))
    }
}

fn error(file: &str, span: Span, message: String, hint: Option<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_owned(),
        line: span.line,
        col: span.col,
        severity: Severity::Error,
        message,
        hint,
    }
}

/// Checks the call `job` of `caller_file` makes against the `called` workflow. Diagnostics
/// point into the caller's file (the `uses:`, `with:` or `secrets:` entry at fault).
/// Expression values of `with:` are checked when they are evaluated (by the engine).
pub fn check_call(caller_file: &str, job: &Job, called: &Workflow) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let Some(call) = &job.call else {
        return out;
    };
    let uses = &call.uses;
    let Some(trigger) = &called.on.workflow_call else {
        out.push(error(
            caller_file,
            uses.span,
            format!(
                "`{}` is not a reusable workflow: {} has no `on: workflow_call` trigger",
                uses.value, called.file
            ),
            Some("add `workflow_call` to the `on:` of the called workflow".to_owned()),
        ));
        return out;
    };
    for (name, value) in &call.with {
        let declared = trigger
            .inputs
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(name));
        let span = value_span(value);
        let Some((_, input)) = declared else {
            out.push(error(
                caller_file,
                span,
                format!("invalid input, `{name}` is not defined in the referenced workflow"),
                input_hint(trigger.inputs.keys()),
            ));
            continue;
        };
        if let LiteralOrExpr::Literal(literal) = value
            && !literal_fits(input.input_type, &literal.value)
        {
            out.push(error(
                caller_file,
                span,
                format!(
                    "input `{name}` is a {}, not `{}`",
                    type_name(input.input_type),
                    literal.value.to_display_string()
                ),
                None,
            ));
        }
    }
    for (id, input) in &trigger.inputs {
        let given = call.with.keys().any(|name| name.eq_ignore_ascii_case(id));
        if input.required && !given && input.default.is_none() && input.default_value.is_none() {
            out.push(error(
                caller_file,
                uses.span,
                format!("input `{id}` is required, but not provided while calling"),
                Some(format!("add `{id}` under `with:`")),
            ));
        }
    }
    match &call.secrets {
        Some(WorkflowSecrets::Inherit(_)) => {}
        Some(WorkflowSecrets::Map(secrets, _)) => {
            for (name, value) in secrets {
                if !trigger
                    .secrets
                    .keys()
                    .any(|id| id.eq_ignore_ascii_case(name))
                {
                    out.push(error(
                        caller_file,
                        value.span,
                        format!(
                            "invalid secret, `{name}` is not defined in the referenced workflow"
                        ),
                        None,
                    ));
                }
            }
            missing_secrets(
                caller_file,
                call,
                trigger,
                |id| secrets.keys().any(|name| name.eq_ignore_ascii_case(id)),
                &mut out,
            );
        }
        None => missing_secrets(caller_file, call, trigger, |_| false, &mut out),
    }
    out
}

fn missing_secrets(
    caller_file: &str,
    call: &ReusableWorkflowCall,
    trigger: &crate::WorkflowCall,
    given: impl Fn(&str) -> bool,
    out: &mut Vec<Diagnostic>,
) {
    for (id, secret) in &trigger.secrets {
        if secret.required && !given(id) {
            out.push(error(
                caller_file,
                call.uses.span,
                format!("secret `{id}` is required, but not provided while calling"),
                Some(format!(
                    "add `{id}` under `secrets:`, or `secrets: inherit`"
                )),
            ));
        }
    }
}

fn value_span(value: &LiteralOrExpr<Value>) -> Span {
    match value {
        LiteralOrExpr::Literal(literal) => literal.span,
        LiteralOrExpr::Expr(template) => template.span,
    }
}

fn input_hint<'a>(names: impl Iterator<Item = &'a String>) -> Option<String> {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        Some("the called workflow declares no inputs".to_owned())
    } else {
        Some(format!("declared inputs: {}", names.join(", ")))
    }
}

/// GitHub's rule for literal `with:` values: a string input takes any scalar (`null` is
/// `''`), a boolean input only `true`/`false`, a number input only numbers.
fn literal_fits(input_type: InputType, value: &Value) -> bool {
    match input_type {
        InputType::Boolean => matches!(value, Value::Bool(_)),
        InputType::Number => matches!(value, Value::Number(_)),
        _ => !matches!(value, Value::Array(_) | Value::Object(_)),
    }
}

fn type_name(input_type: InputType) -> &'static str {
    match input_type {
        InputType::Boolean => "boolean",
        InputType::Number => "number",
        _ => "string",
    }
}

/// Checks every call in `workflow` (already loaded from `file`) and, recursively, in the
/// workflows it calls. `resolve` returns the text of a called workflow given the `uses:` of the
/// call and the file that makes it (`None`: not available, and that call is not checked).
/// Called workflows are loaded under their `uses:` text, so their own diagnostics name it.
pub fn check_calls(
    workflow: &Workflow,
    resolve: &dyn Fn(&str, &str) -> Option<String>,
    options: CallCheckOptions,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut chain = vec![workflow.file.clone()];
    let allowed = Grant::policy(options.permissions_policy);
    let tree = Tree {
        resolve,
        options,
        top: None,
    };
    tree.check(workflow, &allowed, &mut chain, &mut out);
    out
}

/// One walk of a call tree.
struct Tree<'a> {
    resolve: &'a dyn Fn(&str, &str) -> Option<String>,
    options: CallCheckOptions,
    /// The file and span of the top-level `uses:` the subtree hangs from, where depth and
    /// cycle errors are reported (GitHub reports them without a position).
    top: Option<(&'a str, Span)>,
}

impl Tree<'_> {
    /// Checks the calls of `workflow`, whose jobs may hold at most `allowed`.
    fn check(
        &self,
        workflow: &Workflow,
        allowed: &Grant,
        chain: &mut Vec<String>,
        out: &mut Vec<Diagnostic>,
    ) {
        for job in workflow.jobs.values() {
            let Some(call) = &job.call else {
                continue;
            };
            let (top_file, top_span) = self.top.unwrap_or((workflow.file.as_str(), call.uses.span));
            let uses = call.uses.value.as_str();
            if chain.iter().any(|c| c == uses) {
                out.push(error(
                    top_file,
                    top_span,
                    format!(
                        "reusable workflows call each other in a cycle: {} -> {uses}",
                        chain.join(" -> ")
                    ),
                    None,
                ));
                continue;
            }
            if chain.len() > self.options.max_depth {
                out.push(error(
                    top_file,
                    top_span,
                    format!(
                        "nested reusable workflow depth exceeded {}: {} -> {uses}",
                        self.options.max_depth,
                        chain.join(" -> ")
                    ),
                    None,
                ));
                continue;
            }
            let Some(text) = (self.resolve)(&workflow.file, uses) else {
                continue;
            };
            let LoadResult {
                workflow: called,
                diagnostics,
            } = crate::load_workflow(uses, &text);
            out.extend(diagnostics);
            let Some(called) = called else {
                continue;
            };
            out.extend(check_call(&workflow.file, job, &called));
            // What the called jobs may hold: the call job's grant, else its workflow's, else
            // what this workflow's jobs got.
            let granted = job
                .permissions
                .as_ref()
                .or(workflow.permissions.as_ref())
                .map_or_else(|| allowed.clone(), Grant::of);
            check_permissions(&workflow.file, job, &called, &granted, out);
            chain.push(uses.to_owned());
            let below = Tree {
                resolve: self.resolve,
                options: self.options,
                top: Some((top_file, top_span)),
            };
            below.check(&called, &granted, chain, out);
            chain.pop();
        }
    }
}

/// Every job of `called` must ask (by its own `permissions:` or its workflow's) for no more
/// than `granted`. Reported at the call job, as GitHub does.
fn check_permissions(
    caller_file: &str,
    job: &Job,
    called: &Workflow,
    granted: &Grant,
    out: &mut Vec<Diagnostic>,
) {
    let uses = job
        .call
        .as_ref()
        .map_or("", |call| call.uses.value.as_str());
    for (id, called_job) in &called.jobs {
        let (requested, who) = match (&called_job.permissions, &called.permissions) {
            (Some(own), _) => {
                let name = called_job
                    .name
                    .as_ref()
                    .map_or(id.as_str(), |name| name.raw.as_str());
                (own, format!("the nested job '{name}'"))
            }
            (None, Some(workflow_level)) => (workflow_level, format!("the workflow '{uses}'")),
            (None, None) => continue,
        };
        if let Some((wanted, allowed)) = Grant::of(requested).beyond(granted) {
            out.push(error(
                caller_file,
                job.id.span,
                format!(
                    "error calling workflow '{uses}': {who} is requesting '{wanted}', but is only allowed '{allowed}'"
                ),
                Some("grant more on the calling job's `permissions:`, or ask for less".to_owned()),
            ));
        }
    }
}
