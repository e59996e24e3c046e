//! `${{ }}` templates and `if:` conditions (semantics.md 1.8, 1.9), plus robustness: limits,
//! deep input and a deterministic random-input run that must never panic.

use runnel_expr::{
    EvalContext, IfCondition, JobStatus, Object, ParseOptions, Template, Value, parse,
};

use crate::support::{SUCCESS, TestHost, contexts, show};

fn options() -> ParseOptions {
    ParseOptions {
        named_values: ["github", "steps", "matrix"].map(String::from).to_vec(),
        ..Default::default()
    }
}

fn template(text: &str) -> Result<String, String> {
    let cx_data = contexts(r#"{"github":{"ref":"refs/heads/main","n":3},"matrix":{}}"#);
    let cx = EvalContext {
        contexts: &cx_data,
        host: &SUCCESS,
    };
    let parsed =
        Template::parse(text, &options()).map_err(|e| format!("{}@{}", e.message, e.offset))?;
    let kind = match &parsed {
        Template::Literal(_) => "literal",
        Template::Whole(_) => "whole",
        Template::Interpolated(_) => "interpolated",
    };
    let value = parsed.evaluate(&cx).map_err(|e| e.message)?;
    Ok(format!("{kind} {}", show(&value)))
}

#[test]
fn templates() {
    let cases: &[(&str, &str)] = &[
        ("plain text", r#"literal String:"plain text""#),
        ("${{ 1 }}", "whole Number:1"),
        ("${{ github.n }}", "whole Number:3"),
        ("${{ fromJSON('[1]') }}", "whole Array:[1]"),
        ("${{ matrix }}", "whole Object:{}"),
        ("${{ 'lit' }}", r#"literal String:"lit""#),
        ("${{ '${{' }}", r#"literal String:"${{""#),
        ("${{ 'it''s' }}", r#"literal String:"it's""#),
        ("a ${{ 1 }} b", r#"interpolated String:"a 1 b""#),
        (" ${{ 1 }}", r#"interpolated String:" 1""#),
        ("${{ 1 }}${{ 2 }}", r#"interpolated String:"12""#),
        (
            "${{ 1.0 }}/${{ 1e20 }}/${{ 1e-5 }}",
            r#"interpolated String:"1/1E+20/1E-05""#,
        ),
        (
            "x${{ true && 'foo' || 'bar' }}",
            r#"interpolated String:"xfoo""#,
        ),
        ("${{ format('{0}}}', 'x') }}", r#"whole String:"x}""#),
        (
            "${{ '}}' }} and ${{ github.ref }}",
            r#"interpolated String:"}} and refs/heads/main""#,
        ),
        (
            "{0} ${{ 'q' }} '{1}'",
            r#"interpolated String:"{0} q '{1}'""#,
        ),
        (
            "${{ fromJSON('[1]') }} x",
            r#"interpolated String:"Array x""#,
        ),
        ("${{ github.nope }}x", r#"interpolated String:"x""#),
        ("${{ 1 }}}", r#"interpolated String:"1}""#),
        (
            "${{ 1",
            "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found.@0",
        ),
        ("ab ${{ }}", "An expression was expected@3"),
        (
            "ab ${{  foo }}",
            "Unrecognized named-value: 'foo'. Located at position 1 within expression: foo@8",
        ),
        (
            "é ${{ 1 < ) }}",
            "Unexpected symbol: ')'. Located at position 5 within expression: 1 < )@10",
        ),
    ];
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = template(text).unwrap_or_else(|e| e);
        if got != *want {
            failures.push(format!("{text}\n   got:  {got}\n   want: {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn condition(text: &str, status: JobStatus, data: &str) -> Result<bool, String> {
    let cx_data = contexts(data);
    let host = TestHost { status };
    let cx = EvalContext {
        contexts: &cx_data,
        host: &host,
    };
    let parsed = IfCondition::parse(text, &options()).map_err(|e| e.message)?;
    parsed.evaluate(&cx).map_err(|e| e.message)
}

#[test]
fn if_conditions() {
    use JobStatus::{Cancelled, Failure, Success};
    let outputs = r#"{"steps":{"x":{"outputs":{"flag":"false","empty":""}}},"github":{"ref":"refs/heads/main"}}"#;
    let cases: &[(&str, JobStatus, bool)] = &[
        ("", Success, true),
        ("  ", Failure, false),
        ("true", Success, true),
        ("true", Failure, false),
        ("false", Success, false),
        ("${{ false }}", Success, false),
        ("${{ 'false' }}", Success, false),
        // Text around `${{ }}` makes a non-empty string: always true (plus `success() &&`).
        ("${{ false }} ", Success, true),
        ("${{ false }}\n", Success, true),
        ("${{ false }} == 'x'", Success, true),
        ("${{ false }} == 'x'", Failure, false),
        ("${{ '' }}${{ '' }}", Success, false),
        ("${{ !always() }} '", Failure, true),
        ("github.ref == 'refs/heads/main'", Success, true),
        ("${{ github.ref == 'refs/heads/main' }}", Failure, false),
        ("steps.x.outputs.flag", Success, true),
        ("steps.x.outputs.empty", Success, false),
        ("always()", Failure, true),
        ("always()", Cancelled, true),
        ("failure()", Failure, true),
        ("failure()", Success, false),
        ("!cancelled()", Failure, true),
        ("!cancelled()", Cancelled, false),
        ("cancelled()", Cancelled, true),
        ("success() || github.ref == 'x'", Failure, false),
        ("github.ref == 'x' || ALWAYS()", Failure, true),
        ("${{ failure() }} x", Failure, true),
        ("success()", Cancelled, false),
    ];
    let mut failures = Vec::new();
    for (text, status, want) in cases {
        let got = condition(text, *status, outputs);
        if got != Ok(*want) {
            failures.push(format!("{text:?} ({status:?}): got {got:?}, want {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn if_condition_shape() {
    let parsed = IfCondition::parse("github.ref == 'x'", &options());
    assert!(parsed.as_ref().is_ok_and(|c| !c.has_status_function()));
    assert_eq!(
        parsed.map(|c| c.expr().to_string()).ok().as_deref(),
        Some("(success() && (github.ref == 'x'))")
    );
    let parsed = IfCondition::parse(
        "${{ a && b || always() }}",
        &ParseOptions {
            named_values: vec!["a".to_owned(), "b".to_owned()],
            ..Default::default()
        },
    );
    assert!(parsed.is_ok_and(|c| c.has_status_function()));
    let err = IfCondition::parse("env.X == 1", &options())
        .err()
        .map(|e| (e.message, e.offset));
    assert_eq!(
        err,
        Some((
            "Unrecognized named-value: 'env'. Located at position 1 within expression: env.X == 1"
                .to_owned(),
            0
        ))
    );
}

#[test]
fn limits() {
    let permissive = ParseOptions::permissive();
    let long = format!("'{}'", "a".repeat(20_998));
    assert!(parse(&long, &permissive).is_ok());
    let too_long = format!("'{}'", "a".repeat(20_999));
    assert_eq!(
        parse(&too_long, &permissive).err().map(|e| e.message),
        Some("Exceeded max expression length 21000".to_owned())
    );
    // Depth 50 is fine alone but not inside text, where the runner wraps it in format().
    let deep = format!("{}true", "!".repeat(49));
    assert!(parse(&deep, &permissive).is_ok());
    assert!(Template::parse(&format!("${{{{ {deep} }}}}"), &permissive).is_ok());
    assert_eq!(
        Template::parse(&format!("x ${{{{ {deep} }}}}"), &permissive)
            .err()
            .map(|e| e.message),
        Some("Exceeded max expression depth 50".to_owned())
    );
}

/// Inputs far past the limits must fail cleanly, quickly and without deep recursion.
#[test]
fn hostile_input() {
    let permissive = ParseOptions::permissive();
    let inputs = [
        "(".repeat(20_000),
        ")".repeat(20_000),
        format!("{}1", "!".repeat(20_000)),
        format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("github{}", ".a".repeat(10_000)),
        format!("github{}", "[0]".repeat(6_000)),
        format!("{}1{}", "format('{0}', ".repeat(1_000), ")".repeat(1_000)),
        (0..4_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(" && "),
        (0..3_000).map(|i| format!("({i}")).collect::<String>() + &")".repeat(3_000),
        (0..2_000).map(|i| format!("{i} && (")).collect::<String>() + "1" + &")".repeat(2_000),
        "'".repeat(21_000),
        "😊".repeat(5_000),
    ];
    for input in &inputs {
        let _ = parse(input, &permissive);
        let _ = Template::parse(input, &permissive);
        let _ = IfCondition::parse(input, &permissive);
    }
    let braces = format!(r#"{{"s":"{}"}}"#, "}}".repeat(20_000));
    let value = crate::support::eval("format(s)", &contexts(&braces));
    assert_eq!(
        value.map(|v| v.to_display_string().len()).ok(),
        Some(20_000)
    );
    let chain = (0..2_000)
        .map(|i| (i + 1).to_string())
        .collect::<Vec<_>>()
        .join(" && ");
    let cx = EvalContext {
        contexts: &Object::new(),
        host: &SUCCESS,
    };
    let value = parse(&chain, &permissive)
        .ok()
        .and_then(|e| e.evaluate(&cx).ok());
    assert_eq!(value.map(|v| show(&v)), Some("Number:2000".to_owned()));
}

/// A small deterministic generator standing in for the fuzzer: random token soup, parsed and
/// evaluated; nothing may panic.
#[test]
fn random_input_never_panics() {
    const PIECES: &[&str] = &[
        "github",
        "a",
        ".",
        "*",
        "[",
        "]",
        "(",
        ")",
        ",",
        "'x'",
        "''",
        "'",
        "1",
        "-1.5",
        "0x1f",
        "!",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "&",
        "=",
        "null",
        "true",
        "NaN",
        "format(",
        "'{0}{{}}'",
        "'{1}'",
        "join(",
        "toJSON(",
        "fromJSON(",
        "'[1,{\"b\":[]}]'",
        "contains(",
        "startsWith(",
        "case(",
        "success()",
        "hashFiles(",
        "${{",
        "}}",
        " ",
        "é",
        "😊",
        "b",
        "event",
        "1e400",
        ":",
    ];
    let data =
        contexts(r#"{"github":{"event":{"a":[1,{"b":"x"}],"b":null},"x":"1"},"a":[[1],{"b":2}]}"#);
    let cx = EvalContext {
        contexts: &data,
        host: &SUCCESS,
    };
    let permissive = ParseOptions::permissive();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parsed_ok = 0;
    for _ in 0..20_000 {
        let len = usize::try_from(next() % 12).unwrap_or(0) + 1;
        let mut text = String::new();
        for _ in 0..len {
            let pick = usize::try_from(next() % PIECES.len() as u64).unwrap_or(0);
            text.push_str(PIECES.get(pick).copied().unwrap_or(""));
        }
        if let Ok(expr) = parse(&text, &permissive) {
            parsed_ok += 1;
            if let Ok(value) = expr.evaluate(&cx) {
                let _ = (
                    value.to_display_string(),
                    value.to_pretty_json(),
                    value.to_json(),
                );
            }
        }
        if let Ok(template) = Template::parse(&text, &permissive) {
            let _ = template.evaluate(&cx);
        }
        if let Ok(condition) = IfCondition::parse(&text, &permissive) {
            let _ = condition.evaluate(&cx);
        }
    }
    assert!(parsed_ok > 500, "generator too weak: {parsed_ok}");
    let _ = Value::Null;
}
