//! Differential test of expressions: `runnel eval` against GitHub's `@actions/expressions`.
//!
//! `tests/oracle/gen-expr.mjs` writes a context and several thousand expressions (fixed seed);
//! `tests/oracle/eval-expr.mjs` evaluates them with the npm package and `runnel eval` evaluates
//! the same lines. Results must agree value for value (two errors agree; messages may differ).
//!
//! The generator is JavaScript rather than Rust so the cases can be produced and replayed with
//! node alone (`node gen-expr.mjs --context-out c.json | node eval-expr.mjs --context c.json`)
//! while investigating a disagreement, and so the test here stays a plain comparison.
//!
//! Where GitHub's runner (C#, what runnel follows) is known to differ from the npm package, the
//! oracle marks the case with a note while evaluating it; `EXCEPTIONS` excuses a disagreement
//! only when its note is present, and every excuse is counted in the printed summary.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{oracle_or_skip, run_expecting, runnel};

/// A reasoned, known divergence between GitHub's runner and the npm package.
struct Exception {
    reason: &'static str,
    applies: fn(&Case) -> bool,
}

const EXCEPTIONS: &[Exception] = &[
    Exception {
        reason: "number to string: runner uses .NET G15 (1E+20, 1E-05, 15 digits), \
                 npm uses toFixed(15) (semantics.md 1.5)",
        applies: |case| case.has_note("number-format"),
    },
    Exception {
        reason: "text to number: runner reads 0x/0o as signed 32-bit, lowercase prefixes only, \
                 no 0b, no overflowing literals; npm uses JS Number() (semantics.md 1.1)",
        applies: |case| case.has_note("number-parse"),
    },
    Exception {
        reason: "'' in string literals: npm unescapes only the first one, the runner all \
                 (semantics.md 6 item 20)",
        applies: |case| case.has_note("quote-unescape"),
    },
    Exception {
        reason: "format specifiers ({0:x}, {0,5}, {0 }): runner rejects them, npm ignores \
                 what follows the index (semantics.md 1.6)",
        applies: |case| case.has_note("format-specifier"),
    },
    Exception {
        reason: "numbers inside toJSON: runner writes G15 and NaN/Infinity, JSON.stringify \
                 writes 1e+21 and null (semantics.md 1.6)",
        applies: |case| case.has_note("tojson-number"),
    },
    Exception {
        reason: "object key order: JS objects put integer-like keys first, the runner keeps \
                 insertion order",
        applies: |case| case.has_note("integer-key-order"),
    },
    Exception {
        reason: "duplicate JSON keys: which one wins differs between JSON.parse, the npm \
                 Dictionary and the runner",
        applies: |case| case.has_note("duplicate-key"),
    },
    Exception {
        reason: "fromJSON of a value followed by more text ('1 2'): the runner reads the first \
                 value and ignores the rest (JToken.ReadFrom), JSON.parse rejects it",
        applies: |case| case.has_note("json-trailing-text"),
    },
    Exception {
        reason: "lazy arguments: the runner's functions evaluate an argument only when needed \
                 (format's unreferenced args, join's separator, case's other branches…), \
                 npm evaluates all first (runner Sdk/Functions/*.cs)",
        applies: |case| case.has_note("lazy-arguments"),
    },
    Exception {
        reason: "max depth 50: the runner measures the built tree (parentheses add no node), \
                 npm counts parser nesting (runner ExpressionParser.CheckMaxDepth)",
        applies: |case| case.has_note("max-depth"),
    },
    Exception {
        reason: "empty expression: the runner's parser returns no tree and runnel answers null; \
                 the npm parser returns nothing to evaluate (the oracle reports an error)",
        applies: |case| case.expr.trim().is_empty(),
    },
];

/// What one side made of one expression.
enum Outcome {
    Value(Value),
    Error(String),
    /// A line that is neither `{"ok": …}` nor `{"error": …}`; never agrees with anything.
    Malformed(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Value(value) => write!(f, "ok {value}"),
            Outcome::Error(message) => write!(f, "error {message:?}"),
            Outcome::Malformed(line) => write!(f, "malformed line {line:?}"),
        }
    }
}

struct Case<'a> {
    expr: &'a str,
    oracle: Outcome,
    notes: Vec<String>,
    runnel: Outcome,
}

impl Case<'_> {
    fn has_note(&self, note: &str) -> bool {
        self.notes.iter().any(|n| n == note)
    }
}

#[test]
fn expressions_agree_with_actions_expressions() {
    let Some(oracle) = oracle_or_skip("oracle_expr") else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let context_file = dir.path().join("context.json");
    let cases_file = dir.path().join("cases.jsonl");

    let mut generate = oracle.node("gen-expr.mjs");
    generate.arg("--context-out").arg(&context_file);
    let generated = run_expecting(generate, None, &[0]);
    std::fs::write(&cases_file, &generated.stdout).expect("cases written to the temp dir");
    let exprs: Vec<String> = lines(&generated.stdout)
        .map(|line| {
            let request: Value = serde_json::from_str(line).expect("generator writes JSON");
            request["expr"]
                .as_str()
                .expect("generator writes expr strings")
                .to_owned()
        })
        .collect();
    assert!(exprs.len() >= 5000, "only {} generated cases", exprs.len());

    let mut npm = oracle.node("eval-expr.mjs");
    npm.arg("--context").arg(&context_file);
    let npm_out = run_expecting(npm, Some(&cases_file), &[0]);

    let mut ours = runnel();
    ours.arg("eval").arg("--context").arg(&context_file);
    let ours_out = run_expecting(ours, Some(&cases_file), &[0, 1]);

    let npm_lines: Vec<&str> = lines(&npm_out.stdout).collect();
    let our_lines: Vec<&str> = lines(&ours_out.stdout).collect();
    assert_eq!(
        npm_lines.len(),
        exprs.len(),
        "the npm oracle wrote one line per case"
    );
    assert_eq!(
        our_lines.len(),
        exprs.len(),
        "`runnel eval` must write one line per input line\nstderr:\n{}",
        String::from_utf8_lossy(&ours_out.stderr)
    );

    let cases: Vec<Case<'_>> = exprs
        .iter()
        .zip(npm_lines.iter().zip(&our_lines))
        .map(|(expr, (npm_line, our_line))| {
            let (oracle, notes) = parse_result_line(npm_line);
            let (runnel, _) = parse_result_line(our_line);
            Case {
                expr,
                oracle,
                notes,
                runnel,
            }
        })
        .collect();

    let mut agree = 0usize;
    let mut excepted: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut disagree: Vec<&Case<'_>> = Vec::new();
    for case in &cases {
        if outcomes_agree(&case.oracle, &case.runnel) {
            agree += 1;
        } else if let Some(exception) = EXCEPTIONS.iter().find(|e| (e.applies)(case)) {
            *excepted.entry(exception.reason).or_default() += 1;
        } else {
            disagree.push(case);
        }
    }

    println!(
        "expression oracle: {} cases: {agree} agree, {} excepted, {} disagree",
        cases.len(),
        excepted.values().sum::<usize>(),
        disagree.len()
    );
    for (reason, count) in &excepted {
        println!("  excepted {count:>5}: {reason}");
    }
    for case in disagree.iter().take(20) {
        println!(
            "  DISAGREE {}\n      npm:    {}{}\n      runnel: {}",
            shorten(case.expr),
            case.oracle,
            if case.notes.is_empty() {
                String::new()
            } else {
                format!(" notes {:?}", case.notes)
            },
            case.runnel
        );
    }
    assert!(
        disagree.is_empty(),
        "{} expressions disagree with @actions/expressions without a listed reason (first 20 above)",
        disagree.len()
    );
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(bytes)
        .expect("JSON lines are UTF-8")
        .split('\n')
        .filter(|line| !line.trim().is_empty())
}

/// Reads `{"ok": V}` / `{"error": M}` (plus the oracle's optional `"notes"`).
fn parse_result_line(line: &str) -> (Outcome, Vec<String>) {
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(line) else {
        return (Outcome::Malformed(line.to_owned()), Vec::new());
    };
    let notes = match fields.remove("notes") {
        Some(Value::Array(notes)) => notes
            .into_iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let outcome = match (fields.remove("ok"), fields.remove("error")) {
        (Some(value), None) => Outcome::Value(value),
        (None, Some(Value::String(message))) => Outcome::Error(message),
        _ => Outcome::Malformed(line.to_owned()),
    };
    (outcome, notes)
}

fn outcomes_agree(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Value(x), Outcome::Value(y)) => same_value(x, y),
        (Outcome::Error(_), Outcome::Error(_)) => true,
        _ => false,
    }
}

/// JSON equality where numbers compare as f64 (so `1e20`, `100000000000000000000` and
/// `-0.0`/`0` match) and object keys must come in the same order.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
        }
        _ => a == b,
    }
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 160;
    match text.char_indices().nth(LIMIT) {
        Some((at, _)) => format!("{:?}… ({} chars)", &text[..at], text.chars().count()),
        None => format!("{text:?}"),
    }
}

#[test]
fn same_value_compares_numbers_as_doubles_and_keeps_key_order() {
    let parse = |text: &str| serde_json::from_str::<Value>(text).expect("valid JSON");
    assert!(same_value(&parse("1e20"), &parse("100000000000000000000")));
    assert!(same_value(&parse("[-0.0]"), &parse("[0]")));
    assert!(!same_value(&parse("1"), &parse("\"1\"")));
    assert!(!same_value(
        &parse(r#"{"a":1,"b":2}"#),
        &parse(r#"{"b":2,"a":1}"#)
    ));
    assert!(outcomes_agree(
        &Outcome::Error("x".into()),
        &Outcome::Error("y".into())
    ));
    let (outcome, notes) = parse_result_line(r#"{"ok":"NaN","notes":["number-parse"]}"#);
    assert!(matches!(outcome, Outcome::Value(Value::String(s)) if s == "NaN"));
    assert_eq!(notes, ["number-parse"]);
    assert!(matches!(parse_result_line("{}").0, Outcome::Malformed(_)));
}
