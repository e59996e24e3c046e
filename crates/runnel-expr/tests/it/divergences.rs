//! The cases where peers (act, Gitea, the npm package) diverge from GitHub, from semantics.md
//! section 6, plus a few API-level properties of `Value`.

use runnel_expr::{EvalContext, Object, ParseOptions, Value, parse};

use crate::support::{SUCCESS, contexts, eval, show};

/// (expression, contexts as JSON, expected `Kind:json` or `error: <message prefix>`).
const CASES: &[(&str, &str, &str)] = &[
    // 2: `&&`/`||` return operand values.
    ("true && 'foo' || 'bar'", "{}", r#"String:"foo""#),
    (
        "format('{0}', true && 'foo' || 'bar')",
        "{}",
        r#"String:"foo""#,
    ),
    ("0 || null", "{}", "Null:null"),
    ("'' && 1", "{}", r#"String:"""#),
    // 4: outputs are strings; 'true' is NaN as a number, so it is not == true.
    (
        "steps.x.outputs.out == true",
        r#"{"steps":{"x":{"outputs":{"out":"true"}}}}"#,
        "Boolean:false",
    ),
    (
        "steps.x.outputs.out == true",
        r#"{"steps":{"x":{"outputs":{"out":"1"}}}}"#,
        "Boolean:true",
    ),
    (
        "steps.x.outputs.out == false",
        r#"{"steps":{"x":{"outputs":{"out":"0"}}}}"#,
        "Boolean:true",
    ),
    (
        "steps.x.outputs.out == false",
        r#"{"steps":{"x":{"outputs":{"out":"false"}}}}"#,
        "Boolean:false",
    ),
    (
        "steps.x.outputs.out == 'TRUE'",
        r#"{"steps":{"x":{"outputs":{"out":"true"}}}}"#,
        "Boolean:true",
    ),
    // 6: insertion order and G15 numbers inside toJSON.
    (
        r#"toJSON(fromJSON('{"b":1,"a":[1e20,0.1,-0.0],"C":{}}'))"#,
        "{}",
        r#"String:"{\n  \"b\": 1,\n  \"a\": [\n    1E+20,\n    0.1,\n    0\n  ],\n  \"C\": {}\n}""#,
    ),
    ("toJSON(matrix)", r#"{"matrix":{}}"#, r#"String:"{}""#),
    (
        "toJSON(matrix)",
        r#"{"matrix":{"z":1,"a":"x"}}"#,
        r#"String:"{\n  \"z\": 1,\n  \"a\": \"x\"\n}""#,
    ),
    (
        "toJSON('a\u{2028}\u{1}\"')",
        "{}",
        r#"String:"\"a\\u2028\\u0001\\\"\"""#,
    ),
    // 7: hashFiles goes to the host; the flag and bad options are handled here.
    (
        "hashFiles('**/*.lock', '!x')",
        "{}",
        r#"String:"false:**/*.lock|!x""#,
    ),
    (
        "hashFiles('--follow-symbolic-links', 'a')",
        "{}",
        r#"String:"true:a""#,
    ),
    (
        "hashFiles('--nope', 'a')",
        "{}",
        "error: Invalid glob option --nope",
    ),
    // 8: join on non-arrays.
    ("join('abc')", "{}", r#"String:"abc""#),
    ("join(true, '-')", "{}", r#"String:"true""#),
    ("join(fromJSON('{}'))", "{}", r#"String:"""#),
    (
        "join(fromJSON('[1,2]'), fromJSON('[]'))",
        "{}",
        r#"String:"1,2""#,
    ),
    (
        "join(fromJSON('[1,{},[]]'), ' ')",
        "{}",
        r#"String:"1 Object Array""#,
    ),
    // 19: number literals.
    ("0x1F", "{}", "Number:31"),
    ("0o17", "{}", "Number:15"),
    ("0123", "{}", "Number:123"),
    (".5", "{}", "Number:0.5"),
    ("1.", "{}", "Number:1"),
    ("+1", "{}", "Number:1"),
    ("NaN", "{}", r#"Number:"NaN""#),
    ("Infinity", "{}", r#"Number:"Infinity""#),
    ("0X1F", "{}", "error: Unexpected symbol: '0X1F'"),
    ("0O17", "{}", "error: Unexpected symbol: '0O17'"),
    ("1e309", "{}", "error: Unexpected symbol: '1e309'"),
    ("1e", "{}", "error: Unexpected symbol: '1e'"),
    (
        "0x100000000",
        "{}",
        "error: Unexpected symbol: '0x100000000'",
    ),
    // 20: every doubled quote is one quote.
    ("'a''b''c'", "{}", r#"String:"a'b'c""#),
    // 3: not the grammar.
    ("3 * 24", "{}", "error: Unexpected symbol: '*'"),
    ("1 + 1", "{}", "error: Unexpected symbol: '+'"),
    ("1 +1", "{}", "error: Unexpected symbol: '+1'"),
    ("true ? 1 : 2", "{}", "error: Unexpected symbol: '?'"),
    ("\"foo\"", "{}", "error: Unexpected symbol: '\"foo\"'"),
    ("1 === 1", "{}", "error: Unexpected symbol: '='"),
    // The additional cases at the end of section 6.
    ("'abc' == 'ABC'", "{}", "Boolean:true"),
    ("null == 0", "{}", "Boolean:true"),
    ("'' == false", "{}", "Boolean:true"),
    ("NaN == NaN", "{}", "Boolean:false"),
    ("NaN != NaN", "{}", "Boolean:true"),
    ("fromJSON('[]') == fromJSON('[]')", "{}", "Boolean:false"),
    (
        "github.event == github.event",
        r#"{"github":{"event":{}}}"#,
        "Boolean:true",
    ),
    ("contains('Hello', 'ell')", "{}", "Boolean:true"),
    ("contains(fromJSON('[\"A\"]'), 'a')", "{}", "Boolean:true"),
    ("contains(fromJSON('[1,2]'), '1')", "{}", "Boolean:true"),
    (
        "contains(fromJSON('{\"a\":1}'), 'a')",
        "{}",
        "Boolean:false",
    ),
    ("format('{{0}}', 1)", "{}", r#"String:"{0}""#),
    (
        "format('{0', 1)",
        "{}",
        "error: The following format string is invalid: {0",
    ),
    (
        "format('{0:x}', 1)",
        "{}",
        "error: The format specifiers 'x' are not valid for objects of type 'Number'",
    ),
    (
        "format('{1}', 1)",
        "{}",
        "error: The following format string references more arguments",
    ),
    (
        "format('{0}{0}', fromJSON('[1]'))",
        "{}",
        r#"String:"ArrayArray""#,
    ),
    (
        "github.event.commits.*.author.name",
        r#"{"github":{"event":{"commits":[]}}}"#,
        "Array:[]",
    ),
    (
        "join(github.event.commits.*.author.name)",
        r#"{"github":{"event":{"commits":[]}}}"#,
        r#"String:"""#,
    ),
    ("steps.missing.outputs.x", r#"{"steps":{}}"#, "Null:null"),
    (
        "format('[{0}]', steps.missing.outputs.x)",
        r#"{"steps":{}}"#,
        r#"String:"[]""#,
    ),
    ("case(true, 1, 0)", "{}", "Number:1"),
    (
        "case('x', 1, 0)",
        "{}",
        "error: case predicate must evaluate to a boolean value",
    ),
    // Property, index and wildcard rules (1.3).
    ("a['1']", r#"{"a":[10,20]}"#, "Number:20"),
    ("a[1.9]", r#"{"a":[10,20]}"#, "Number:20"),
    ("a[-1]", r#"{"a":[10,20]}"#, "Null:null"),
    ("a[1]", r#"{"a":{"1":"one"}}"#, r#"String:"one""#),
    ("a.B.c", r#"{"a":{"b":{"C":3}}}"#, "Number:3"),
    ("a.true", r#"{"a":{"true":1}}"#, "Number:1"),
    ("a.x.y", r#"{"a":"text"}"#, "Null:null"),
    ("a.*", r#"{"a":"text"}"#, "Array:[]"),
    (
        "needs.*.result",
        r#"{"needs":{"a":{"result":"success"},"b":{"result":"failure"},"c":{}}}"#,
        r#"Array:["success","failure"]"#,
    ),
    ("a.*.*", r#"{"a":[[1,2],{"x":3},4]}"#, "Array:[1,2,3]"),
    (
        "a.*[0]",
        r#"{"a":[[1,2],{"0":"z"},[]]}"#,
        r#"Array:[1,"z"]"#,
    ),
    ("(a.* || 1).x", r#"{"a":[{"x":1},{"y":2}]}"#, "Array:[1]"),
    ("fromJSON('[{\"x\":1}]').*.x", "{}", "Array:[1]"),
    // Comparisons (1.4).
    ("'a' < 'B'", "{}", "Boolean:true"),
    ("'b' >= 'B'", "{}", "Boolean:true"),
    ("true > false", "{}", "Boolean:true"),
    ("null <= false", "{}", "Boolean:true"),
    ("'0x10' == 16", "{}", "Boolean:true"),
    ("' 12 ' == 12", "{}", "Boolean:true"),
    ("fromJSON('[]') == 0", "{}", "Boolean:false"),
    ("!fromJSON('[]')", "{}", "Boolean:false"),
    ("startsWith('Hello', 'HE')", "{}", "Boolean:true"),
    ("endsWith(12, 2)", "{}", "Boolean:true"),
    ("endsWith(fromJSON('[\"a\"]'), 'a')", "{}", "Boolean:false"),
    ("fromJSON('')", "{}", "error: Error parsing fromJson"),
    ("fromJSON(' ')", "{}", "error: Error parsing fromJson"),
    ("fromJSON('{')", "{}", "error: Error parsing fromJson"),
    ("fromJSON('1 2')", "{}", "Number:1"),
    ("fromJSON(' true\n')", "{}", "Boolean:true"),
    ("fromJSON('{\"a\":1, \"A\":2}').a", "{}", "Number:2"),
];

#[test]
fn section_six_cases() {
    let mut failures = Vec::new();
    for (expr, json, want) in CASES {
        let got = match eval(expr, &contexts(json)) {
            Ok(value) => show(&value),
            Err(message) => format!("error: {message}"),
        };
        let ok = match want.strip_prefix("error: ") {
            Some(prefix) => got.starts_with("error: ") && got[7..].starts_with(prefix),
            None => got == *want,
        };
        if !ok {
            failures.push(format!("{expr}\n   got:  {got}\n   want: {want}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn to_json_for_presentation() {
    let cases = [
        (Value::Number(f64::NAN), r#""NaN""#),
        (Value::Number(f64::INFINITY), r#""Infinity""#),
        (Value::Number(f64::NEG_INFINITY), r#""-Infinity""#),
        (Value::Number(-0.0), "0"),
        (Value::Number(1.5), "1.5"),
        (Value::Number(3.0), "3"),
    ];
    for (value, want) in cases {
        assert_eq!(value.to_json().to_string(), want);
    }
    let object = contexts(r#"{"b":1,"a":{"z":null,"y":[true]}}"#);
    assert_eq!(
        Value::Object(object.into()).to_json().to_string(),
        r#"{"b":1,"a":{"z":null,"y":[true]}}"#
    );
}

#[test]
fn object_is_case_insensitive_and_ordered() {
    let mut object = Object::new();
    object.insert("Path", Value::Number(1.0));
    object.insert("home", Value::Number(2.0));
    object.insert("PATH", Value::Number(3.0));
    let keys: Vec<&str> = object.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["Path", "home"]);
    assert_eq!(object.get("path").map(show), Some("Number:3".to_owned()));
    assert_eq!(object.get("HOME").map(show), Some("Number:2".to_owned()));
    assert!(object.get("nope").is_none());
}

#[test]
fn truthiness_and_kinds() {
    let falsy = [
        Value::Null,
        Value::Bool(false),
        Value::Number(0.0),
        Value::Number(-0.0),
    ];
    assert!(falsy.iter().all(|v| !v.is_truthy()));
    assert!(!Value::Number(f64::NAN).is_truthy());
    assert!(!Value::String(String::new()).is_truthy());
    let truthy = ["'false'", "'0'", "fromJSON('[]')", "fromJSON('{}')", "-1"];
    for expr in truthy {
        assert!(
            eval(expr, &Object::new()).is_ok_and(|v| v.is_truthy()),
            "{expr}"
        );
    }
}

#[test]
fn named_values_and_functions_follow_options() {
    let only_github = ParseOptions {
        named_values: vec!["GitHub".to_owned()],
        ..Default::default()
    };
    assert!(parse("github.sha", &only_github).is_ok());
    let err = parse("env.X", &only_github)
        .err()
        .map(|e| (e.message, e.offset));
    assert_eq!(
        err,
        Some((
            "Unrecognized named-value: 'env'. Located at position 1 within expression: env.X"
                .to_owned(),
            0
        ))
    );
    let err = parse("1 == always()", &only_github)
        .err()
        .map(|e| (e.message, e.offset));
    assert_eq!(
        err,
        Some(("Unrecognized function: 'always'. Located at position 6 within expression: 1 == always()".to_owned(), 5))
    );
    assert!(parse("hashFiles('x')", &only_github).is_err());
    assert!(parse("TOJSON(github)", &only_github).is_ok());
    let parsed = parse("success() || github.x", &ParseOptions::permissive());
    assert!(parsed.as_ref().is_ok_and(|e| e.has_status_function()));
    assert_eq!(
        parsed.map(|e| e.named_values()).ok(),
        Some(vec!["github".to_owned()])
    );
}

#[test]
fn canonical_text() {
    let cases = [
        ("github.sha", "github.sha"),
        (
            "a['b c'] == 1 && !x || y.*",
            "(((a['b c'] == 1) && !x) || y.*)",
        ),
        ("toJSON( a [ 0 ] )", "toJSON(a[0])"),
        ("a && b && (c && d)", "(a && b && c && d)"),
    ];
    for (expr, want) in cases {
        let parsed = parse(
            expr,
            &ParseOptions {
                named_values: ["a", "b", "c", "d", "x", "y", "github"]
                    .map(String::from)
                    .to_vec(),
                ..Default::default()
            },
        );
        assert_eq!(
            parsed.map(|e| e.to_string()).ok().as_deref(),
            Some(want),
            "{expr}"
        );
    }
}

#[test]
fn empty_expression_is_null() {
    let parsed = parse("   ", &ParseOptions::default());
    let cx = EvalContext {
        contexts: &Object::new(),
        host: &SUCCESS,
    };
    assert!(parsed.as_ref().is_ok_and(|e| e.is_empty()));
    assert_eq!(
        parsed
            .ok()
            .and_then(|e| e.evaluate(&cx).ok())
            .map(|v| show(&v)),
        Some("Null:null".to_owned())
    );
}
