//! Trigger matching table (`tests/data/triggers.json`).

use runnel_plan::{Event, Trigger, trigger_matches};

use crate::support::{event, load, strings};

fn optional_list(case: &serde_json::Value, key: &str) -> Option<Vec<String>> {
    case.get(key).map(strings)
}

fn trigger(json: &serde_json::Value) -> Trigger {
    Trigger {
        event: json["event"].as_str().unwrap_or_default().to_owned(),
        types: optional_list(json, "types"),
        branches: optional_list(json, "branches"),
        branches_ignore: optional_list(json, "branches-ignore"),
        tags: optional_list(json, "tags"),
        tags_ignore: optional_list(json, "tags-ignore"),
        paths: optional_list(json, "paths"),
        paths_ignore: optional_list(json, "paths-ignore"),
        crons: json.get("crons").map(strings).unwrap_or_default(),
    }
}

#[test]
fn trigger_table() {
    let cases = load("triggers.json");
    let mut failures = Vec::new();
    for case in cases.as_array().into_iter().flatten() {
        let doc = case["doc"].as_str().unwrap_or("?");
        let expected = case["fires"].as_bool().unwrap_or_default();
        let outcome = trigger_matches(&trigger(&case["trigger"]), &event(&case["event"]));
        if outcome.is_ok() != expected {
            failures.push(format!("{doc}: expected fires={expected}, got {outcome:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn reasons_are_readable() {
    let trigger = Trigger {
        event: "push".to_owned(),
        tags: Some(vec!["v*".to_owned()]),
        ..Trigger::default()
    };
    let reason = trigger_matches(&trigger, &Event::push("main"))
        .err()
        .map(|r| r.to_string());
    assert_eq!(
        reason.as_deref(),
        Some("`refs/heads/main` is not the kind of ref the filters select (branches vs tags)")
    );
}

#[test]
fn event_helpers() {
    let push = Event::push("main");
    assert_eq!(push.git_ref, "refs/heads/main");
    assert_eq!(push.ref_name(), "main");
    assert_eq!(Event::push("refs/tags/v1").ref_name(), "v1");
    assert_eq!(Event::pull_request("main", "x").ref_name(), "1/merge");
    assert_eq!(Event::new("push").repository, "local/repo");
    assert_eq!(Event::new("push").actor, "runnel");
    assert_eq!(Event::new("push").sha.len(), 40);
}
