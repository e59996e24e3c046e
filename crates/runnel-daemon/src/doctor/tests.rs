//! The doctor's findings that need no network: each case is a config (and maybe a `.runner`)
//! in a fresh directory and the findings expected, in order, as `VERDICT check: detail`
//! prefixes. Gitea and Docker are never reached: no case has both a registration with a
//! reachable address and a `docker://` label.

use std::path::Path;

use super::{DoctorOptions, Finding, Verdict, disk_finding, doctor, parse_df};

/// Runs the doctor on `config` (and `.runner` text) in a temporary directory, where `{dir}` in
/// either names that directory; compares the findings (first line of each) with `expect`.
/// An expectation starting with `*` matches any verdict (free disk space is the machine's).
fn check(config: &str, runner_file: Option<&str>, expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = |name: &str| dir.path().join(name);
    let fill = |text: &str| text.replace("{dir}", &dir.path().display().to_string());
    let config_path = path("config.yaml");
    std::fs::write(&config_path, fill(config)).unwrap_or_else(|e| panic!("{e}"));
    if let Some(text) = runner_file {
        std::fs::write(path(".runner"), fill(text)).unwrap_or_else(|e| panic!("{e}"));
    }
    let options = DoctorOptions {
        config_path: Some(config_path),
        version: "runnel-test".to_owned(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let findings = runtime.block_on(doctor(&options));
    let seen: Vec<String> = findings
        .iter()
        .map(|finding| fill_back(&summary(finding), dir.path()))
        .collect();
    let matches = seen.len() == expect.len()
        && seen
            .iter()
            .zip(expect)
            .all(|(seen, expected)| match expected.strip_prefix('*') {
                Some(any_verdict) => seen
                    .split_once(' ')
                    .is_some_and(|(_, rest)| rest.starts_with(any_verdict.trim_start())),
                None => seen.starts_with(expected),
            });
    assert!(matches, "expected:\n{expect:#?}\nfound:\n{seen:#?}");
}

fn summary(finding: &Finding) -> String {
    let verdict = match finding.verdict {
        Verdict::Ok => "ok",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
        Verdict::Skip => "skip",
    };
    let first = finding.detail.lines().next().unwrap_or_default();
    format!("{verdict} {}: {first}", finding.check)
}

/// `text` with the test's directory written as `{dir}` again.
fn fill_back(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "{dir}")
}

/// Keeps every directory the disk check looks at inside the test's directory.
const DIRS: &str = "host:\n  workdir_parent: {dir}/work\ncache:\n  dir: {dir}/cache\n";

#[test]
fn a_config_with_a_type_error_fails_and_defaults_stand_in() {
    check(
        "runner:\n  capacity: lots\n",
        None,
        &[
            "FAIL config: config file {dir}/config.yaml is not valid:",
            "FAIL registration: .runner is missing: the runner is not registered",
            "skip gitea: not checked: no registration to check it with",
            "skip docker: not needed: no docker:// label",
            "skip kubernetes: not needed: no kubernetes:// label",
            "* disk: work dir ",
            "* disk: cache dir ",
            "* disk: state dir .: ",
        ],
    );
}

#[test]
fn an_unknown_key_warns_and_a_missing_registration_fails() {
    check(
        &format!("{DIRS}runner:\n  file: {{dir}}/.runner\n  capasity: 2\n"),
        None,
        &[
            "ok config: {dir}/config.yaml parses",
            "WARN config: {dir}/config.yaml:7:3",
            "FAIL registration: {dir}/.runner is missing: the runner is not registered",
            "skip gitea: not checked: no registration to check it with",
            "skip docker: not needed: no docker:// label",
            "skip kubernetes: not needed: no kubernetes:// label",
            "* disk: work dir {dir}/work: ",
            "* disk: cache dir {dir}/cache: ",
            "* disk: state dir {dir}: ",
        ],
    );
}

#[test]
fn an_unreadable_registration_fails() {
    check(
        &format!("{DIRS}runner:\n  file: {{dir}}/.runner\n"),
        Some("this is not json"),
        &[
            "ok config: {dir}/config.yaml parses",
            "FAIL registration: ",
            "skip gitea: not checked: no registration to check it with",
            "skip docker: not needed: no docker:// label",
            "skip kubernetes: not needed: no kubernetes:// label",
            "* disk: work dir",
            "* disk: cache dir",
            "* disk: state dir",
        ],
    );
}

#[test]
fn a_bad_label_warns_and_none_valid_fails() {
    // The registration names a server nobody answers on; no label is valid, so no host tools
    // and no Docker are looked at.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| format!("http://{a}"))
        .unwrap_or_else(|e| panic!("{e}"));
    check(
        &format!("{DIRS}runner:\n  file: {{dir}}/.runner\n  labels: [':host']\n"),
        Some(&format!(
            r#"{{"id": 7, "uuid": "u", "name": "r", "token": "t", "address": "{closed}", "labels": []}}"#
        )),
        &[
            "ok config: {dir}/config.yaml parses",
            "ok registration: {dir}/.runner holds runner \"r\" (id 7) of http://127.0.0.1:",
            "WARN labels: label `:host` has an empty name; the daemon skips it",
            "FAIL labels: no valid label: the daemon refuses to start",
            "FAIL gitea: http://127.0.0.1:",
            "skip docker: not needed: no docker:// label",
            "skip kubernetes: not needed: no kubernetes:// label",
            "* disk: work dir",
            "* disk: cache dir",
            "* disk: state dir",
        ],
    );
}

#[test]
fn disk_space_thresholds() {
    let dir = Path::new("/w");
    let verdict = |free| disk_finding("work dir", dir, free).verdict;
    assert_eq!(verdict(Ok(10 << 30)), Verdict::Ok);
    assert_eq!(verdict(Ok(2 << 30)), Verdict::Warn);
    assert_eq!(verdict(Ok(1 << 20)), Verdict::Fail);
    assert_eq!(verdict(Err("gone".to_owned())), Verdict::Warn);
    let finding = disk_finding("cache dir", dir, Ok(3 << 29));
    assert_eq!(finding.detail, "cache dir /w: 1.5 GiB free");
    assert_eq!(
        finding.fix.as_deref(),
        Some("free space on the file system of /w, or point the config's cache dir elsewhere")
    );
}

#[test]
fn df_available_column() {
    let text = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/sda1        102400000  51200000  40960000      56% /\n";
    assert_eq!(parse_df(text), Some(40_960_000 * 1024));
    assert_eq!(parse_df("header only\n"), None);
}
