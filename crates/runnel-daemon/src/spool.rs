//! The durable log spool: every running task's log rows, step states, acknowledged index and
//! final result are appended to a file before they are sent, so a daemon killed mid-job can, at
//! its next start, deliver what Gitea had not acknowledged and close the task.
//!
//! Format: one file per task, `task-<id>.spool`, a sequence of length-delimited protobuf
//! [`Record`]s (rows and states are the protocol's own `LogRow`/`TaskState`). Rows are numbered
//! by their order in the file from the header's `first_row_index`. A torn last record (killed
//! mid-write) is cut off when the file is read back. A write is one `write(2)` of a whole
//! record: it survives the process being killed (the kernel holds it); surviving a power loss
//! would need an fsync per row, which is deliberately not done.
//!
//! Size: once a file passes [`COMPACT_BYTES`], the next acknowledgement rewrites it with only
//! the unacknowledged rows (rename over the old file), so a file holds at most the backlog plus
//! that much. Files left by tasks that could not be delivered are pruned after [`MAX_AGE`].
//!
//! [`Parked`] lists the tasks of this process whose final report gave up (Gitea unreachable
//! for longer than the reporter's patience): their files wait for the daemon's redelivery loop,
//! which reads them back one at a time with [`read_task`].
//!
//! Owns: the file format, writing, reading back, compaction, pruning and the parked list. Must
//! not: talk to Gitea or decide what a recovered task's result is (the reporter does).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prost::Message;
use runnel_protocol::proto::runner::{LogRow, TaskState};
use tokio::sync::Notify;

/// A file past this size is compacted at the next acknowledgement.
const COMPACT_BYTES: u64 = 8 * 1024 * 1024;
/// Spool files untouched for this long are deleted at start (Gitea has failed those tasks as
/// zombies long before).
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// One entry of a spool file. Fields not set are absent on the wire.
#[derive(Clone, PartialEq, Message)]
struct Record {
    /// Header (first record only): the task.
    #[prost(int64, tag = "1")]
    task_id: i64,
    /// Header: the Gitea instance the task came from.
    #[prost(string, tag = "2")]
    address: String,
    /// Header: absolute index of the first row in this file.
    #[prost(int64, tag = "3")]
    first_row_index: i64,
    /// Rows, appended in order.
    #[prost(message, repeated, tag = "4")]
    rows: Vec<LogRow>,
    /// A snapshot of the task's state (steps; with a result when `finished`).
    #[prost(message, optional, tag = "5")]
    state: Option<TaskState>,
    /// With `state`: the step in progress, whose row count grows with later rows.
    #[prost(int64, optional, tag = "6")]
    current_step: Option<i64>,
    /// Rows Gitea holds (its `ack_index`).
    #[prost(int64, optional, tag = "7")]
    acked: Option<i64>,
    /// The job ended: `state` carries the result, `outputs` the job's outputs.
    #[prost(bool, tag = "8")]
    finished: bool,
    #[prost(map = "string, string", tag = "9")]
    outputs: HashMap<String, String>,
}

/// The appending side of one task's spool file. Write failures are logged once and end
/// spooling for the task; the job itself goes on.
pub(crate) struct TaskSpool {
    path: PathBuf,
    file: Option<std::fs::File>,
    bytes: u64,
    task_id: i64,
    address: String,
}

impl TaskSpool {
    /// Creates (or truncates) the spool file of `task_id` in `dir`.
    pub(crate) fn create(dir: &Path, task_id: i64, address: &str) -> std::io::Result<TaskSpool> {
        // Job logs are for the runner's user only (they are masked, but still job output).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let path = spool_path(dir, task_id);
        let file = std::fs::File::create(&path)?;
        let mut spool = TaskSpool {
            path,
            file: Some(file),
            bytes: 0,
            task_id,
            address: address.to_owned(),
        };
        spool.append(&spool.header(0));
        Ok(spool)
    }

    /// Appends to a file read back by [`read_dir`] (already cut to its last whole record).
    fn reopen(recovered: &Recovered) -> std::io::Result<TaskSpool> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&recovered.path)?;
        Ok(TaskSpool {
            path: recovered.path.clone(),
            file: Some(file),
            bytes: recovered.bytes,
            task_id: recovered.task_id,
            address: recovered.address.clone(),
        })
    }

    fn header(&self, first_row_index: i64) -> Record {
        Record {
            task_id: self.task_id,
            address: self.address.clone(),
            first_row_index,
            ..Record::default()
        }
    }

    fn append(&mut self, record: &Record) {
        let Some(file) = &mut self.file else {
            return;
        };
        let bytes = record.encode_length_delimited_to_vec();
        match file.write_all(&bytes) {
            Ok(()) => self.bytes += bytes.len() as u64,
            Err(error) => {
                tracing::error!(
                    task_id = self.task_id,
                    path = %self.path.display(),
                    %error,
                    "cannot write the log spool; this task's rows are kept in memory only"
                );
                self.file = None;
            }
        }
    }

    /// Whether records are still being written.
    pub(crate) fn is_active(&self) -> bool {
        self.file.is_some()
    }

    pub(crate) fn rows(&mut self, rows: &[LogRow]) {
        self.append(&Record {
            rows: rows.to_vec(),
            ..Record::default()
        });
    }

    pub(crate) fn state(&mut self, state: &TaskState, current_step: Option<usize>) {
        self.append(&Record {
            state: Some(state.clone()),
            current_step: current_step.map(|i| i as i64),
            ..Record::default()
        });
    }

    /// Records Gitea's acknowledgement.
    pub(crate) fn acked(&mut self, acked: i64) {
        self.append(&Record {
            acked: Some(acked),
            ..Record::default()
        });
    }

    /// Whether the file has grown enough that the next acknowledgement should
    /// [`compact`](TaskSpool::compact) it.
    pub(crate) fn wants_compaction(&self) -> bool {
        self.file.is_some() && self.bytes >= COMPACT_BYTES
    }

    /// Records Gitea's acknowledgement by rewriting the file with only the `unacked` rows and
    /// the current state.
    pub(crate) fn compact(
        &mut self,
        acked: i64,
        unacked: &[LogRow],
        state: &TaskState,
        current_step: Option<usize>,
    ) {
        let header = self.header(acked);
        let tail = Record {
            rows: unacked.to_vec(),
            state: Some(state.clone()),
            current_step: current_step.map(|i| i as i64),
            acked: Some(acked),
            ..Record::default()
        };
        let temp = self.path.with_extension("spool.tmp");
        let written = (|| -> std::io::Result<(std::fs::File, u64)> {
            let mut file = std::fs::File::create(&temp)?;
            let mut bytes = header.encode_length_delimited_to_vec();
            bytes.extend(tail.encode_length_delimited_to_vec());
            file.write_all(&bytes)?;
            std::fs::rename(&temp, &self.path)?;
            Ok((file, bytes.len() as u64))
        })();
        match written {
            Ok((file, bytes)) => {
                tracing::debug!(task_id = self.task_id, bytes, "log spool compacted");
                self.file = Some(file);
                self.bytes = bytes;
            }
            Err(error) => {
                tracing::warn!(task_id = self.task_id, %error, "cannot compact the log spool");
                let _ = std::fs::remove_file(&temp);
                self.acked(acked);
            }
        }
    }

    pub(crate) fn finished(&mut self, state: &TaskState, outputs: &BTreeMap<String, String>) {
        self.append(&Record {
            state: Some(state.clone()),
            finished: true,
            outputs: outputs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Record::default()
        });
    }

    /// The task is delivered: its file goes.
    pub(crate) fn remove(mut self) {
        self.file = None;
        if let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove a delivered spool file");
        }
    }
}

fn spool_path(dir: &Path, task_id: i64) -> PathBuf {
    dir.join(format!("task-{task_id}.spool"))
}

/// A task read back from its spool file.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) path: PathBuf,
    bytes: u64,
    pub(crate) task_id: i64,
    pub(crate) address: String,
    /// Absolute index of `rows[0]`.
    pub(crate) first_row_index: i64,
    pub(crate) rows: Vec<LogRow>,
    pub(crate) acked: i64,
    /// The last state snapshot, and the step that was in progress then.
    pub(crate) state: Option<TaskState>,
    pub(crate) current_step: Option<usize>,
    /// The job had ended: its final state (with the result) and outputs.
    pub(crate) finished: Option<(TaskState, BTreeMap<String, String>)>,
}

impl Recovered {
    /// Continues writing this task's file.
    pub(crate) fn reopen(&self) -> std::io::Result<TaskSpool> {
        TaskSpool::reopen(self)
    }
}

/// The tasks whose final report gave up while this process runs, waiting for redelivery.
/// Cheap to clone; clones share the list.
#[derive(Clone, Default)]
pub(crate) struct Parked {
    inner: Arc<ParkedInner>,
}

#[derive(Default)]
struct ParkedInner {
    ids: Mutex<BTreeSet<i64>>,
    /// A task was parked.
    parked: Notify,
    /// The server looks reachable again.
    nudged: Notify,
}

impl Parked {
    fn ids(&self) -> std::sync::MutexGuard<'_, BTreeSet<i64>> {
        self.inner
            .ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `task_id`'s spool file holds an undelivered report.
    pub(crate) fn park(&self, task_id: i64) {
        self.ids().insert(task_id);
        self.inner.parked.notify_one();
    }

    /// Takes `task_id` off the list (before an attempt, which parks it again if it fails).
    pub(crate) fn unpark(&self, task_id: i64) {
        self.ids().remove(&task_id);
    }

    /// The parked tasks, oldest id first.
    pub(crate) fn list(&self) -> Vec<i64> {
        self.ids().iter().copied().collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids().is_empty()
    }

    /// The server answered again after failing: worth trying the parked reports now.
    pub(crate) fn nudge(&self) {
        if !self.is_empty() {
            self.inner.nudged.notify_one();
        }
    }

    /// Waits for the next [`park`](Parked::park) (one that came before the wait counts).
    pub(crate) async fn parked(&self) {
        self.inner.parked.notified().await;
    }

    /// Waits for the next [`nudge`](Parked::nudge) (one that came before the wait counts).
    pub(crate) async fn nudged(&self) {
        self.inner.nudged.notified().await;
    }
}

/// Reads the spool file of `task_id` in `dir` back, as [`read_dir`] does for every file;
/// `None` when it is gone (delivered, or pruned for its age) or unreadable.
pub(crate) fn read_task(dir: &Path, task_id: i64) -> Option<Recovered> {
    let path = spool_path(dir, task_id);
    let age = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())?;
    load(&path, age)
}

/// One spool file read back, or deleted with a warning when it is older than [`MAX_AGE`] or has
/// no header.
fn load(path: &Path, age: Duration) -> Option<Recovered> {
    if age > MAX_AGE {
        tracing::warn!(path = %path.display(), "deleting a spool file older than 7 days without delivering it");
        let _ = std::fs::remove_file(path);
        return None;
    }
    match read_file(path) {
        Ok(Some(recovered)) => Some(recovered),
        Ok(None) => {
            tracing::warn!(path = %path.display(), "deleting a spool file without a header");
            let _ = std::fs::remove_file(path);
            None
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read a spool file");
            None
        }
    }
}

/// Reads every spool file in `dir` (none when it does not exist), cutting torn tails; files
/// older than [`MAX_AGE`] and unreadable ones are deleted with a warning.
pub(crate) fn read_dir(dir: &Path) -> Vec<Recovered> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot read the log spool directory");
            return Vec::new();
        }
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".spool.tmp") {
            // A compaction that did not finish; the original is still in place.
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if !(name.starts_with("task-") && name.ends_with(".spool")) {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .unwrap_or_default();
        found.extend(load(&path, age));
    }
    found.sort_by_key(|r| r.task_id);
    found
}

fn read_file(path: &Path) -> std::io::Result<Option<Recovered>> {
    let bytes = std::fs::read(path)?;
    let mut rest: &[u8] = &bytes;
    let mut records = Vec::new();
    let mut good = 0usize;
    while !rest.is_empty() {
        match Record::decode_length_delimited(&mut rest) {
            Ok(record) => {
                records.push(record);
                good = bytes.len() - rest.len();
            }
            Err(_) => break,
        }
    }
    if good < bytes.len() {
        tracing::info!(path = %path.display(), torn = bytes.len() - good, "cutting a torn record off a spool file");
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.set_len(good as u64)?;
    }
    let mut records = records.into_iter();
    let Some(header) = records.next() else {
        return Ok(None);
    };
    if header.task_id == 0 {
        return Ok(None);
    }
    let mut recovered = Recovered {
        path: path.to_owned(),
        bytes: good as u64,
        task_id: header.task_id,
        address: header.address,
        first_row_index: header.first_row_index,
        rows: header.rows,
        acked: header.first_row_index,
        state: None,
        current_step: None,
        finished: None,
    };
    for record in records {
        recovered.rows.extend(record.rows);
        if let Some(acked) = record.acked {
            recovered.acked = recovered.acked.max(acked);
        }
        if let Some(state) = record.state {
            if record.finished {
                recovered.finished = Some((state, record.outputs.into_iter().collect()));
            } else {
                recovered.current_step = record.current_step.and_then(|i| usize::try_from(i).ok());
                recovered.state = Some(state);
            }
        }
    }
    Ok(Some(recovered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;
    use runnel_protocol::proto::runner::StepState;

    fn row(text: &str) -> LogRow {
        LogRow {
            time: Some(Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            content: text.to_owned(),
        }
    }

    fn state(steps: usize) -> TaskState {
        TaskState {
            id: 7,
            steps: (0..steps)
                .map(|id| StepState {
                    id: id as i64,
                    ..StepState::default()
                })
                .collect(),
            ..TaskState::default()
        }
    }

    #[test]
    fn rows_states_acks_and_results_read_back() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut spool =
            TaskSpool::create(dir.path(), 7, "http://gitea").unwrap_or_else(|e| panic!("{e}"));
        spool.rows(&[row("a"), row("b")]);
        spool.state(&state(2), Some(1));
        spool.acked(1);
        spool.rows(&[row("c")]);
        let found = read_dir(dir.path());
        assert_eq!(found.len(), 1);
        let r = &found[0];
        assert_eq!(
            (r.task_id, r.address.as_str(), r.acked),
            (7, "http://gitea", 1)
        );
        let texts: Vec<&str> = r.rows.iter().map(|r| r.content.as_str()).collect();
        assert_eq!(texts, ["a", "b", "c"]);
        assert_eq!(r.current_step, Some(1));
        assert!(r.finished.is_none());

        let mut spool = r.reopen().unwrap_or_else(|e| panic!("{e}"));
        let outputs = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        spool.finished(&state(2), &outputs);
        let found = read_dir(dir.path());
        assert_eq!(found[0].finished.as_ref().map(|f| &f.1), Some(&outputs));
        found.into_iter().for_each(|r| {
            if let Ok(spool) = r.reopen() {
                spool.remove();
            }
        });
        assert!(read_dir(dir.path()).is_empty());
    }

    #[test]
    fn a_torn_tail_is_cut_and_appending_goes_on_after_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut spool = TaskSpool::create(dir.path(), 9, "x").unwrap_or_else(|e| panic!("{e}"));
        spool.rows(&[row("whole")]);
        let path = spool_path(dir.path(), 9);
        // Half of a record, as a kill in the middle of a write leaves it.
        let torn = Record {
            rows: vec![row("torn")],
            ..Record::default()
        }
        .encode_length_delimited_to_vec();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        file.write_all(&torn[..torn.len() / 2])
            .unwrap_or_else(|e| panic!("{e}"));
        let found = read_dir(dir.path());
        let texts: Vec<&str> = found[0].rows.iter().map(|r| r.content.as_str()).collect();
        assert_eq!(texts, ["whole"]);
        let mut spool = found[0].reopen().unwrap_or_else(|e| panic!("{e}"));
        spool.rows(&[row("after")]);
        let found = read_dir(dir.path());
        let texts: Vec<&str> = found[0].rows.iter().map(|r| r.content.as_str()).collect();
        assert_eq!(texts, ["whole", "after"]);
    }

    #[test]
    fn one_parked_task_is_read_back_by_its_id() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for id in [4, 5] {
            let mut spool =
                TaskSpool::create(dir.path(), id, "x").unwrap_or_else(|e| panic!("{e}"));
            spool.rows(&[row(&format!("row of {id}"))]);
        }
        let found = read_task(dir.path(), 5).unwrap_or_else(|| panic!("task 5 not read"));
        assert_eq!(found.task_id, 5);
        assert_eq!(found.rows[0].content, "row of 5");
        assert!(
            read_task(dir.path(), 6).is_none(),
            "no file, nothing to deliver"
        );
    }

    #[tokio::test]
    async fn parking_and_nudges_wake_the_redelivery_a_nudge_only_with_something_parked() {
        let quick = Duration::from_millis(20);
        let parked = Parked::default();
        parked.nudge();
        assert!(
            tokio::time::timeout(quick, parked.nudged()).await.is_err(),
            "nothing parked: a nudge wakes nobody"
        );
        parked.park(9);
        parked.park(3);
        assert!(tokio::time::timeout(quick, parked.parked()).await.is_ok());
        assert!(
            tokio::time::timeout(quick, parked.nudged()).await.is_err(),
            "parking is no nudge"
        );
        assert_eq!(parked.list(), [3, 9]);
        parked.unpark(3);
        parked.nudge();
        assert!(tokio::time::timeout(quick, parked.nudged()).await.is_ok());
        assert_eq!(parked.list(), [9]);
    }

    #[test]
    fn a_large_file_is_compacted_to_the_unacknowledged_rows() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut spool = TaskSpool::create(dir.path(), 3, "x").unwrap_or_else(|e| panic!("{e}"));
        let big = "x".repeat(64 * 1024);
        for _ in 0..(COMPACT_BYTES / (64 * 1024) + 1) {
            spool.rows(&[row(&big)]);
        }
        let total = COMPACT_BYTES / (64 * 1024) + 1;
        assert!(spool.wants_compaction());
        spool.compact(total as i64 - 1, &[row("last")], &state(1), Some(0));
        assert!(spool.bytes < 1024, "compacted to {} bytes", spool.bytes);
        spool.rows(&[row("next")]);
        let found = read_dir(dir.path());
        let r = &found[0];
        assert_eq!(r.first_row_index, total as i64 - 1);
        assert_eq!(r.acked, total as i64 - 1);
        let texts: Vec<&str> = r.rows.iter().map(|r| r.content.as_str()).collect();
        assert_eq!(texts, ["last", "next"]);
    }
}
