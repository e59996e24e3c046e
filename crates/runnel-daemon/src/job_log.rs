//! `log.job`: a copy of each task's log on the runner's disk, so a job's output survives a
//! failure to send it to Gitea (the Gitea runner v3's keys and file names). Each task gets
//! `<UTC start, YYYYMMDD-HHMMSS>-task-<id>.log` in `log.job.dir` (made 0700, the file 0600:
//! repository output, for this user only), one line a row: its UTC time to the millisecond,
//! a space, the row with its line breaks written `\n`. A copy stops at `log.job.max_size`
//! with a line saying so; the job's result is always its last line. Copies older than
//! `log.job.retention` are removed when a task starts.
//!
//! Owns: the files and their lines. Must not: hold back reporting — a copy that cannot be
//! written is given up with one warning; rows reach the copy already masked.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runnel_config::LogJobSection;

/// One task's copy.
pub(crate) struct JobLogCopy {
    path: PathBuf,
    file: File,
    written: u64,
    max: u64,
    /// The cap was reached or a write failed: only the result line still follows.
    stopped: bool,
}

impl JobLogCopy {
    /// The copy of task `task_id` started at `started`, or `None` when `log.job.dir` is unset
    /// or the file cannot be made (said in a warning).
    pub(crate) fn create(
        settings: &LogJobSection,
        task_id: i64,
        started: SystemTime,
    ) -> Option<JobLogCopy> {
        let dir = settings.dir.as_ref()?;
        if let Err(error) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            tracing::warn!(dir = %dir.display(), %error, "cannot make the job log directory (log.job.dir)");
            return None;
        }
        remove_expired(dir, settings.retention, started);
        let stamp: String = runnel_cache::rfc3339_seconds(unix_ms(started))
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let name = format!("{}-{}-task-{task_id}.log", &stamp[..8], &stamp[8..]);
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => {
                tracing::info!(task_id, path = %path.display(), "writing a copy of the task's log");
                Some(JobLogCopy {
                    path,
                    file,
                    written: 0,
                    max: settings.max_size,
                    stopped: false,
                })
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot write a copy of the task's log (log.job.dir)");
                None
            }
        }
    }

    /// Appends rows written at `time`.
    pub(crate) fn rows<'r>(&mut self, time: SystemTime, rows: impl IntoIterator<Item = &'r str>) {
        for row in rows {
            if self.stopped {
                return;
            }
            let line = line(time, row);
            if self.max > 0 && self.written + line.len() as u64 > self.max {
                self.stopped = true;
                let note = format!(
                    "[runner] the copy stops here: log.job.max_size of {} bytes reached",
                    self.max
                );
                self.write(&line_now(&note));
                return;
            }
            self.write(&line);
        }
    }

    /// The last line, past the cap on purpose: a copy without it is from a runner that died
    /// mid-job.
    pub(crate) fn finish(mut self, result: &str) {
        self.stopped = false;
        self.write(&line_now(&format!("[runner] job {result}")));
    }

    fn write(&mut self, line: &str) {
        if let Err(error) = self.file.write_all(line.as_bytes()) {
            // Once: a write that fails is a full disk, and retrying floods the log.
            self.stopped = true;
            tracing::warn!(path = %self.path.display(), %error, "cannot write the copy of the task's log");
        }
        self.written += line.len() as u64;
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn line(time: SystemTime, row: &str) -> String {
    format!(
        "{} {}\n",
        runnel_cache::rfc3339_millis(unix_ms(time)),
        row.replace('\n', "\\n")
    )
}

fn line_now(text: &str) -> String {
    line(SystemTime::now(), text)
}

/// Removes the task copies in `dir` last written more than `retention` before `now` (none
/// when `retention` is zero).
fn remove_expired(dir: &Path, retention: Duration, now: SystemTime) {
    if retention.is_zero() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.contains("-task-") || !name.ends_with(".log") {
            continue;
        }
        let expired = entry
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > retention);
        if expired && let Err(error) = std::fs::remove_file(entry.path()) {
            tracing::warn!(path = %entry.path().display(), %error, "cannot remove an expired job log copy");
        }
    }
}
