//! Runs every case of GitHub's expression test data (`tests/conformance/*.json`, copied from
//! actions/languageservices with its LICENSE). Cases deliberately not followed are listed in
//! `tests/conformance/EXCEPTIONS.md`; an unlisted failure fails, and so does a listed case that
//! passes, so the list stays honest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use runnel_expr::{EvalContext, EvalOptions, Object, ParseErrorKind, ParseOptions, Value, parse};
use serde_json::Value as Json;

use crate::support::SUCCESS;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

/// Case ids listed in EXCEPTIONS.md as lines of the form "- `file/name#index`: reason".
fn exceptions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(data_dir().join("EXCEPTIONS.md")).unwrap_or_default();
    text.lines()
        .filter_map(|line| line.strip_prefix("- `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(id, _)| id.to_owned())
        .collect()
}

#[test]
fn github_expression_test_data() {
    let exceptions = exceptions();
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    assert!(files.len() >= 28, "test data missing: {files:?}");

    let (mut passed, mut skipped) = (0usize, 0usize);
    let mut failures = Vec::new();
    let mut stale_exceptions = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let data: serde_json::Map<String, Json> = match serde_json::from_str(&text) {
            Ok(data) => data,
            Err(err) => panic!("{stem}: bad JSON: {err}"),
        };
        for (name, cases) in &data {
            for (index, case) in cases.as_array().into_iter().flatten().enumerate() {
                let id = format!("{stem}/{name}#{index}");
                let skip = case.pointer("/options/skip").and_then(Json::as_array);
                if skip.is_some_and(|s| s.iter().any(|k| k == "csharp")) {
                    skipped += 1;
                    continue;
                }
                seen.insert(id.clone());
                let outcome = run_case(case);
                match (outcome, exceptions.contains(&id)) {
                    (Ok(()), false) => passed += 1,
                    (Ok(()), true) => stale_exceptions.push(id),
                    (Err(_), true) => {}
                    (Err(why), false) => failures.push(format!("{id}: {why}")),
                }
            }
        }
    }
    let unknown: Vec<&String> = exceptions.iter().filter(|id| !seen.contains(*id)).collect();
    println!(
        "conformance: {passed} passed, {} listed exceptions, {skipped} skipped (TypeScript-only)",
        exceptions.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        stale_exceptions.is_empty(),
        "listed in EXCEPTIONS.md but passing: {stale_exceptions:?}"
    );
    assert!(
        unknown.is_empty(),
        "EXCEPTIONS.md lists unknown cases: {unknown:?}"
    );
}

fn run_case(case: &Json) -> Result<(), String> {
    let expr = case
        .get("expr")
        .and_then(Json::as_str)
        .ok_or("case without expr")?;
    let contexts = match case.get("contexts") {
        Some(json) => match Value::from_json(json) {
            Value::Object(object) => (*object).clone(),
            _ => return Err("contexts is not an object".to_owned()),
        },
        None => Object::new(),
    };
    let options = ParseOptions {
        named_values: contexts.iter().map(|(k, _)| k.to_owned()).collect(),
        status_functions: false,
        hash_files: false,
        job_status_arguments: false,
    };
    let expected_error = case.get("err").map(|err| {
        let kind = err
            .get("kind")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned();
        let value = err
            .get("value")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned();
        (kind, value)
    });
    let parsed = match parse(expr, &options) {
        Ok(parsed) => parsed,
        Err(err) => {
            let kind = match err.kind {
                ParseErrorKind::Lexing => "lexing",
                ParseErrorKind::Parsing => "parsing",
            };
            return match expected_error {
                Some((want_kind, want)) if want_kind == kind && err.message.contains(&want) => {
                    Ok(())
                }
                _ => Err(format!("unexpected {kind} error: {}", err.message)),
            };
        }
    };
    let cx = EvalContext {
        contexts: &contexts,
        host: &SUCCESS,
    };
    let result = parsed.evaluate_with(&cx, EvalOptions::EXPRESSION);
    match (result, expected_error) {
        (Err(err), Some((kind, want))) if kind == "evaluation" && err.message.contains(&want) => {
            Ok(())
        }
        (Err(err), _) => Err(format!("unexpected evaluation error: {}", err.message)),
        (Ok(value), Some((kind, want))) => Err(format!(
            "expected {kind} error {want:?}, got {}",
            value.to_json()
        )),
        (Ok(value), None) => {
            let want_kind = case
                .pointer("/result/kind")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let want = case.pointer("/result/value").unwrap_or(&Json::Null);
            if value.kind_name() != want_kind {
                return Err(format!(
                    "kind {} (want {want_kind}): {}",
                    value.kind_name(),
                    value.to_json()
                ));
            }
            if !same(&value, want) {
                return Err(format!("value {} (want {want})", value.to_json()));
            }
            Ok(())
        }
    }
}

/// Deep comparison; numbers as f64, where a zero's sign counts only if the data writes `-0`.
fn same(value: &Value, want: &Json) -> bool {
    match (value, want) {
        (Value::Null, Json::Null) => true,
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::Number(a), Json::Number(b)) => {
            let b = b.as_f64().unwrap_or(f64::NAN);
            a == &b && (b != 0.0 || a.is_sign_negative() == b.is_sign_negative())
        }
        (Value::String(a), Json::String(b)) => a == b,
        (Value::Array(a), Json::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Json::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        _ => false,
    }
}
