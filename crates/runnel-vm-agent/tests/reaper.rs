//! The guest agent's reaper without being PID 1: this test process makes itself a child
//! subreaper (`PR_SET_CHILD_SUBREAPER`), so the grandchildren its children leave behind are
//! re-parented to it as they would be to the agent in the guest. Its own process (a binary of
//! its own): the reaper collects every child of the process, so nothing here may spawn but
//! through it.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use runnel_vm_agent::reaper::{Reaper, Status};

/// The process's one reaper, the process a subreaper.
fn reaper() -> &'static Reaper {
    static REAPER: OnceLock<Reaper> = OnceLock::new();
    REAPER.get_or_init(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("become a child subreaper");
        Reaper::start().expect("start the reaper")
    })
}

fn sh(script: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Zombie children of this process (state `Z` in `/proc/PID/stat`, parent this process).
fn zombie_children() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `PID (COMM) STATE PPID …`: the fields after the command's closing parenthesis.
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, parent) = (fields.next(), fields.next());
        if state == Some("Z") && parent == Some(me.as_str()) {
            zombies.push(stat);
        }
    }
    zombies
}

/// Waits up to 5 s for `condition`.
fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

#[test]
fn a_childs_exit_status_reaches_its_waiter_and_its_orphans_are_collected() {
    let reaper = reaper();
    let before = reaper.orphans_reaped();
    // The shell exits at once; its background `sleep`s are re-parented to this process.
    let (_child, exit) = reaper
        .spawn(&mut sh("sleep 0.2 & sleep 0.3 & exit 3"))
        .expect("spawn");
    let started = Instant::now();
    assert_eq!(exit.wait(), Some(Status::Exited(3)));
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "the status came when the shell exited, not its children"
    );
    assert!(
        eventually(|| reaper.orphans_reaped() >= before + 2),
        "both orphans collected"
    );
    assert!(
        eventually(|| zombie_children().is_empty()),
        "zombies left: {:?}",
        zombie_children()
    );
}

#[test]
fn a_daemonised_grandchild_is_collected_too() {
    let reaper = reaper();
    let before = reaper.orphans_reaped();
    // A new session whose leader exits, leaving its child (a double fork, as daemons do).
    let (_child, exit) = reaper
        .spawn(&mut sh("setsid sh -c 'sleep 0.2 & exit 0' & wait; exit 0"))
        .expect("spawn");
    assert_eq!(exit.wait(), Some(Status::Exited(0)));
    assert!(eventually(|| reaper.orphans_reaped() > before));
    assert!(
        eventually(|| zombie_children().is_empty()),
        "zombies left: {:?}",
        zombie_children()
    );
}

#[test]
fn a_signal_is_told_as_such() {
    let (_child, exit) = reaper().spawn(&mut sh("kill -9 $$")).expect("spawn");
    let status = exit.wait().expect("a status");
    assert_eq!(status, Status::Signaled(9));
    assert_eq!(status.code(), 137);
}

/// Many children that exit at once, among orphans exiting too: each waiter gets its own
/// child's status, none is lost or swapped.
#[test]
fn many_children_at_once_each_get_their_own_status() {
    let reaper = reaper();
    let exits: Vec<_> = (0..40)
        .map(|n| {
            let script = format!("sleep 0.0{} & exit {n}", n % 10);
            let (_child, exit) = reaper.spawn(&mut sh(&script)).expect("spawn");
            (n, exit)
        })
        .collect();
    for (n, exit) in exits {
        let status = exit
            .wait_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("child {n} never reported"));
        assert_eq!(status, Some(Status::Exited(n)), "child {n}");
    }
}

/// A spawn whose `exec` fails is collected by the standard library inside `spawn`: the reaper
/// must not take it from under it (that panics the spawning thread), and it goes on. `uid`
/// makes the standard library fork and exec itself (not `posix_spawn`), where it collects the
/// failed child with a `waitpid` that must find it.
#[test]
fn a_failed_spawn_is_an_error_and_the_reaper_goes_on() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let reaper = reaper();
    // This process's own user (`/proc/self` belongs to it).
    let uid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    for _ in 0..50 {
        let missing = Command::new("/nonexistent/program")
            .uid(uid)
            .spawn_through(reaper);
        assert!(missing.is_err());
        let bad_dir = sh("exit 0")
            .uid(uid)
            .current_dir("/nonexistent/directory")
            .spawn_through(reaper);
        assert!(bad_dir.is_err());
    }
    let (_child, exit) = reaper.spawn(&mut sh("exit 5")).expect("spawn");
    assert_eq!(exit.wait(), Some(Status::Exited(5)));
}

trait SpawnThrough {
    fn spawn_through(&mut self, reaper: &Reaper) -> std::io::Result<()>;
}

impl SpawnThrough for Command {
    fn spawn_through(&mut self, reaper: &Reaper) -> std::io::Result<()> {
        reaper.spawn(self).map(|_| ())
    }
}
