//! The event a plan is made for: what happened (push, pull request, dispatch, …) and the facts
//! trigger filters and plan-time contexts read from it.
//!
//! Owns: [`Event`] and its constructors with local-run defaults, and the ref helpers
//! (`refs/heads/x` → branch `x`). Must not: read git or the network; callers fill the fields.

use runnel_expr::{Object, Value};

/// Repository name used when the caller knows none (local runs).
pub const DEFAULT_REPOSITORY: &str = "local/repo";
/// Actor used when the caller knows none (local runs).
pub const DEFAULT_ACTOR: &str = "runnel";
/// Commit id used when the caller knows none.
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// An event as seen by trigger matching and by `github` at plan time.
#[derive(Debug, Clone)]
pub struct Event {
    /// Event name as in `on:`: `push`, `pull_request`, `workflow_dispatch`, …
    pub name: String,
    /// Full ref: `refs/heads/main`, `refs/tags/v1`, `refs/pull/1/merge`; empty if none.
    pub git_ref: String,
    pub sha: String,
    /// Activity type (`opened`, `closed`, …); `None` when unknown, in which case `types:`
    /// filters pass (a local run that names only the event should still plan).
    pub action: Option<String>,
    /// Pull requests: the target branch, short name (`main`). `None`: unknown, and base-branch
    /// filters pass.
    pub base_ref: Option<String>,
    /// Pull requests: the source branch, short name.
    pub head_ref: Option<String>,
    /// The webhook payload (`github.event`).
    pub payload: Object,
    /// Files changed by the push or pull request; `None` when unknown, in which case `paths`
    /// filters pass (GitHub also runs the workflow when it cannot compute the diff).
    pub changed_files: Option<Vec<String>>,
    /// `workflow_dispatch`/`workflow_call` inputs as given, all strings (as in
    /// `github.event.inputs`); types and defaults are applied from the workflow.
    pub inputs: Vec<(String, String)>,
    /// Configuration variables (`vars`).
    pub vars: Vec<(String, String)>,
    /// `owner/name`.
    pub repository: String,
    pub actor: String,
}

/// What kind of ref a full ref names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Branch,
    Tag,
    /// `refs/pull/…` and anything else.
    Other,
}

impl Event {
    /// An event with local-run defaults: no ref, zero sha, repository `local/repo`, actor
    /// `runnel`, empty payload, unknown changed files.
    pub fn new(name: &str) -> Event {
        Event {
            name: name.to_owned(),
            git_ref: String::new(),
            sha: ZERO_SHA.to_owned(),
            action: None,
            base_ref: None,
            head_ref: None,
            payload: Object::new(),
            changed_files: None,
            inputs: Vec::new(),
            vars: Vec::new(),
            repository: DEFAULT_REPOSITORY.to_owned(),
            actor: DEFAULT_ACTOR.to_owned(),
        }
    }

    /// A push of `git_ref` (`refs/heads/main`, `refs/tags/v1`; a bare name means a branch).
    pub fn push(git_ref: &str) -> Event {
        let mut event = Event::new("push");
        event.git_ref = full_ref(git_ref);
        event
            .payload
            .insert("ref", Value::String(event.git_ref.clone()));
        event
    }

    /// A pull request from `head` into `base` (short branch names), activity `opened`.
    /// The ref is `refs/pull/1/merge` as on GitHub (the number is unknown locally).
    pub fn pull_request(base: &str, head: &str) -> Event {
        let mut event = Event::new("pull_request");
        event.git_ref = "refs/pull/1/merge".to_owned();
        event.action = Some("opened".to_owned());
        event.base_ref = Some(base.to_owned());
        event.head_ref = Some(head.to_owned());
        let mut base_obj = Object::new();
        base_obj.insert("ref", Value::String(base.to_owned()));
        let mut head_obj = Object::new();
        head_obj.insert("ref", Value::String(head.to_owned()));
        let mut pr = Object::new();
        pr.insert("number", Value::Number(1.0));
        pr.insert("base", Value::Object(base_obj.into()));
        pr.insert("head", Value::Object(head_obj.into()));
        event
            .payload
            .insert("action", Value::String("opened".to_owned()));
        event.payload.insert("number", Value::Number(1.0));
        event
            .payload
            .insert("pull_request", Value::Object(pr.into()));
        event
    }

    /// A manual dispatch on `git_ref` with string inputs (types come from the workflow).
    pub fn workflow_dispatch(git_ref: &str, inputs: &[(&str, &str)]) -> Event {
        let mut event = Event::new("workflow_dispatch");
        event.git_ref = full_ref(git_ref);
        event
            .payload
            .insert("ref", Value::String(event.git_ref.clone()));
        event.inputs = inputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        event
    }

    pub fn ref_kind(&self) -> RefKind {
        ref_kind(&self.git_ref)
    }

    /// `github.ref_name`: the ref without `refs/heads/`, `refs/tags/` or `refs/pull/`
    /// (`1/merge` for pull requests, as GitHub shows it).
    pub fn ref_name(&self) -> &str {
        short_ref(&self.git_ref)
    }
}

/// `main` → `refs/heads/main`; full refs (`refs/...`) and the empty string are kept.
pub fn full_ref(git_ref: &str) -> String {
    if git_ref.is_empty() || git_ref.starts_with("refs/") {
        git_ref.to_owned()
    } else {
        format!("refs/heads/{git_ref}")
    }
}

pub fn ref_kind(git_ref: &str) -> RefKind {
    if git_ref.starts_with("refs/heads/") {
        RefKind::Branch
    } else if git_ref.starts_with("refs/tags/") {
        RefKind::Tag
    } else {
        RefKind::Other
    }
}

pub fn short_ref(git_ref: &str) -> &str {
    ["refs/heads/", "refs/tags/", "refs/pull/"]
        .iter()
        .find_map(|prefix| git_ref.strip_prefix(prefix))
        .unwrap_or(git_ref)
}
