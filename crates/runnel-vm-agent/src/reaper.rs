//! The guest agent's one reaper: as PID 1 of the guest (or a child subreaper) the agent inherits
//! every process whose parent exits (a step's `sleep 1 &`, a daemon that double-forks), and it
//! alone can collect them; left alone they stay zombies until the VM ends. One thread collects
//! every child that exits, the agent's own and the inherited alike, and hands the exit status of
//! a child started through [`Reaper::spawn`] to its waiter ([`Exit::wait`]), by pid.
//!
//! How it avoids stealing a status: it first looks at the next exited child without collecting
//! it (`waitid(P_ALL, WEXITED | WNOWAIT)`), then takes the registry lock, which
//! [`Reaper::spawn`] holds from before the fork until the child's pid is registered, and only
//! then collects that pid. So a child that exits at once is always found registered, and a child
//! whose `exec` failed (which the standard library collects itself inside `spawn`) is never
//! taken from under it.
//!
//! Must not: be used beside `Child::wait`/`try_wait` on a child it spawned (the status is the
//! reaper's); kill anything (what to end, and when, is the agent's caller's decision).

use std::collections::HashMap;
use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code.
    Exited(i32),
    /// A signal (this number) ended it.
    Signaled(i32),
}

impl Status {
    /// The exit code a shell would report: the code, or 128 plus the signal's number.
    #[must_use]
    pub fn code(self) -> i32 {
        match self {
            Status::Exited(code) => code,
            Status::Signaled(signal) => 128 + signal,
        }
    }
}

/// The exit of one spawned child, to wait for.
#[derive(Debug)]
pub struct Exit(Receiver<Status>);

impl Exit {
    /// Blocks until the child has exited; `None` if the reaper is gone.
    #[must_use]
    pub fn wait(self) -> Option<Status> {
        self.0.recv().ok()
    }

    /// Waits at most `timeout`; `Err(self)` if the child still runs.
    ///
    /// # Errors
    /// `self` back when the child has not exited within `timeout`.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Option<Status>, Exit> {
        match self.0.recv_timeout(timeout) {
            Ok(status) => Ok(Some(status)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(self),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
        }
    }
}

#[derive(Default)]
struct Registry {
    /// Waiters of children started through [`Reaper::spawn`], by pid.
    waiters: HashMap<i32, Sender<Status>>,
    /// Bumped at each spawn: wakes the reaper when it had no child left.
    generation: u64,
    /// Children collected that nobody waited for (inherited ones).
    orphans: u64,
}

struct Shared {
    registry: Mutex<Registry>,
    spawned: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The process's reaper; start one per process ([`Reaper::start`]) and spawn children through it.
#[derive(Clone)]
pub struct Reaper(Arc<Shared>);

impl Reaper {
    /// Starts the reaping thread. One per process: a second would race the first for statuses.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start() -> io::Result<Reaper> {
        let shared = Arc::new(Shared {
            registry: Mutex::default(),
            spawned: Condvar::new(),
        });
        let reaping = shared.clone();
        std::thread::Builder::new()
            .name("reaper".to_owned())
            .spawn(move || reap(&reaping))?;
        Ok(Reaper(shared))
    }

    /// Spawns `command`; its exit status comes through the returned [`Exit`] (never wait on
    /// the [`Child`] itself).
    ///
    /// # Errors
    /// What [`Command::spawn`] returns.
    pub fn spawn(&self, command: &mut Command) -> io::Result<(Child, Exit)> {
        let mut registry = self.0.lock();
        let child = command.spawn()?;
        let (sender, receiver) = mpsc::channel();
        if let Ok(pid) = i32::try_from(child.id()) {
            registry.waiters.insert(pid, sender);
        }
        registry.generation += 1;
        self.0.spawned.notify_all();
        Ok((child, Exit(receiver)))
    }

    /// How many children were collected that no [`Exit`] waited for.
    #[must_use]
    pub fn orphans_reaped(&self) -> u64 {
        self.0.lock().orphans
    }
}

fn reap(shared: &Shared) {
    loop {
        let generation = shared.lock().generation;
        match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(peeked) => {
                let Some(pid) = peeked.pid() else { continue };
                collect(shared, pid);
            }
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => {
                // No child at all: none can appear but through a spawn (an inherited process is
                // a descendant of one), so sleep until the next.
                let registry = shared.lock();
                let _unused = shared
                    .spawned
                    .wait_while(registry, |registry| registry.generation == generation);
            }
            Err(error) => {
                eprintln!("runnel-vm-agent: waitid: {error}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Collects `pid` (seen exited) and hands its status to its waiter, if it has one.
fn collect(shared: &Shared, pid: Pid) {
    // Under the lock: a spawn in progress has registered its child (or collected it itself
    // when its exec failed) before this goes on.
    let mut registry = shared.lock();
    let status = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Status::Exited(code),
        Ok(WaitStatus::Signaled(_, signal, _)) => Status::Signaled(signal as i32),
        // Collected already (a failed spawn's child), or not ended after all.
        Ok(_) | Err(_) => return,
    };
    match registry.waiters.remove(&pid.as_raw()) {
        Some(waiter) => {
            let _ = waiter.send(status);
        }
        None => registry.orphans += 1,
    }
}
