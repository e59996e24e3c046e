//! Whether one `on:` entry fires for an event: activity types, branch/tag filters on the short
//! ref name, path filters on the changed files, and the per-event rules that tie them together.
//!
//! Owns: [`Trigger`] (the filter keys of one `on.<event>` entry, independent of the YAML
//! model), [`trigger_matches`] and the reasons a trigger does not fire.
//! Must not: parse YAML or evaluate expressions.

use std::fmt;

use crate::event::{Event, RefKind};
use crate::glob::{FilterList, PatternError};

/// One entry of `on:`. A filter that is `None` was not written; `Some(vec![])` was written
/// empty (and then matches nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trigger {
    /// Event name, e.g. `push`.
    pub event: String,
    pub types: Option<Vec<String>>,
    pub branches: Option<Vec<String>>,
    pub branches_ignore: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub tags_ignore: Option<Vec<String>>,
    pub paths: Option<Vec<String>>,
    pub paths_ignore: Option<Vec<String>>,
    /// `schedule` crons; empty for other events.
    pub crons: Vec<String>,
}

/// Why a trigger did not fire for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotTriggered {
    /// The workflow has no trigger for this event name.
    EventNotListed { event: String },
    /// `types:` does not list the event's activity type.
    ActivityType { action: String },
    /// The ref is a tag but only branch filters are given, or the other way round, or the
    /// ref is neither (e.g. `refs/pull/…` on a push).
    RefKindFiltered { git_ref: String },
    /// `branches`/`tags` did not match, or `branches-ignore`/`tags-ignore` did.
    RefFiltered { name: String },
    /// `paths` matched no changed file, or `paths-ignore` covered all of them.
    PathsFiltered,
    /// A `schedule` event for a cron this workflow does not list.
    CronNotListed { cron: String },
    /// A filter pattern could not be compiled, so the trigger never fires.
    BadPattern(Vec<PatternError>),
}

impl fmt::Display for NotTriggered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotTriggered::EventNotListed { event } => {
                write!(f, "the workflow is not triggered by `{event}`")
            }
            NotTriggered::ActivityType { action } => {
                write!(f, "activity type `{action}` is not in `types`")
            }
            NotTriggered::RefKindFiltered { git_ref } => {
                write!(
                    f,
                    "`{git_ref}` is not the kind of ref the filters select (branches vs tags)"
                )
            }
            NotTriggered::RefFiltered { name } => {
                write!(f, "`{name}` is excluded by the branch/tag filters")
            }
            NotTriggered::PathsFiltered => f.write_str("no changed file passes the path filters"),
            NotTriggered::CronNotListed { cron } => {
                write!(f, "cron `{cron}` is not listed in `schedule`")
            }
            NotTriggered::BadPattern(errors) => {
                let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
                write!(f, "invalid filter pattern: {}", texts.join("; "))
            }
        }
    }
}

/// Activity types a `pull_request`/`pull_request_target` trigger selects when `types` is absent.
const PULL_REQUEST_DEFAULT_TYPES: [&str; 3] = ["opened", "synchronize", "reopened"];

/// Decides whether `trigger` fires for `event`. The trigger's event name must equal the
/// event's; callers pick the entry by name.
pub fn trigger_matches(trigger: &Trigger, event: &Event) -> Result<(), NotTriggered> {
    if trigger.event != event.name {
        return Err(NotTriggered::EventNotListed {
            event: event.name.clone(),
        });
    }
    check_types(trigger, event)?;
    match event.name.as_str() {
        "push" => check_push(trigger, event),
        "pull_request" | "pull_request_target" => check_pull_request(trigger, event),
        "schedule" => check_schedule(trigger, event),
        // Other events (`workflow_dispatch`, `workflow_call`, `release`, …) have no filters
        // beyond `types` that this crate can check from an [`Event`].
        _ => Ok(()),
    }
}

fn check_types(trigger: &Trigger, event: &Event) -> Result<(), NotTriggered> {
    let Some(action) = &event.action else {
        return Ok(());
    };
    let listed = match &trigger.types {
        Some(types) => types.iter().any(|t| t == action),
        None if is_pull_request(&event.name) => {
            PULL_REQUEST_DEFAULT_TYPES.contains(&action.as_str())
        }
        None => true,
    };
    if listed {
        Ok(())
    } else {
        Err(NotTriggered::ActivityType {
            action: action.clone(),
        })
    }
}

fn is_pull_request(name: &str) -> bool {
    name == "pull_request" || name == "pull_request_target"
}

fn check_push(trigger: &Trigger, event: &Event) -> Result<(), NotTriggered> {
    let has_branch_filter = trigger.branches.is_some() || trigger.branches_ignore.is_some();
    let has_tag_filter = trigger.tags.is_some() || trigger.tags_ignore.is_some();
    let name = event.ref_name();
    match event.ref_kind() {
        RefKind::Branch => {
            if has_branch_filter {
                check_ref(
                    trigger.branches.as_deref(),
                    trigger.branches_ignore.as_deref(),
                    name,
                )?;
            } else if has_tag_filter {
                return Err(NotTriggered::RefKindFiltered {
                    git_ref: event.git_ref.clone(),
                });
            }
            check_paths(trigger, event)
        }
        RefKind::Tag => {
            if has_tag_filter {
                check_ref(
                    trigger.tags.as_deref(),
                    trigger.tags_ignore.as_deref(),
                    name,
                )?;
            } else if has_branch_filter {
                return Err(NotTriggered::RefKindFiltered {
                    git_ref: event.git_ref.clone(),
                });
            }
            // GitHub does not evaluate path filters for tag pushes (Gitea did until
            // go-gitea/gitea#34223 was fixed).
            Ok(())
        }
        RefKind::Other => {
            if has_branch_filter || has_tag_filter {
                return Err(NotTriggered::RefKindFiltered {
                    git_ref: event.git_ref.clone(),
                });
            }
            check_paths(trigger, event)
        }
    }
}

fn check_pull_request(trigger: &Trigger, event: &Event) -> Result<(), NotTriggered> {
    // Branch filters select the base (target) branch. When it is unknown the filters pass,
    // so that a local `runnel plan --event pull_request` without a payload still plans.
    if let Some(base) = &event.base_ref {
        check_ref(
            trigger.branches.as_deref(),
            trigger.branches_ignore.as_deref(),
            base,
        )?;
    }
    check_paths(trigger, event)
}

fn check_schedule(trigger: &Trigger, event: &Event) -> Result<(), NotTriggered> {
    // `github.event.schedule` names the cron that fired; without it any listed cron will do.
    match event.payload.get("schedule") {
        Some(runnel_expr::Value::String(cron)) => {
            if trigger.crons.iter().any(|c| c == cron) {
                Ok(())
            } else {
                Err(NotTriggered::CronNotListed { cron: cron.clone() })
            }
        }
        _ => Ok(()),
    }
}

/// Positive list must match (if given) and the ignore list must not (if given).
fn check_ref(
    positive: Option<&[String]>,
    ignore: Option<&[String]>,
    name: &str,
) -> Result<(), NotTriggered> {
    if let Some(patterns) = positive
        && !compile(patterns)?.matches(name)
    {
        return Err(NotTriggered::RefFiltered {
            name: name.to_owned(),
        });
    }
    if let Some(patterns) = ignore
        && compile(patterns)?.matches(name)
    {
        return Err(NotTriggered::RefFiltered {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// `paths`: some changed file matches. `paths-ignore`: some changed file is not ignored.
/// Unknown changed files pass. An empty change set fails both (no file matches; every file,
/// vacuously, is ignored).
fn check_paths(trigger: &Trigger, event: &Event) -> Result<(), NotTriggered> {
    let Some(files) = &event.changed_files else {
        return Ok(());
    };
    if let Some(patterns) = &trigger.paths {
        let list = compile(patterns)?;
        if !files.iter().any(|f| list.matches(f)) {
            return Err(NotTriggered::PathsFiltered);
        }
    }
    if let Some(patterns) = &trigger.paths_ignore {
        let list = compile(patterns)?;
        if files.iter().all(|f| list.matches(f)) {
            return Err(NotTriggered::PathsFiltered);
        }
    }
    Ok(())
}

fn compile(patterns: &[String]) -> Result<FilterList, NotTriggered> {
    FilterList::new(patterns).map_err(NotTriggered::BadPattern)
}
