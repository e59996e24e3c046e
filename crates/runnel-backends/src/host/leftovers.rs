//! Process groups and job directories of host jobs whose runner is gone (SIGKILLed, crashed):
//! the record each job directory carries, and the cleanup at the next start.
//!
//! Every job directory holds [`RECORD`]: the runner's pid and start time (field 22 of
//! `/proc/<pid>/stat`), then one line per process group the job started with its leader's
//! start time. A runner is gone when its pid no longer exists or belongs to a process that
//! started at another time (the pid was reused). A group of a gone runner is killed with
//! SIGKILL when its leader still has the recorded start time, or when no process has the
//! leader's pid any more: the kernel keeps a pid number allocated while a process group of that
//! id has members, so a group found under that id is still the job's (its leader exited and left
//! background processes behind). A leader pid that now belongs to a process started at another
//! time was reused: that group is left alone. Like the Docker leftovers, this assumes runners
//! share this machine's pid namespace.
//!
//! Must not: touch directories without a record, or entries of `root` not named `runnel-*`.

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The record's file name inside a job directory.
pub(crate) const RECORD: &str = ".runnel-pgids";
/// Prefix of job directory names under the backend's root.
pub(crate) const JOB_DIR_PREFIX: &str = "runnel-";
/// Written for a start time that could not be read.
const UNKNOWN: &str = "-";

/// One process group a job started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) pgid: i32,
    /// The leader's start time, [`UNKNOWN`] when it could not be read.
    pub(crate) start: String,
}

impl Group {
    /// The group `pgid` just started (its leader is the process with that pid).
    pub(crate) fn started(pgid: i32) -> Group {
        let start = u32::try_from(pgid)
            .ok()
            .and_then(process_start_time)
            .unwrap_or_else(|| UNKNOWN.to_owned());
        Group { pgid, start }
    }
}

/// Writes the record of `job_dir` for this runner and `groups` (replacing it atomically).
pub(crate) fn write_record(job_dir: &Path, groups: &[Group]) -> std::io::Result<()> {
    let pid = std::process::id();
    let start = process_start_time(pid).unwrap_or_else(|| UNKNOWN.to_owned());
    let mut text = format!("runner {pid} {start}\n");
    for group in groups {
        text.push_str(&format!("group {} {}\n", group.pgid, group.start));
    }
    let partial = job_dir.join(format!("{RECORD}.partial"));
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, job_dir.join(RECORD))
}

/// What [`cleanup`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftoverReport {
    /// Process groups sent SIGKILL.
    pub groups: Vec<i32>,
    /// Job directories removed.
    pub directories: Vec<PathBuf>,
}

/// Kills the process groups and removes the job directories under `root` whose runner is gone.
/// Problems are logged and skipped: one unreadable directory must not keep the others.
pub fn cleanup(root: &Path) -> LeftoverReport {
    let mut report = LeftoverReport::default();
    for job_dir in job_dirs(root, JOB_DIR_PREFIX) {
        clean_job_dir(&job_dir, &mut report);
    }
    if report != LeftoverReport::default() {
        tracing::info!(
            groups = report.groups.len(),
            directories = report.directories.len(),
            "removed host jobs' leftovers of dead runners"
        );
    }
    report
}

/// The directories under `root` whose names start with `prefix` (a backend's job
/// directories); none when `root` does not exist, a warning when it cannot be listed.
pub(crate) fn job_dirs(root: &Path, prefix: &str) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::warn!(root = %root.display(), %error, "cannot list job directories");
            return Vec::new();
        }
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with(prefix))
                && entry.file_type().is_ok_and(|kind| kind.is_dir())
        })
        .map(|entry| entry.path())
        .collect()
}

fn clean_job_dir(job_dir: &Path, report: &mut LeftoverReport) {
    // No record: not a job directory, or one whose runner is still creating it.
    let Ok(text) = std::fs::read_to_string(job_dir.join(RECORD)) else {
        return;
    };
    let Some(record) = parse(&text) else {
        tracing::warn!(dir = %job_dir.display(), "unreadable {RECORD}; left alone");
        return;
    };
    if !runner_gone(record.runner_pid, &record.runner_start) {
        return;
    }
    for group in &record.groups {
        if group_is_still_the_jobs(group)
            && killpg(Pid::from_raw(group.pgid), Signal::SIGKILL).is_ok()
        {
            tracing::info!(pgid = group.pgid, "killed a process group of a dead runner");
            report.groups.push(group.pgid);
        }
    }
    match std::fs::remove_dir_all(job_dir) {
        Ok(()) => report.directories.push(job_dir.to_path_buf()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(dir = %job_dir.display(), %error, "cannot remove a dead runner's job directory");
        }
    }
}

struct Record {
    runner_pid: u32,
    runner_start: String,
    groups: Vec<Group>,
}

fn parse(text: &str) -> Option<Record> {
    let mut lines = text.lines();
    let mut first = lines.next()?.split_whitespace();
    if first.next()? != "runner" {
        return None;
    }
    let runner_pid = first.next()?.parse().ok()?;
    let runner_start = first.next()?.to_owned();
    let mut groups = Vec::new();
    for line in lines {
        let mut fields = line.split_whitespace();
        if fields.next() != Some("group") {
            continue;
        }
        let (Some(pgid), Some(start)) = (fields.next(), fields.next()) else {
            continue;
        };
        // Group ids below 2 would mean "our own group" or "every process" to kill(2).
        match pgid.parse::<i32>() {
            Ok(pgid) if pgid > 1 => groups.push(Group {
                pgid,
                start: start.to_owned(),
            }),
            _ => {}
        }
    }
    Some(Record {
        runner_pid,
        runner_start,
        groups,
    })
}

/// Whether runner `pid`, recorded with start time `start`, no longer runs.
pub(crate) fn runner_gone(pid: u32, start: &str) -> bool {
    match process_start_time(pid) {
        None => true,
        // Unknown at record time: a live process with that pid is taken to be the runner.
        Some(now) => start != UNKNOWN && now != start,
    }
}

/// Whether the process group under `group.pgid` is the one the job started (see the module
/// doc): its leader has the recorded start time, or no process has the leader's pid.
fn group_is_still_the_jobs(group: &Group) -> bool {
    let Ok(pid) = u32::try_from(group.pgid) else {
        return false;
    };
    match process_start_time(pid) {
        None => true,
        Some(now) => group.start != UNKNOWN && now == group.start,
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot); `None` off Linux or
/// when the process does not exist.
pub(crate) fn process_start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: count from the last `)`.
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_parses_and_skips_bad_group_lines() {
        let record =
            parse("runner 12 345\ngroup 100 7\ngroup 1 8\ngroup -5 9\ngroup x 1\ngroup 101\n")
                .expect("parses");
        assert_eq!(record.runner_pid, 12);
        assert_eq!(record.runner_start, "345");
        assert_eq!(
            record.groups,
            vec![Group {
                pgid: 100,
                start: "7".to_owned()
            }]
        );
        assert!(parse("group 100 7\n").is_none());
        assert!(parse("").is_none());
    }

    #[test]
    fn this_process_is_a_live_runner_and_a_reused_pid_is_not() {
        let pid = std::process::id();
        let start = process_start_time(pid).expect("own start time");
        assert!(!runner_gone(pid, &start));
        assert!(!runner_gone(pid, UNKNOWN));
        assert!(runner_gone(pid, "0"));
    }
}
