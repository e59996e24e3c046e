//! `runnel config generate|init|get|set|add|remove`, `generate-config` and `bug-report` through
//! the real binary, as the Gitea runner v3.3's commands of the same names: which file, what is
//! printed, what the file looks like after an edit (the operator's other lines kept, its mode
//! kept). Quick: no Docker, no Gitea.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::support::runnel;

fn config(dir: &Path, args: &[&str]) -> Output {
    runnel()
        .current_dir(dir)
        .arg("config")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("runnel config {args:?}: {e}"))
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn failed(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn generate_prints_the_example_and_generate_config_is_its_deprecated_name() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let generated = ok(&config(dir.path(), &["generate"]));
    assert_eq!(generated, runnel_config::EXAMPLE_CONFIG);
    let old = runnel()
        .arg("generate-config")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok(&old), generated);
    assert!(
        String::from_utf8_lossy(&old.stderr).contains("deprecated, use `runnel config generate`")
    );
}

#[test]
fn init_writes_a_minimal_file_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let printed = ok(&config(dir.path(), &["init"]));
    assert_eq!(printed, "wrote config file config.yaml\n");
    let file = dir.path().join("config.yaml");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text, runnel_config::MINIMAL_CONFIG);
    let mode = std::fs::metadata(&file).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    // It loads as the defaults, without a warning.
    let loaded = runnel_config::Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty());
    assert_eq!(loaded.config, runnel_config::Config::default());
    // Once: a second init, or one beside a config.yml, is refused without --force.
    let again = failed(&config(dir.path(), &["init"]));
    assert!(
        again.contains("config.yaml already exists; pass --force"),
        "{again}"
    );
    ok(&config(dir.path(), &["init", "--force"]));
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(other.path().join("config.yml"), "").unwrap_or_else(|e| panic!("{e}"));
    let shadowed = failed(&config(other.path(), &["init"]));
    assert!(shadowed.contains("config.yml already exists"), "{shadowed}");
    // -c names the file, before or after `config`.
    ok(&config(other.path(), &["init", "-c", "runner.yaml"]));
    assert!(other.path().join("runner.yaml").is_file());
    let before = runnel()
        .current_dir(other.path())
        .args(["-c", "second.yaml", "config", "init"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    ok(&before);
    assert!(other.path().join("second.yaml").is_file());
}

#[test]
fn set_add_remove_edit_one_key_and_keep_the_rest_of_the_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("config.yaml");
    let original = "\
# Our runner (managed by hand).
runner:
  capacity: 1 # one at a time
  labels:
    - linux:host

# Docker jobs.
container:
  network: ''
";
    std::fs::write(&file, original).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640))
        .unwrap_or_else(|e| panic!("{e}"));
    let edit = config(dir.path(), &["set", "runner.capacity", "4"]);
    ok(&edit);
    assert!(
        String::from_utf8_lossy(&edit.stderr).contains("using config file"),
        "the file found is said: {edit:?}"
    );
    ok(&config(
        dir.path(),
        &["set", "container.options", "--add-host=gitea:host-gateway"],
    ));
    ok(&config(
        dir.path(),
        &[
            "add",
            "runner.labels",
            "docker:docker://node:20",
            "big:host",
        ],
    ));
    ok(&config(
        dir.path(),
        &["remove", "runner.labels", "big:host"],
    ));
    ok(&config(
        dir.path(),
        &["set", "runner.envs.PROXY", "http://proxy:3128"],
    ));
    ok(&config(dir.path(), &["set", "runner.timeout", "90m"]));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        text,
        "\
# Our runner (managed by hand).
runner:
  capacity: 4 # one at a time
  labels:
    - linux:host
    - docker:docker://node:20
  envs:
    PROXY: http://proxy:3128
  timeout: 1h30m

# Docker jobs.
container:
  network: ''
  options: '--add-host=gitea:host-gateway'
"
    );
    let mode = std::fs::metadata(&file).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o640), "the file's mode is kept");
    assert_eq!(
        ok(&config(dir.path(), &["get", "runner.labels"])),
        "linux:host\ndocker:docker://node:20\n"
    );
    assert_eq!(
        ok(&config(dir.path(), &["get", "runner.timeout"])),
        "1h30m\n"
    );
    assert_eq!(
        ok(&config(dir.path(), &["get", "runner.envs"])),
        "PROXY=http://proxy:3128\n"
    );
    // What loads is what was set.
    let loaded = runnel_config::Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.runner.capacity, 4);
    assert_eq!(
        loaded.config.container.options,
        "--add-host=gitea:host-gateway"
    );
}

#[test]
fn a_linked_config_is_edited_where_it_lives() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let real = dir.path().join("real.yaml");
    std::fs::write(&real, "runner:\n  capacity: 1\n").unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(&real, dir.path().join("config.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    ok(&config(dir.path(), &["set", "runner.capacity", "2"]));
    let link = std::fs::symlink_metadata(dir.path().join("config.yaml"));
    assert!(
        link.is_ok_and(|m| m.file_type().is_symlink()),
        "the link stays a link"
    );
    let text = std::fs::read_to_string(&real).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text, "runner:\n  capacity: 2\n");
}

#[test]
fn wrong_keys_values_and_missing_files_are_said() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let none = failed(&config(dir.path(), &["get", "runner.capacity"]));
    assert!(
        none.contains("no config.yaml or config.yml found in") && none.contains("-c FILE"),
        "{none}"
    );
    let missing = failed(&config(
        dir.path(),
        &["set", "-c", "gone.yaml", "runner.capacity", "2"],
    ));
    assert!(
        missing.contains("gone.yaml does not exist; create one with `runnel config init`"),
        "{missing}"
    );
    ok(&config(dir.path(), &["init"]));
    let unknown = failed(&config(dir.path(), &["set", "runner.capacty", "2"]));
    assert!(
        unknown.contains("unknown config key `runner.capacty`; valid keys here:")
            && unknown.contains("capacity"),
        "{unknown}"
    );
    let typed = failed(&config(dir.path(), &["set", "runner.insecure", "perhaps"]));
    assert!(typed.contains("`perhaps` is not a boolean"), "{typed}");
    let unset = failed(&config(dir.path(), &["get", "runner.capacity"]));
    assert!(unset.contains("`runner.capacity` is not set"), "{unset}");
    // Nothing was written by the refused edits.
    let text = std::fs::read_to_string(dir.path().join("config.yaml"));
    assert_eq!(text.ok().as_deref(), Some(runnel_config::MINIMAL_CONFIG));
}

#[test]
fn bug_report_prints_the_version_platform_and_cpus() {
    let output = runnel()
        .arg("bug-report")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = ok(&output);
    let version = format!("Runner version: runnel-{}\n", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&version), "{text}");
    assert!(
        text.contains(&format!(
            "OS/Arch:        {}/{}\n",
            std::env::consts::OS,
            std::env::consts::ARCH
        )),
        "{text}"
    );
    assert!(text.contains("CPUs:           "), "{text}");
}
