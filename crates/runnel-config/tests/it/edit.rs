//! `runnel_config::edit`: `config get|set|add|remove` on a file's text, which keeps every line
//! it does not change.

use runnel_config::edit::{self, EditError, KeyShape};

const FILE: &str = "\
# My runner.
log:
  level: info   # quiet

runner:
  # How many at once.
  capacity: 2
  labels:
    - ubuntu-latest:docker://node:20   # the main one
    - linux:host
  envs: {}

container:
  options: '--cpus 2'
";

fn values(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn get_prints_values_lists_and_mappings() {
    assert_eq!(edit::get(FILE, "log.level").as_deref(), Ok("info"));
    assert_eq!(
        edit::get(FILE, "container.options").as_deref(),
        Ok("--cpus 2")
    );
    assert_eq!(
        edit::get(FILE, "runner.labels").as_deref(),
        Ok("ubuntu-latest:docker://node:20\nlinux:host")
    );
    assert_eq!(
        edit::get("runner:\n  envs:\n    A: 1\n    B: two\n", "runner.envs").as_deref(),
        Ok("A=1\nB=two")
    );
    assert_eq!(
        edit::get(FILE, "runner.timeout"),
        Err(EditError::NotSet("runner.timeout".to_owned()))
    );
    let nested = edit::get(FILE, "runner").expect("a section");
    assert!(
        nested.starts_with("# How many at once.\ncapacity: 2\nlabels:\n  - ubuntu"),
        "{nested}"
    );
}

#[test]
fn unknown_keys_name_the_valid_ones() {
    let Err(EditError::UnknownKey { key, valid }) = edit::get(FILE, "runner.capacityy") else {
        panic!("expected an unknown key");
    };
    assert_eq!(key, "runner.capacityy");
    assert!(
        valid.contains("capacity") && valid.contains("labels"),
        "{valid}"
    );
    assert!(matches!(
        edit::key_shape("nope"),
        Err(EditError::UnknownKey { .. })
    ));
    assert_eq!(
        edit::key_shape("runner.envs.FOO"),
        Ok(KeyShape::Scalar(edit::ValueKind::Text))
    );
    assert_eq!(edit::key_shape("runner"), Ok(KeyShape::Section));
    assert_eq!(edit::key_shape("runner.labels"), Ok(KeyShape::List));
}

/// Each edit: the key, its values, and the file after it (only the changed lines differ).
#[test]
fn set_changes_only_the_lines_of_its_key() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "log.level",
            &["debug"],
            "# My runner.\nlog:\n  level: debug # quiet\n",
        ),
        ("runner.capacity", &["4"], "  capacity: 4\n"),
        // A duration is written in its shortest form, a boolean as true/false.
        (
            "runner.timeout",
            &["90m"],
            "  envs: {}\n  timeout: 1h30m\n\ncontainer:",
        ),
        (
            "container.privileged",
            &["T"],
            "  options: '--cpus 2'\n  privileged: true\n",
        ),
        // A new section goes at the end, after a blank line.
        (
            "metrics.enabled",
            &["true"],
            "  options: '--cpus 2'\n\nmetrics:\n  enabled: true\n",
        ),
        (
            "log.job.dir",
            &["/var/log/jobs"],
            "  level: info   # quiet\n  job:\n    dir: /var/log/jobs\n\nrunner:",
        ),
        // Values that would read as something else are quoted.
        (
            "runner.envs.DEBUG",
            &["yes"],
            "  envs:\n    DEBUG: 'yes'\n\ncontainer:",
        ),
        ("runner.github_mirror", &[""], "  github_mirror: ''\n"),
        (
            "container.options",
            &["--add-host a:1.2.3.4"],
            "  options: '--add-host a:1.2.3.4'\n",
        ),
        (
            "runner.labels",
            &["big:host"],
            "  capacity: 2\n  labels:\n    - big:host\n  envs: {}\n",
        ),
    ];
    for (key, args, expected) in cases {
        let edited = edit::set(FILE, key, &values(args)).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(edited.contains(expected), "{key}: {edited}");
        // Whatever was not the key is still there.
        for kept in ["# My runner.", "  # How many at once.", "runner:"] {
            assert!(edited.contains(kept), "{key} lost {kept:?}: {edited}");
        }
        assert!(
            runnel_config::Config::parse("config.yaml", &edited).is_ok(),
            "{edited}"
        );
    }
}

#[test]
fn add_and_remove_edit_a_list_line_by_line() {
    let added = edit::add(FILE, "runner.labels", &values(&["gpu:host"])).expect("added");
    assert!(
        added.contains("    - linux:host\n    - gpu:host\n  envs: {}"),
        "{added}"
    );
    assert!(added.contains("# the main one"));
    let removed = edit::remove(&added, "runner.labels", &values(&["linux:host"])).expect("removed");
    assert!(
        removed.contains("    - ubuntu-latest:docker://node:20   # the main one\n    - gpu:host\n"),
        "{removed}"
    );
    let emptied = edit::remove(
        &removed,
        "runner.labels",
        &values(&["gpu:host", "ubuntu-latest:docker://node:20"]),
    )
    .expect("emptied");
    assert!(emptied.contains("  labels: []\n"), "{emptied}");
    // Missing: created.
    let created =
        edit::add(FILE, "container.valid_volumes", &values(&["/data", "**"])).expect("created");
    assert!(
        created.contains("  valid_volumes:\n    - /data\n    - '**'\n"),
        "{created}"
    );
    // Flow lists are rewritten as block lists.
    let flow = edit::add(
        "runner:\n  labels: [a, b]\n",
        "runner.labels",
        &values(&["c"]),
    )
    .expect("flow");
    assert_eq!(flow, "runner:\n  labels:\n    - a\n    - b\n    - c\n");
}

#[test]
fn wrong_edits_are_refused_with_the_reason() {
    let cases: &[(&str, &str, &[&str], &str)] = &[
        (
            "set",
            "runner",
            &["x"],
            "`runner` is a section, set one of its keys instead",
        ),
        (
            "set",
            "runner.capacity",
            &["1", "2"],
            "`runner.capacity` takes exactly one value",
        ),
        (
            "set",
            "runner.capacity",
            &["many"],
            "`runner.capacity`: `many` is not an integer",
        ),
        (
            "set",
            "runner.timeout",
            &["soon"],
            "`runner.timeout`: `soon` is not a duration such as 30s, 5m or 3h",
        ),
        (
            "set",
            "runner.insecure",
            &["maybe"],
            "`runner.insecure`: `maybe` is not a boolean (true or false)",
        ),
        (
            "add",
            "runner.capacity",
            &["3"],
            "`runner.capacity` is not a list, use `config set` instead",
        ),
        (
            "add",
            "runner.labels",
            &["linux:host"],
            "`runner.labels` already contains `linux:host`",
        ),
        (
            "remove",
            "runner.labels",
            &["mac:host"],
            "`runner.labels` does not contain `mac:host`",
        ),
        (
            "remove",
            "container.valid_volumes",
            &["x"],
            "`container.valid_volumes` is not set",
        ),
        (
            "set",
            "log.level",
            &["loud"],
            "the edit would make a config runnel cannot load",
        ),
    ];
    for (verb, key, args, expected) in cases {
        let args = values(args);
        let result = match *verb {
            "set" => edit::set(FILE, key, &args),
            "add" => edit::add(FILE, key, &args),
            _ => edit::remove(FILE, key, &args),
        };
        let error = result.expect_err(key).to_string();
        assert!(error.starts_with(expected), "{verb} {key}: {error}");
    }
}

#[test]
fn an_empty_or_comment_only_file_gets_the_key() {
    let text = runnel_config::MINIMAL_CONFIG;
    let edited = edit::set(text, "runner.capacity", &values(&["3"])).expect("set");
    assert!(edited.starts_with(text), "{edited}");
    assert!(edited.ends_with("\nrunner:\n  capacity: 3\n"), "{edited}");
    assert_eq!(
        edit::set("", "runner.capacity", &values(&["3"])).as_deref(),
        Ok("runner:\n  capacity: 3\n")
    );
    // CRLF files stay CRLF.
    let crlf = edit::set(
        "runner:\r\n  capacity: 1\r\n",
        "runner.capacity",
        &values(&["2"]),
    );
    assert_eq!(crlf.as_deref(), Ok("runner:\r\n  capacity: 2\r\n"));
}

/// Every key `config set` takes is one runnel reads (no "unknown key" warning), and every key of
/// the Gitea runner v3.3 fixture is one `config set` takes.
#[test]
fn the_edit_table_and_the_reader_agree() {
    let fixture = include_str!("../data/gitea-runner-v3.3.yaml");
    let parsed = runnel_yaml::parse(fixture);
    let root = parsed.root.expect("a document");
    let mut paths = Vec::new();
    collect_leaf_paths("", &root, &mut paths);
    assert!(paths.len() > 60, "{paths:?}");
    for path in paths.iter().filter(|p| *p != "runner.envs") {
        let shape = edit::key_shape(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_ne!(shape, KeyShape::Section, "{path}");
    }
}

#[test]
fn every_key_of_the_edit_table_is_read() {
    for (path, _) in edit::keys() {
        let segments: Vec<&str> = path.split('.').collect();
        let mut text = String::new();
        for (depth, segment) in segments.iter().enumerate() {
            text.push_str(&format!("{}{segment}:\n", "  ".repeat(depth)));
        }
        let messages: Vec<String> = match runnel_config::Config::parse("config.yaml", &text) {
            Ok(loaded) => loaded.warnings.iter().map(ToString::to_string).collect(),
            Err(runnel_config::ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(other) => panic!("{path}: {other}"),
        };
        assert!(
            messages.iter().all(|m| !m.contains("unknown key")),
            "{path}: {messages:?}"
        );
    }
}

fn collect_leaf_paths(prefix: &str, node: &runnel_yaml::Node, out: &mut Vec<String>) {
    if let runnel_yaml::NodeKind::Mapping(entries) = &node.kind
        && (prefix.is_empty() || edit::key_shape(prefix) == Ok(KeyShape::Section))
        && prefix != "runner.envs"
    {
        for (key, value) in entries {
            let key = key.scalar_text().unwrap_or_default();
            let path = match prefix {
                "" => key.to_owned(),
                _ => format!("{prefix}.{key}"),
            };
            collect_leaf_paths(&path, value, out);
        }
        return;
    }
    out.push(prefix.to_owned());
}

/// Odd files get an answer or an error, never a panic.
#[test]
fn odd_files_never_panic() {
    let texts = [
        "",
        "\n\n",
        "# only\n",
        "runner: {capacity: 1}\n",
        "runner: [1, 2]\n",
        "runner: 3\n",
        "? runner\n: {capacity: 1}\n",
        "runner:\n  labels: [a, b]\n",
        "runner:\n  labels:\n  - a\n  - b\nlog:\n  level: info\n",
        "runner:\n  capacity: |\n    2\n",
        "\"runner\":\n  \"capacity\": 1 # c\n",
        "runner:\r\n  envs: {}\r\n",
        "- a\n- b\n",
        "runner:\n  capacity: 1\n  capacity: 2\n",
        "runner:\n\tcapacity: 1\n",
        "ünïcode: ✓\nrunner:\n  name: 'é: x' # ✓\n",
    ];
    let keys = [
        ("runner.capacity", vec!["2"]),
        ("runner.labels", vec!["x:host", "y"]),
        ("runner.envs.A", vec!["b"]),
        ("log.job.dir", vec!["/tmp"]),
        ("container.valid_volumes", vec!["**"]),
    ];
    for text in texts {
        for (key, args) in &keys {
            let args = values(args);
            let _ = edit::get(text, key);
            let _ = edit::set(text, key, &args);
            let _ = edit::add(text, key, &args);
            let _ = edit::remove(text, key, &args);
        }
    }
    assert_eq!(
        edit::set(
            "runner: {capacity: 1}\n",
            "runner.timeout",
            &values(&["1h"])
        ),
        Err(EditError::Flow("runner".to_owned()))
    );
    // Items at the key's own indentation.
    let flush = "runner:\n  labels:\n  - a\n  - b\nlog:\n  level: info\n";
    assert_eq!(
        edit::add(flush, "runner.labels", &values(&["c"])).as_deref(),
        Ok("runner:\n  labels:\n  - a\n  - b\n  - c\nlog:\n  level: info\n")
    );
    assert_eq!(
        edit::remove(flush, "runner.labels", &values(&["a"])).as_deref(),
        Ok("runner:\n  labels:\n  - b\nlog:\n  level: info\n")
    );
    assert_eq!(
        edit::set(flush, "runner.labels", &values(&["z"])).as_deref(),
        Ok("runner:\n  labels:\n    - z\nlog:\n  level: info\n")
    );
}
