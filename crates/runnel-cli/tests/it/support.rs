//! Shared helpers: where the repository and the oracle scripts are, how to start `runnel` and
//! `node`, and the `RUN_SLOW_TESTS` gate that decides whether an oracle test runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root (the workspace holding `crates/`).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/oracle/`: the npm packages and the node scripts that drive them.
pub(crate) fn oracle_dir() -> PathBuf {
    repo_root().join("tests/oracle")
}

/// A command running the `runnel` binary built for this test run.
pub(crate) fn runnel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_runnel"))
}

/// Starts `command` with its stdout piped; its lines arrive on the receiver as they are
/// printed (for tests that act in the middle of a run: a signal once a step has started).
pub(crate) fn spawn_with_lines(
    mut command: Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, received)
}

/// Runs a command with stdin from `stdin_file` (or nothing), capturing stdout and stderr.
pub(crate) fn run(mut command: Command, stdin_file: Option<&Path>) -> Output {
    let stdin = match stdin_file {
        Some(path) => Stdio::from(
            std::fs::File::open(path)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display())),
        ),
        None => Stdio::null(),
    };
    let description = format!("{command:?}");
    command
        .stdin(stdin)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {description}: {e}"))
}

/// Runs a command and fails the test, showing stderr, unless it exits with one of `codes`.
pub(crate) fn run_expecting(command: Command, stdin_file: Option<&Path>, codes: &[i32]) -> Output {
    let description = format!("{command:?}");
    let output = run(command, stdin_file);
    let code = output.status.code().unwrap_or(-1);
    assert!(
        codes.contains(&code),
        "{description} exited with {code}, expected one of {codes:?}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Node and the installed npm oracles, ready to run.
pub(crate) struct Oracle {
    node: OsString,
}

impl Oracle {
    /// A `node` command running `script` (a path relative to `tests/oracle/`).
    pub(crate) fn node(&self, script: &str) -> Command {
        let mut command = Command::new(&self.node);
        command.arg(oracle_dir().join(script));
        command
    }
}

/// Decides whether an oracle test runs.
///
/// Without `RUN_SLOW_TESTS` the test is skipped with a printed note (it needs Node and the npm
/// packages, which a plain `cargo test` must not require). With it, a missing Node or missing
/// packages fail the test: CI sets the variable after `tests/oracle/setup.sh`, and a silent pass
/// there would hide a broken oracle.
pub(crate) fn oracle_or_skip(test: &str) -> Option<Oracle> {
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        eprintln!(
            "note: skipping {test}: set RUN_SLOW_TESTS=1 after tests/oracle/setup.sh to run it"
        );
        return None;
    }
    let node = std::env::var_os("RUNNEL_ORACLE_NODE").unwrap_or_else(|| OsString::from("node"));
    let version = Command::new(&node).arg("--version").output();
    match version {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "{test}: RUN_SLOW_TESTS is set but {node:?} does not run; install Node >= 20.6 \
             (or point RUNNEL_ORACLE_NODE at it) and run tests/oracle/setup.sh"
        ),
    }
    for package in ["@actions/expressions", "@actions/workflow-parser"] {
        let manifest = oracle_dir()
            .join("node_modules")
            .join(package)
            .join("package.json");
        assert!(
            manifest.is_file(),
            "{test}: RUN_SLOW_TESTS is set but {package} is not installed in tests/oracle; \
             run tests/oracle/setup.sh"
        );
    }
    Some(Oracle { node })
}

/// The first existing directory among `candidates`, or a test failure naming all of them.
pub(crate) fn first_existing_dir(what: &str, candidates: &[PathBuf]) -> PathBuf {
    candidates
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .unwrap_or_else(|| panic!("{what} not found; looked in {candidates:?}"))
}

/// Every `*.yml`/`*.yaml` file under `dir`, sorted, so runs list files in one order.
pub(crate) fn workflow_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", current.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", current.display()))
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Where the shared reference material lives: `shared/` beside the repository (as in CI),
/// else `/work/shared`.
pub(crate) fn shared_dirs(sub: &str) -> Vec<PathBuf> {
    vec![
        repo_root().join("..").join("shared").join(sub),
        PathBuf::from("/work/shared").join(sub),
    ]
}

/// Runs `git` in `directory` with a test identity (branch `main`, unsigned tags), failing the
/// test with git's stderr when it fails.
pub(crate) fn git(directory: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=runnel",
            "-c",
            "user.email=runnel@example.invalid",
        ])
        .args(["-c", "init.defaultBranch=main", "-c", "tag.gpgSign=false"])
        .args(args)
        .current_dir(directory)
        .output()
        .unwrap_or_else(|e| panic!("git {args:?} could not be started: {e}"));
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        directory.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Copies the directory tree `from` into `to` (created when missing).
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    let entries =
        std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries.flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// Makes the files in `work` a repository with one commit tagged `tag` (annotated) and pushes
/// it (branch `main` and the tag) to a new bare repository `<mirror>/<repo>`, so that
/// `--actions-url file://<mirror>` serves `repo@tag`.
pub(crate) fn publish_to_mirror(mirror: &Path, repo: &str, work: &Path, tag: &str) {
    let bare = mirror.join(repo);
    std::fs::create_dir_all(&bare).unwrap_or_else(|e| panic!("mkdir {}: {e}", bare.display()));
    git(&bare, &["init", "-q", "--bare"]);
    git(work, &["init", "-q"]);
    git(work, &["add", "-A", "."]);
    git(work, &["commit", "-q", "-m", repo]);
    git(work, &["tag", "-a", tag, "-m", tag]);
    let target = bare.to_string_lossy().into_owned();
    git(
        work,
        &["push", "-q", &target, "HEAD:refs/heads/main", "--tags"],
    );
}

/// Runs `npm ci` in `dir` unless every path of `ready` exists there. One install at a time
/// per directory, across the tests of this binary and other processes: two tests finding
/// `node_modules` missing on a fresh machine would otherwise install into it at once.
pub(crate) fn npm_ci(dir: &Path, ready: &[&str]) {
    let installed = || ready.iter().all(|path| dir.join(path).exists());
    if installed() {
        return;
    }
    let name: String = dir
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let lock_path = std::env::temp_dir().join(format!("runnel-npm-ci{name}.lock"));
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if !installed() {
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("RUN_SLOW_TESTS=1 but npm could not be started ({e}); install node and npm")
            });
        assert!(
            output.status.success(),
            "npm ci in {} failed: {}{}",
            dir.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
