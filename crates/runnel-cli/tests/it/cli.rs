//! The command-line contract other tools and tests rely on: `runnel eval` (one expression, or
//! JSON lines in and out) and `runnel validate` (exit codes, `file:line:col: error:` lines,
//! `--format json`). Quick: no Node, no network.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{run, run_expecting, runnel};

fn eval_one(expr: &str) -> Value {
    let mut command = runnel();
    command.args(["eval", expr]);
    let output = run_expecting(command, None, &[0]);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "`runnel eval {expr:?}` printed no JSON ({e}): {:?}",
            output.stdout
        )
    })
}

#[test]
fn eval_prints_the_value_of_one_expression_as_json() {
    assert_eq!(eval_one("1 == 1"), json!(true));
    assert_eq!(eval_one("format('{0}-{1}', 'a', 1)"), json!("a-1"));
    assert_eq!(
        eval_one("fromJSON('[1,\"b\",null,{\"c\":false}]')"),
        json!([1, "b", null, {"c": false}])
    );
    assert_eq!(eval_one("null"), json!(null));
    assert_eq!(eval_one("0.5"), json!(0.5));
    assert_eq!(eval_one("NaN"), json!("NaN"));
}

#[test]
fn eval_of_an_invalid_expression_fails() {
    for expr in ["1 +", "nope.x", "fromJSON('{')"] {
        let mut command = runnel();
        command.args(["eval", expr]);
        let output = run(command, None);
        assert!(
            !output.status.success(),
            "`runnel eval {expr:?}` should fail"
        );
    }
}

#[test]
fn eval_uses_the_context_file() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let context = dir.path().join("context.json");
    std::fs::write(
        &context,
        r#"{"github": {"ref": "refs/heads/main", "event": {"n": 3}}}"#,
    )
    .expect("context written");
    let mut command = runnel();
    command
        .arg("eval")
        .arg("--context")
        .arg(&context)
        .arg("github.event.n >= 3 && github.REF");
    let output = run_expecting(command, None, &[0]);
    let value: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(value, json!("refs/heads/main"));
}

#[test]
fn eval_json_lines_answers_every_line_in_order() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let context = dir.path().join("context.json");
    std::fs::write(&context, r#"{"env": {"N": "12"}}"#).expect("context written");
    let requests = [
        json!({"expr": "env.N == 12"}),
        json!({"expr": "NaN"}),
        json!({"expr": "Infinity"}),
        json!({"expr": "-Infinity"}),
        json!({"expr": "fromJSON('x')"}),
        json!({"expr": "1 +"}),
        json!({"expr": "a.b", "context": {"a": {"b": [1, "c"]}}}),
        json!({"expr": "a.b"}),
        json!({"expr": "success() && !failure() && always() && !cancelled()"}),
        json!({"expr": "toJSON(fromJSON('{\"k\":[]}'))"}),
    ];
    let input = dir.path().join("requests.jsonl");
    let text: String = requests.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&input, text).expect("requests written");

    let mut command = runnel();
    command.arg("eval").arg("--context").arg(&context);
    let output = run_expecting(command, Some(&input), &[0, 1]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let results: Vec<Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    let error = || json!({"error": "<any message>"});
    let expected = [
        json!({"ok": true}),
        json!({"ok": "NaN"}),
        json!({"ok": "Infinity"}),
        json!({"ok": "-Infinity"}),
        error(),
        error(),
        json!({"ok": [1, "c"]}),
        error(),
        json!({"ok": true}),
        json!({"ok": "{\n  \"k\": []\n}"}),
    ];
    assert_eq!(
        results.len(),
        expected.len(),
        "one result line per request:\n{stdout}"
    );
    for ((request, got), want) in requests.iter().zip(&results).zip(&expected) {
        if want.get("error").is_some() {
            assert!(
                got.get("error").and_then(Value::as_str).is_some() && got.get("ok").is_none(),
                "{request}: expected an error line, got {got}"
            );
        } else {
            assert_eq!(got, want, "{request}");
        }
    }
}

const GOOD_WORKFLOW: &str = "\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo hello
";

/// An unknown key in a step, on line 7: GitHub's parser rejects it.
const BAD_WORKFLOW: &str = "\
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo hello
        bogus-key: 1
";

fn validate(args: &[&Path], format_json: bool) -> std::process::Output {
    let mut command = runnel();
    command.arg("validate");
    if format_json {
        command.args(["--format", "json"]);
    }
    command.args(args);
    run(command, None)
}

#[test]
fn validate_exits_0_on_a_clean_workflow() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let good = dir.path().join("good.yml");
    std::fs::write(&good, GOOD_WORKFLOW).expect("workflow written");
    let output = validate(&[&good], false);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn validate_exits_1_and_names_file_line_col_on_an_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, BAD_WORKFLOW).expect("workflow written");
    let output = validate(&[&bad], false);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{printed}");
    let located = printed.lines().any(|line| {
        line.split_once("bad.yml:7:").is_some_and(|(_, rest)| {
            rest.split_once(": error: ")
                .is_some_and(|(col, _)| col.chars().all(|c| c.is_ascii_digit()) && !col.is_empty())
        })
    });
    assert!(
        located,
        "expected a `bad.yml:7:<col>: error: …` line in:\n{printed}"
    );
}

#[test]
fn validate_json_reports_each_file_of_a_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("good.yml"), GOOD_WORKFLOW).expect("workflow written");
    std::fs::write(dir.path().join("bad.yml"), BAD_WORKFLOW).expect("workflow written");
    let output = validate(&[dir.path()], true);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let files = report["files"].as_array().expect("a `files` array");
    assert_eq!(files.len(), 2, "{report}");
    for entry in files {
        let file = entry["file"].as_str().expect("a `file` string");
        let diagnostics = entry["diagnostics"]
            .as_array()
            .expect("a `diagnostics` array");
        if file.ends_with("good.yml") {
            assert_eq!(entry["ok"], json!(true), "{entry}");
        } else {
            assert!(file.ends_with("bad.yml"), "{entry}");
            assert_eq!(entry["ok"], json!(false), "{entry}");
            let error = diagnostics
                .iter()
                .find(|d| d["severity"] == json!("error"))
                .unwrap_or_else(|| panic!("no error diagnostic in {entry}"));
            assert_eq!(error["line"], json!(7), "{entry}");
            assert!(
                error["col"].as_u64().is_some() && error["message"].is_string(),
                "{entry}"
            );
        }
    }
}

/// The Gitea runner's command lines put `-c` before the verb (`act_runner -c config.yaml
/// daemon`); runnel takes it there as well as after the verb.
#[test]
fn the_config_file_may_come_before_the_verb() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "runner:\n  file: no-such.runner\n").expect("config");
    let config = config.display().to_string();
    for args in [
        vec!["-c", config.as_str(), "daemon"],
        vec!["daemon", "-c", config.as_str()],
        vec!["--config", config.as_str(), "daemon", "--once"],
    ] {
        let mut command = runnel();
        command.current_dir(dir.path()).args(&args);
        let output = run_expecting(command, None, &[2]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The config was read: its `runner.file` is the one the daemon looked for.
        assert!(stderr.contains("no-such.runner"), "{args:?}: {stderr}");
    }
}

/// `container.require_docker: true` and no engine: the daemon does not start (as the Gitea
/// runner), instead of running host jobs only.
#[test]
fn require_docker_without_an_engine_stops_the_daemon() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "container:\n  require_docker: yes\n  docker_host: unix:///nonexistent/docker.sock\n  \
         docker_timeout: 1s\n",
    )
    .expect("config");
    let mut command = runnel();
    command
        .current_dir(dir.path())
        .args(["-c", "config.yaml", "daemon"]);
    let output = run_expecting(command, None, &[2]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("container.require_docker is set and Docker is not available"),
        "{stderr}"
    );
}
