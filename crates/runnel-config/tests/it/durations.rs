//! Durations: Go's grammar as `config.yaml` reads it, and the named extensions command lines
//! use (`DurationGrammar`).

use std::time::Duration;

use runnel_config::{DurationGrammar, format_duration, parse_duration, parse_duration_with};

#[test]
fn durations_read_like_go() {
    let cases: &[(&str, Option<Duration>)] = &[
        ("3h", Some(Duration::from_secs(10800))),
        ("5s", Some(Duration::from_secs(5))),
        ("1h30m", Some(Duration::from_secs(5400))),
        ("1.5s", Some(Duration::from_millis(1500))),
        ("500ms", Some(Duration::from_millis(500))),
        ("250us", Some(Duration::from_micros(250))),
        ("0s", Some(Duration::ZERO)),
        ("0", Some(Duration::ZERO)),
        ("1000000000", Some(Duration::from_secs(1))),
        ("", None),
        ("-1s", None),
        ("5", Some(Duration::from_nanos(5))),
        ("5x", None),
        ("s", None),
        ("1h 30m", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_duration(text).ok(), *expected, "{text:?}");
    }
    for text in ["3h", "1m30s", "500ms", "0s", "2h0m5s", "1.5s"] {
        let parsed = parse_duration(text).unwrap_or_default();
        assert_eq!(
            parse_duration(&format_duration(parsed)).ok(),
            Some(parsed),
            "{text}"
        );
    }
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
}

/// One grammar, Go's, read three ways: `config.yaml` (bare integers are nanoseconds), command
/// line ages (days and weeks, a unit always), and what each refuses, with its reason.
#[test]
fn duration_grammar_extensions() {
    const DAY: u64 = 86_400;
    let config = DurationGrammar::CONFIG;
    let age = DurationGrammar::AGE;
    type Case = (
        &'static str,
        DurationGrammar,
        Result<Duration, &'static str>,
    );
    let cases: &[Case] = &[
        // Every value `runnel cache prune --older-than` took before the grammars were one.
        ("7d", age, Ok(Duration::from_secs(7 * DAY))),
        ("2w", age, Ok(Duration::from_secs(14 * DAY))),
        ("36h", age, Ok(Duration::from_secs(36 * 3600))),
        ("90s", age, Ok(Duration::from_secs(90))),
        ("15m", age, Ok(Duration::from_secs(900))),
        ("0s", age, Ok(Duration::ZERO)),
        (" 7d ", age, Ok(Duration::from_secs(7 * DAY))),
        // Go's grammar holds there too.
        ("1d12h", age, Ok(Duration::from_secs(DAY + 12 * 3600))),
        ("1.5d", age, Ok(Duration::from_secs(DAY + 12 * 3600))),
        ("500ms", age, Ok(Duration::from_millis(500))),
        ("0", age, Ok(Duration::ZERO)),
        // A bare number: nanoseconds in config.yaml, a missing unit on the command line.
        ("7", config, Ok(Duration::from_nanos(7))),
        ("7", age, Err("invalid duration `7`: missing unit")),
        // Days and weeks only where named.
        (
            "7d",
            config,
            Err("invalid duration `7d`: unknown unit `d` (use ns, us, ms, s, m or h)"),
        ),
        (
            "7y",
            age,
            Err("invalid duration `7y`: unknown unit `y` (use ns, us, ms, s, m, h, d or w)"),
        ),
        ("d", age, Err("invalid duration `d`: expected a number")),
        ("-1d", age, Err("negative duration `-1d`")),
        ("", age, Err("empty duration")),
    ];
    let mut wrong = Vec::new();
    for (text, grammar, expected) in cases {
        let parsed = parse_duration_with(text, *grammar).map_err(|e| e.to_string());
        if parsed != expected.map_err(str::to_owned) {
            wrong.push(format!(
                "{text:?} ({grammar:?}): {parsed:?}, expected {expected:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
