//! Project automation, so that the README's commands and CI are one and the same.
//!
//! - `cargo xtask test`: the whole test suite as CI runs it: installs and starts the test
//!   prerequisites (Node packages for the oracles, the Docker engine and locally built images,
//!   the two Gitea versions the tests use, built from the Go module proxy, Debian's Docker
//!   registry, cargo-fuzz), checks formatting and clippy, runs a short fuzz run per target,
//!   then every crate's tests with the slow end-to-end ones on.
//! - `cargo xtask fuzz [SECONDS]`: only the fuzz smoke runs.
//!
//! Owns: the order of those steps and how each prerequisite is installed. Must not: hold test
//! logic (tests live in the crates) or network calls other than the package registries.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Fuzz targets and the seed directories their corpora start from.
const FUZZ_TARGETS: &[(&str, &[&str])] = &[
    ("expr", &["crates/runnel-expr/tests/fuzz-regressions"]),
    (
        "cache_http",
        &["crates/runnel-cache/tests/fuzz-regressions"],
    ),
    (
        "workflow",
        &[
            "crates/runnel-workflow/tests/seed",
            "crates/runnel-workflow/tests/bad",
            "crates/runnel-workflow/tests/fuzz-regressions",
        ],
    ),
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("test") => test(&root),
        Some("fuzz") => {
            let seconds = match args.get(1) {
                Some(s) => s.parse().with_context(|| format!("fuzz seconds: {s:?}"))?,
                None => 20,
            };
            fuzz(&root, seconds)
        }
        _ => {
            eprintln!("usage: cargo xtask test | cargo xtask fuzz [SECONDS]");
            std::process::exit(2);
        }
    }
}

fn project_root() -> PathBuf {
    // xtask lives one level below the workspace root; CARGO_MANIFEST_DIR is set by cargo.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    match manifest.as_deref().and_then(Path::parent) {
        Some(root) => root.to_path_buf(),
        None => PathBuf::from("."),
    }
}

fn test(root: &Path) -> Result<()> {
    step("node packages for the oracle tests");
    run(Command::new("bash").arg(root.join("tests/oracle/setup.sh")))?;

    step("Docker engine and the locally built test images (cached)");
    run(Command::new("bash").arg(root.join("tests/docker/ensure-dockerd.sh")))?;
    run(Command::new("bash").arg(root.join("tests/images/build.sh")))?;

    step("Gitea for the protocol and daemon tests (built once from the Go module proxy, cached)");
    run(Command::new("bash").arg(root.join("tests/gitea/build.sh")))?;

    step("the newer Gitea (tests/gitea/NEXT_VERSION) for daemon_gitea_next (built once, cached)");
    run(Command::new("bash")
        .arg(root.join("tests/gitea/build.sh"))
        .env("GITEA_VERSION", "next"))?;

    step("versitygw for the S3 cache store tests (built once from the Go module proxy, cached)");
    run(Command::new("bash").arg(root.join("tests/s3/build.sh")))?;

    step("a Docker registry for the image pull tests (Debian's docker-registry, apache2-utils)");
    run(Command::new("bash").arg(root.join("tests/registry/install.sh")))?;

    step(
        "QEMU and the VM images for the vm backend tests (tests/vm/build.sh: runnel vm image build, content-addressed)",
    );
    // Not fatal: without QEMU or an image the vm tests skip with a note.
    if let Err(error) = run(Command::new("bash").arg(root.join("tests/vm/virtiofsd.sh"))) {
        println!(
            "note: virtiofsd could not be built ({error:#}); VM jobs share over 9p and the \
             virtiofs test will skip"
        );
    }
    let mut vm_images = true;
    for image in ["debian-bookworm", "debian-bookworm-docker"] {
        if let Err(error) = run(Command::new("bash")
            .arg(root.join("tests/vm/build.sh"))
            .arg(image))
        {
            vm_images = false;
            println!(
                "note: the VM image {image} could not be built ({error:#}); its vm tests will skip"
            );
        }
    }

    step(
        "Kubernetes for the kubernetes backend tests (tests/k8s/build.sh: v1.34 from the Go module proxy, cached)",
    );
    // Not fatal, like the VM image: without a cluster the kubernetes tests skip with a note.
    // Built here, before the tests, so no test waits on a first build.
    let kubernetes = match run(Command::new("bash").arg(root.join("tests/k8s/build.sh"))) {
        Ok(()) => true,
        Err(error) => {
            println!(
                "note: Kubernetes could not be built ({error:#}); the kubernetes tests will skip"
            );
            false
        }
    };

    step("cargo fmt --check");
    run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))?;

    step("cargo clippy");
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--quiet",
        "--",
        "-D",
        "warnings",
    ]))?;

    // The fuzz smoke runs come before the tests so that the run ends with cargo test's
    // summary lines, which is what CI reads.
    fuzz(root, 20)?;

    step("cargo test (slow tests on)");
    let mut cargo_test = Command::new("cargo");
    // Every test binary runs even when one fails, so the summary counts the whole suite.
    cargo_test.args(["test", "--workspace", "--no-fail-fast"]);
    if std::env::var_os("RUN_SLOW_TESTS").is_none() {
        cargo_test.env("RUN_SLOW_TESTS", "1");
    }
    // What was installed must be tested: a VM or cluster test that cannot run then fails
    // instead of skipping out of sight (a passing test's note is never shown).
    if vm_images {
        cargo_test.env("RUNNEL_REQUIRE_VM", "1");
    }
    if kubernetes {
        cargo_test.env("RUNNEL_REQUIRE_K8S", "1");
    }
    let before = DockerObjects::list();
    let tested = run_counting_tests(&mut cargo_test);
    stop_gitea_instances(root);
    stop_instances(root, "registry");
    // The test cluster the kubernetes tests started (tests/k8s/start.sh); a no-op without one.
    let _ = Command::new("bash")
        .arg(root.join("tests/k8s/stop.sh"))
        .status();
    let (passed, failed) = tested?;
    // "No container, network or volume left behind after any test": whatever the tests
    // created and did not remove fails the run, whichever test leaked it.
    let left = DockerObjects::list().added_since(&before);
    if !left.is_empty() {
        println!("summary: {passed} passed, {failed} failed");
        bail!("the tests left Docker objects behind:\n{}", left.join("\n"));
    }
    // One plain closing line for the whole suite: cargo's own last summary is often that of
    // a target with no tests, which says nothing about the run.
    println!("summary: {passed} passed, {failed} failed");
    Ok(())
}

/// Containers, networks and volumes that exist, by id, with a name for the report.
struct DockerObjects(Vec<(String, String)>);

impl DockerObjects {
    /// Networks the runner keeps on purpose (shared by every job, created once).
    const PERSISTENT_NETWORKS: &[&str] = &["runnel-jobs"];

    fn list() -> DockerObjects {
        let mut objects = Vec::new();
        for (kind, args) in [
            (
                "container",
                &[
                    "ps",
                    "-a",
                    "--no-trunc",
                    "--format",
                    "{{.ID}} {{.Names}} {{.Image}}",
                ][..],
            ),
            (
                "network",
                &[
                    "network",
                    "ls",
                    "--no-trunc",
                    "--format",
                    "{{.ID}} {{.Name}}",
                ][..],
            ),
            (
                "volume",
                &["volume", "ls", "--format", "{{.Name}} {{.Name}}"][..],
            ),
        ] {
            let Ok(out) = Command::new("docker").args(args).output() else {
                continue;
            };
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let Some((id, name)) = line.split_once(' ') else {
                    continue;
                };
                if kind == "network" && Self::PERSISTENT_NETWORKS.contains(&name) {
                    continue;
                }
                objects.push((format!("{kind} {id}"), format!("{kind} {name}")));
            }
        }
        DockerObjects(objects)
    }

    /// Names of the objects here that `before` did not have.
    fn added_since(&self, before: &DockerObjects) -> Vec<String> {
        self.0
            .iter()
            .filter(|(id, _)| !before.0.iter().any(|(old, _)| old == id))
            .map(|(_, name)| name.clone())
            .collect()
    }
}

/// Runs `cargo test`, passing its output through, and adds up its `test result:` lines.
fn run_counting_tests(cmd: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("read cargo test output")?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                passed += count_before(rest, " passed");
                failed += count_before(rest, " failed");
            }
        }
    }
    let status = child.wait().with_context(|| format!("wait for {cmd:?}"))?;
    if !status.success() {
        println!("summary: {passed} passed, {failed} failed");
        bail!("{cmd:?} failed: {status}");
    }
    Ok((passed, failed))
}

/// The number just before `label` in `ok. 12 passed; 0 failed; …`.
fn count_before(text: &str, label: &str) -> u64 {
    text.split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(label.trim_start())
                .map(str::trim)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The tests leave their Gitea instances running so that reruns are fast; the suite as a whole
/// stops them, whatever the tests' outcome, so nothing outlives a CI run.
fn stop_gitea_instances(root: &Path) {
    let cache = match std::env::var_os("RUNNEL_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cache/runnel"),
            None => return,
        },
    };
    let Ok(entries) = std::fs::read_dir(cache.join("gitea/instances")) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "env")
            && let Some(name) = path.file_stem().and_then(|n| n.to_str())
        {
            let _ = Command::new("bash")
                .arg(root.join("tests/gitea/stop.sh"))
                .arg(name)
                .status();
        }
    }
}

/// Stops the instances of `tests/<kind>/start.sh` (each has an `instances/NAME.env` under the
/// cache) that the tests leave running for one another.
fn stop_instances(root: &Path, kind: &str) {
    let cache = match std::env::var_os("RUNNEL_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cache/runnel"),
            None => return,
        },
    };
    let Ok(entries) = std::fs::read_dir(cache.join(kind).join("instances")) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "env")
            && let Some(name) = path.file_stem().and_then(|n| n.to_str())
        {
            let _ = Command::new("bash")
                .arg(root.join(format!("tests/{kind}/stop.sh")))
                .arg(name)
                .status();
        }
    }
}

/// A short libFuzzer run per target: long enough to catch a regression in the panic-freedom of
/// the parsers, short enough for every CI run. Crashes are saved under `fuzz/artifacts/`.
fn fuzz(root: &Path, seconds: u32) -> Result<()> {
    step("fuzz smoke runs");
    if !has_nightly() {
        bail!("cargo fuzz needs the nightly toolchain: rustup toolchain install nightly");
    }
    if !Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    for (target, seeds) in FUZZ_TARGETS {
        let corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus).with_context(|| format!("create {}", corpus.display()))?;
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root.join("fuzz"))
            .args(["+nightly", "fuzz", "run", target])
            .arg(&corpus);
        for seed in seeds.iter().map(|s| root.join(s)).filter(|p| p.is_dir()) {
            cmd.arg(seed);
        }
        cmd.args(["--", &format!("-max_total_time={seconds}"), "-max_len=8192"]);
        run(&mut cmd)?;
    }
    Ok(())
}

fn has_nightly() -> bool {
    Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn step(title: &str) {
    eprintln!("\n==> {title}");
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("spawn {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
