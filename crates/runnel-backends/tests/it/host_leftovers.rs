//! The cleanup after a killed runner on the host backend: process groups of dead runners are
//! killed (unless the leader pid was reused), their job directories removed, and everything
//! of live runners kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use runnel_backends::host::{HostBackend, HostConfig, cleanup_leftovers};
use runnel_engine::backend::{Backend, ExecExit, ExecRequest, JobSpec};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

/// Whether `pid` runs (exists and is not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = stat.get(stat.rfind(')')? + 1..)?.to_owned();
            after_name.split_whitespace().next().map(|s| s != "Z")
        })
        .unwrap_or(false)
}

/// A `sleep 300` leading its own process group.
fn sleeper() -> Child {
    use std::os::unix::process::CommandExt;
    Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .expect("spawn sleep")
}

/// A pid that no process has any more.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait true");
    pid
}

fn job_dir(root: &Path, name: &str, record: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("workspace")).expect("job dir");
    std::fs::write(dir.join(".runnel-pgids"), record).expect("record");
    dir
}

fn wait_until_not_running(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while running(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    !running(pid)
}

#[test]
fn groups_of_dead_runners_are_killed_unless_the_leader_pid_was_reused() {
    let root = tempfile::tempdir().expect("root");
    let dead = dead_pid();
    let mut doomed = sleeper();
    let mut reused = sleeper();
    let mut alive = sleeper();
    let own = std::process::id();
    let own_start = start_time(own).expect("own start time");
    let doomed_dir = job_dir(
        root.path(),
        "runnel-doomed-1",
        &format!(
            "runner {dead} 12345\ngroup {} {}\n",
            doomed.id(),
            start_time(doomed.id()).expect("sleep start time")
        ),
    );
    // The leader's start time differs: its pid now belongs to another process.
    let reused_dir = job_dir(
        root.path(),
        "runnel-reused-2",
        &format!("runner {dead} 12345\ngroup {} 1\n", reused.id()),
    );
    // This process is a live runner: its job stays.
    let alive_dir = job_dir(
        root.path(),
        "runnel-alive-3",
        &format!(
            "runner {own} {own_start}\ngroup {} {}\n",
            alive.id(),
            start_time(alive.id()).expect("sleep start time")
        ),
    );
    // Our own pid with another start time: the pid was reused, the runner is gone.
    let reused_runner_dir = job_dir(root.path(), "runnel-old-4", &format!("runner {own} 1\n"));
    let no_record = root.path().join("runnel-foreign");
    std::fs::create_dir_all(&no_record).expect("foreign dir");
    let not_ours = job_dir(root.path(), "other", &format!("runner {dead} 1\n"));

    let report = cleanup_leftovers(root.path());

    let status = doomed.wait().expect("wait doomed");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert_eq!(
        report.groups,
        vec![i32::try_from(doomed.id()).expect("pid")]
    );
    assert!(running(reused.id()), "a reused leader pid is not killed");
    assert!(running(alive.id()), "a live runner's group is not killed");
    let mut removed = report.directories.clone();
    removed.sort();
    let mut expected = vec![doomed_dir, reused_dir, reused_runner_dir];
    expected.sort();
    assert_eq!(removed, expected);
    for dir in &expected {
        assert!(!dir.exists(), "{}", dir.display());
    }
    assert!(alive_dir.exists());
    assert!(no_record.exists());
    assert!(not_ours.exists());

    for child in [&mut reused, &mut alive] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn a_missing_root_is_nothing_to_clean() {
    let root = tempfile::tempdir().expect("root");
    let report = cleanup_leftovers(&root.path().join("absent"));
    assert_eq!(report, Default::default());
}

/// Through the backend: a step leaves `sleep` running in its group after its shell exited;
/// once the record says the runner is dead, the cleanup kills it and removes the job directory.
#[tokio::test]
async fn a_background_process_of_a_killed_runners_step_is_killed_at_the_next_start() {
    let root = tempfile::tempdir().expect("root");
    let backend = HostBackend::new(HostConfig {
        root: Some(root.path().to_path_buf()),
        ..HostConfig::default()
    });
    let spec = JobSpec {
        job_key: "leftover".to_owned(),
        image: None,
        services: Vec::new(),
        workspace_source: None,
        labels: Vec::new(),
    };
    let cancel = CancellationToken::new();
    let env = backend.prepare(&spec, &cancel).await.expect("prepare");
    let pid_file = format!("{}/sleep.pid", env.paths().temp);
    let request = ExecRequest {
        argv: vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}"),
        ],
        env: BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]),
        workdir: env.paths().temp.clone(),
        timeout: None,
    };
    let (sender, _receiver) = mpsc::channel(16);
    let exit = env.exec(&request, sender, &cancel).await.expect("exec");
    assert_eq!(exit, ExecExit::Code(0));
    let sleep_pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert!(running(sleep_pid));

    // A live runner's job is kept.
    assert_eq!(backend.cleanup_leftovers(), Default::default());
    assert!(running(sleep_pid));

    // The runner "dies": its record now names a pid that no process has.
    let dirs: Vec<_> = std::fs::read_dir(root.path())
        .expect("root")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let record_path = dirs[0].join(".runnel-pgids");
    let record = std::fs::read_to_string(&record_path).expect("record");
    assert!(record.lines().any(|l| l.starts_with("group ")), "{record}");
    let rest: Vec<&str> = record.lines().skip(1).collect();
    std::fs::write(
        &record_path,
        format!("runner {} 1\n{}\n", dead_pid(), rest.join("\n")),
    )
    .expect("rewrite record");

    let report = backend.cleanup_leftovers();
    assert_eq!(report.groups.len(), 1, "{report:?}");
    assert_eq!(report.directories, dirs);
    assert!(
        wait_until_not_running(sleep_pid),
        "the step's background sleep {sleep_pid} still runs"
    );
    env.teardown().await.expect("teardown after cleanup");
}
