//! Filter patterns against GitHub's cheat-sheet examples (`tests/data/glob.json`).

use runnel_plan::{FilterList, FilterPattern, PatternError};

use crate::support::{load, strings};

#[test]
fn cheat_sheet_table() {
    let cases = load("glob.json");
    let mut failures = Vec::new();
    for case in cases.as_array().into_iter().flatten() {
        let doc = case["doc"].as_str().unwrap_or("?");
        let patterns = strings(&case["patterns"]);
        let list = match FilterList::new(&patterns) {
            Ok(list) => list,
            Err(e) => {
                failures.push(format!("{doc}: does not compile: {e:?}"));
                continue;
            }
        };
        for text in strings(&case["match"]) {
            if !list.matches(&text) {
                failures.push(format!("{doc}: {patterns:?} should match {text:?}"));
            }
        }
        for text in strings(&case["no_match"]) {
            if list.matches(&text) {
                failures.push(format!("{doc}: {patterns:?} should not match {text:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bad_patterns_are_errors() {
    assert!(matches!(
        FilterPattern::new("feature/[a-z"),
        Err(PatternError::UnclosedClass { .. })
    ));
    assert!(matches!(
        FilterPattern::new("x\\"),
        Err(PatternError::TrailingEscape { .. })
    ));
    assert!(matches!(
        FilterPattern::new("[z-a]"),
        Err(PatternError::ReversedRange { .. })
    ));
    assert!(matches!(
        FilterPattern::new("!"),
        Err(PatternError::Empty { .. })
    ));
    let errors = FilterList::new(&["[".to_owned(), "ok".to_owned(), "\\".to_owned()])
        .err()
        .unwrap_or_default();
    assert_eq!(errors.len(), 2, "every bad pattern is reported");
}

#[test]
fn negation_is_reported() {
    let pattern = FilterPattern::new("!docs/**").ok();
    assert_eq!(pattern.as_ref().map(FilterPattern::is_negated), Some(true));
    assert_eq!(
        pattern.as_ref().map(|p| p.matches("docs/a")),
        Some(true),
        "matches ignores the negation"
    );
}

#[test]
fn long_inputs_stay_fast() {
    // Many stars against a long non-matching name: memoisation keeps this linear-ish.
    let pattern = FilterPattern::new("*a*a*a*a*a*a*a*a*b").ok();
    let text = "a".repeat(300);
    assert_eq!(pattern.map(|p| p.matches(&text)), Some(false));
}
