//! VMs whose runner is gone (SIGKILLed, crashed): the record each job directory carries, and
//! the cleanup at the next start.
//!
//! Every job directory (`runnel-vm-*` under the backend's root) holds [`RECORD`]: the runner's
//! pid and start time, then `virtiofsd`'s and QEMU's pids and start times once they run. A
//! runner is gone when its pid no longer exists or belongs to a process started at another
//! time; then QEMU and `virtiofsd` are killed when their pids still have the recorded start
//! times, and the directory (overlay, sockets, the
//! job's files) is removed.
//!
//! Must not: touch directories without a record, or entries of the root not named `runnel-vm-*`.

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::host::leftovers::{job_dirs, process_start_time, runner_gone};

pub(crate) const RECORD: &str = ".runnel-vm";
pub(crate) const JOB_DIR_PREFIX: &str = "runnel-vm-";
const UNKNOWN: &str = "-";

/// Writes the record of `job_dir`: this runner, and QEMU's and `virtiofsd`'s pids once they
/// run.
pub(crate) fn write_record(
    job_dir: &Path,
    qemu: Option<u32>,
    virtiofsd: Option<u32>,
) -> std::io::Result<()> {
    let pid = std::process::id();
    let start = process_start_time(pid).unwrap_or_else(|| UNKNOWN.to_owned());
    let mut text = format!("runner {pid} {start}\n");
    for (kind, child) in [("qemu", qemu), ("virtiofsd", virtiofsd)] {
        if let Some(child) = child {
            let start = process_start_time(child).unwrap_or_else(|| UNKNOWN.to_owned());
            text.push_str(&format!("{kind} {child} {start}\n"));
        }
    }
    let partial = job_dir.join(format!("{RECORD}.partial"));
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, job_dir.join(RECORD))
}

/// What [`cleanup`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmLeftoverReport {
    /// QEMU and `virtiofsd` processes killed.
    pub processes: Vec<u32>,
    /// Job directories removed.
    pub directories: Vec<PathBuf>,
}

/// Kills the QEMU and `virtiofsd` processes and removes the job directories under `root` whose
/// runner is gone.
pub fn cleanup(root: &Path) -> VmLeftoverReport {
    let mut report = VmLeftoverReport::default();
    for job_dir in job_dirs(root, JOB_DIR_PREFIX) {
        clean_job_dir(&job_dir, &mut report);
    }
    if report != VmLeftoverReport::default() {
        tracing::info!(
            processes = report.processes.len(),
            directories = report.directories.len(),
            "removed VM jobs' leftovers of dead runners"
        );
    }
    report
}

fn clean_job_dir(job_dir: &Path, report: &mut VmLeftoverReport) {
    let Ok(text) = std::fs::read_to_string(job_dir.join(RECORD)) else {
        return;
    };
    let Some((runner, children)) = parse(&text) else {
        tracing::warn!(dir = %job_dir.display(), "unreadable {RECORD}; left alone");
        return;
    };
    if !runner_gone(runner.0, &runner.1) {
        return;
    }
    // QEMU first: virtiofsd serves it.
    for (kind, pid, start) in children {
        if start != UNKNOWN
            && process_start_time(pid).as_deref() == Some(start.as_str())
            && let Ok(raw) = i32::try_from(pid)
            && kill(Pid::from_raw(raw), Signal::SIGKILL).is_ok()
        {
            tracing::info!(pid, "killed the {kind} of a dead runner");
            report.processes.push(pid);
        }
    }
    match std::fs::remove_dir_all(job_dir) {
        Ok(()) => report.directories.push(job_dir.to_path_buf()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(dir = %job_dir.display(), %error, "cannot remove a dead runner's VM directory");
        }
    }
}

type Process = (u32, String);
/// A process the runner started for a job: what it is, its pid and start time.
type Child = (&'static str, u32, String);

/// The runner, and the children recorded (kind, pid, start), QEMU first.
fn parse(text: &str) -> Option<(Process, Vec<Child>)> {
    let mut runner = None;
    let mut qemu = None;
    let mut virtiofsd = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(kind), Some(pid), Some(start)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        match kind {
            "runner" => runner = Some((pid, start.to_owned())),
            // pid 0 and 1 are never a QEMU of ours.
            "qemu" if pid > 1 => qemu = Some(("QEMU", pid, start.to_owned())),
            "virtiofsd" if pid > 1 => virtiofsd = Some(("virtiofsd", pid, start.to_owned())),
            _ => {}
        }
    }
    Some((runner?, qemu.into_iter().chain(virtiofsd).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_parses() {
        let (runner, children) =
            parse("runner 12 345\nvirtiofsd 98 6\nqemu 99 7\n").expect("parses");
        assert_eq!(runner, (12, "345".to_owned()));
        assert_eq!(
            children,
            vec![
                ("QEMU", 99, "7".to_owned()),
                ("virtiofsd", 98, "6".to_owned())
            ]
        );
        assert!(
            parse("runner 12 345\nqemu 1 7\n")
                .expect("parses")
                .1
                .is_empty()
        );
        assert!(parse("qemu 99 7\n").is_none());
    }

    #[test]
    fn a_dead_runners_directory_goes_and_a_live_ones_stays() {
        let root = tempfile::tempdir().expect("tempdir");
        let live = root.path().join("runnel-vm-live");
        std::fs::create_dir(&live).expect("mkdir");
        write_record(&live, None, None).expect("record");
        let dead = root.path().join("runnel-vm-dead");
        std::fs::create_dir(&dead).expect("mkdir");
        // pid 1 never started at tick 0 of boot plus a day: a gone runner.
        std::fs::write(dead.join(RECORD), "runner 4194304 0\nqemu 4194303 5\n").expect("write");
        let other = root.path().join("something-else");
        std::fs::create_dir(&other).expect("mkdir");
        let report = cleanup(root.path());
        assert_eq!(report.directories, vec![dead.clone()]);
        assert!(report.processes.is_empty());
        assert!(live.exists() && other.exists() && !dead.exists());
    }

    /// A dead runner's `virtiofsd` (here a stand-in process with the recorded pid and start
    /// time) is killed with its directory.
    #[test]
    fn a_dead_runners_virtiofsd_is_killed() {
        let root = tempfile::tempdir().expect("tempdir");
        let dead = root.path().join("runnel-vm-dead");
        std::fs::create_dir(&dead).expect("mkdir");
        let mut child = std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let start = process_start_time(pid).expect("start time");
        std::fs::write(
            dead.join(RECORD),
            format!("runner 4194304 0\nvirtiofsd {pid} {start}\n"),
        )
        .expect("write");
        let report = cleanup(root.path());
        assert_eq!(report.processes, vec![pid]);
        let status = child.wait().expect("wait");
        assert!(!status.success(), "killed: {status}");
        assert!(!dead.exists());
    }
}
