//! The guest agent of the `vm` backend: PID 1 in a job's microVM (the initramfs's init hands
//! over to it after mounting the root disk and the job's directory). It opens the virtio-serial
//! port named [`PORT_NAME`], says [`Reply::Ready`], and answers the runner's requests: exec
//! (each process in a group of its own, output sent as it comes), kill, write and read files,
//! program look-ups. Several requests run at once; each answer names its request. As PID 1 it
//! collects every process that exits in the guest, its own children and those it inherits
//! (the [`Reaper`]), so what steps leave behind never piles up as zombies.
//!
//! A step ends when its process exits (its pipes are then drained for at most [`PIPE_GRACE`]):
//! processes it left running (`(sleep 300 &)`, a daemon) do not hold it, keep running into the
//! next steps as on GitHub (whose runner ends such leftovers with the job, not the step), and
//! end with the VM; what they print after their step ended is read and dropped.
//!
//! Must not: decide anything about jobs (timeouts and cancellation are the runner's: it sends
//! `Kill`); outlive the VM (the runner kills QEMU at teardown).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use runnel_vm_agent::protocol::{
    MAX_FRAME, PORT_NAME, Reply, Request, decode_request, encode_reply, frame_len,
};
use runnel_vm_agent::reaper::Reaper;

/// Where a process's output may still arrive after it exited (a background child holding the
/// pipe): the exit is reported after this much waiting for the pipes to close.
const PIPE_GRACE: Duration = Duration::from_millis(200);

/// The port, shared by every thread that answers.
#[derive(Clone)]
struct Port(Arc<Mutex<File>>);

impl Port {
    fn send(&self, reply: &Reply) {
        let frame = encode_reply(reply);
        if let Ok(mut port) = self.0.lock()
            && let Err(error) = port.write_all(&frame)
        {
            eprintln!("runnel-vm-agent: cannot write to the port: {error}");
        }
    }
}

/// Process groups of running exec requests, by request id.
type Running = Arc<Mutex<HashMap<u32, i32>>>;

/// What the request handlers share: the port, the running processes, the reaper.
#[derive(Clone)]
struct Agent {
    port: Port,
    running: Running,
    reaper: Reaper,
}

fn main() {
    // First: children inherited before the port opens are collected too.
    let reaper = match Reaper::start() {
        Ok(reaper) => reaper,
        Err(error) => {
            eprintln!("runnel-vm-agent: cannot start the reaper: {error}");
            std::process::exit(1);
        }
    };
    let path = match std::env::args().nth(1) {
        Some(path) => PathBuf::from(path),
        None => match find_port() {
            Some(path) => path,
            None => {
                eprintln!("runnel-vm-agent: no virtio-serial port named {PORT_NAME}");
                std::process::exit(1);
            }
        },
    };
    let port = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(port) => port,
        Err(error) => {
            eprintln!("runnel-vm-agent: cannot open {}: {error}", path.display());
            std::process::exit(1);
        }
    };
    let mut input = match port.try_clone() {
        Ok(input) => input,
        Err(error) => {
            eprintln!("runnel-vm-agent: {error}");
            std::process::exit(1);
        }
    };
    let output = Port(Arc::new(Mutex::new(port)));
    output.send(&Reply::Ready {
        version: env!("CARGO_PKG_VERSION").to_owned(),
    });
    let agent = Agent {
        port: output,
        running: Arc::default(),
        reaper,
    };
    loop {
        let mut prefix = [0; 4];
        if let Err(error) = input.read_exact(&mut prefix) {
            eprintln!("runnel-vm-agent: the port closed: {error}");
            // The runner went away: sleep until it kills the VM rather than panic the kernel.
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        let len = frame_len(prefix);
        if len > MAX_FRAME {
            eprintln!("runnel-vm-agent: a frame of {len} bytes; giving up on the stream");
            std::process::exit(1);
        }
        let mut body = vec![0; len];
        if input.read_exact(&mut body).is_err() {
            continue;
        }
        match decode_request(&body) {
            Ok(request) => handle(request, &agent),
            Err(error) => eprintln!("runnel-vm-agent: bad request: {error}"),
        }
    }
}

/// `/dev/vportNpM` whose name is [`PORT_NAME`].
fn find_port() -> Option<PathBuf> {
    for _ in 0..100 {
        if let Ok(entries) = std::fs::read_dir("/sys/class/virtio-ports") {
            for entry in entries.flatten() {
                let name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
                if name.trim() == PORT_NAME {
                    return Some(Path::new("/dev").join(entry.file_name()));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn handle(request: Request, agent: &Agent) {
    let port = &agent.port;
    match request {
        Request::Exec {
            id,
            argv,
            env,
            workdir,
        } => {
            let agent = agent.clone();
            std::thread::spawn(move || exec(id, &argv, env, &workdir, &agent));
        }
        Request::Kill { id } => {
            let group = agent
                .running
                .lock()
                .ok()
                .and_then(|map| map.get(&id).copied());
            if let Some(pgid) = group {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
        }
        Request::WriteFile {
            id,
            path,
            contents,
            mode,
        } => {
            let reply = match write_file(Path::new(&path), &contents, mode) {
                Ok(()) => Reply::Done { id },
                Err(error) => Reply::Failed {
                    id,
                    message: format!("write {path}: {error}"),
                },
            };
            port.send(&reply);
        }
        Request::ReadFile { id, path } => {
            // A link is never followed (the runner's rule for files it reads back: the text
            // is `runnel_engine::backend::LINK_REFUSED`'s).
            let is_link =
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            let reply = match std::fs::read(&path) {
                _ if is_link => Reply::Failed {
                    id,
                    message: format!(
                        "read {path}: is a symbolic link: files the runner reads back are read \
                         only as regular files, never through a link"
                    ),
                },
                Ok(contents) => Reply::File {
                    id,
                    contents: Some(contents),
                },
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    Reply::File { id, contents: None }
                }
                Err(error) => Reply::Failed {
                    id,
                    message: format!("read {path}: {error}"),
                },
            };
            port.send(&reply);
        }
        Request::FindProgram { id, program, path } => {
            let found = which(&program, &path).map(|p| p.to_string_lossy().into_owned());
            port.send(&Reply::Found { id, path: found });
        }
    }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, contents)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn which(program: &str, path: &str) -> Option<PathBuf> {
    let executable = |candidate: &Path| {
        std::fs::metadata(candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let candidate = PathBuf::from(program);
        return executable(&candidate).then_some(candidate);
    }
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| executable(candidate))
}

fn exec(id: u32, argv: &[String], env: Vec<(String, String)>, workdir: &str, agent: &Agent) {
    let Agent {
        port,
        running,
        reaper,
    } = agent;
    let Some((program, args)) = argv.split_first() else {
        port.send(&Reply::Failed {
            id,
            message: "empty command line".to_owned(),
        });
        return;
    };
    // The program is looked up on the job's PATH, not the agent's.
    let search = env
        .iter()
        .find(|(name, _)| name == "PATH")
        .map_or("/usr/local/bin:/usr/bin:/bin", |(_, value)| value.as_str());
    let resolved = which(program, search).unwrap_or_else(|| PathBuf::from(program));
    let spawned = reaper.spawn(
        Command::new(&resolved)
            .args(args)
            .env_clear()
            .envs(env)
            .current_dir(workdir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let (mut child, exit) = match spawned {
        Ok(child) => child,
        Err(error) => {
            port.send(&Reply::Failed {
                id,
                message: format!("cannot start {program}: {error}"),
            });
            return;
        }
    };
    if let Ok(pid) = i32::try_from(child.id())
        && let Ok(mut map) = running.lock()
    {
        map.insert(id, pid);
    }
    let (closed, pipes_closed) = mpsc::channel();
    let ended = Arc::new(Mutex::new(false));
    if let Some(stdout) = child.stdout.take() {
        forward(
            stdout,
            id,
            false,
            port.clone(),
            closed.clone(),
            ended.clone(),
        );
    }
    if let Some(stderr) = child.stderr.take() {
        forward(stderr, id, true, port.clone(), closed, ended.clone());
    }
    // The reaper's status, never `child.wait()`: the reaper collects every child.
    let code = exit.wait().map_or(-1, |status| status.code());
    if let Ok(mut map) = running.lock() {
        map.remove(&id);
    }
    // Both pipes, or the grace: the exit comes after the process's last output.
    for _ in 0..2 {
        if pipes_closed.recv_timeout(PIPE_GRACE).is_err() {
            break;
        }
    }
    // Under the lock: no output of this request goes out after its exit.
    let mut ended = ended.lock().unwrap_or_else(PoisonError::into_inner);
    *ended = true;
    port.send(&Reply::Exited { id, code });
}

/// Sends what `pipe` produces as it comes, until its request's exit went out (`ended`); reads
/// on after that (a leftover process writing must not block on a full pipe), dropping it. Says
/// on `closed` when the pipe ends.
fn forward(
    mut pipe: impl Read + Send + 'static,
    id: u32,
    stderr: bool,
    port: Port,
    closed: mpsc::Sender<()>,
    ended: Arc<Mutex<bool>>,
) {
    std::thread::spawn(move || {
        let mut buffer = vec![0; 32 * 1024];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(count) => {
                    let ended = ended.lock().unwrap_or_else(PoisonError::into_inner);
                    if *ended {
                        continue;
                    }
                    let data = buffer[..count].to_vec();
                    port.send(&if stderr {
                        Reply::Stderr { id, data }
                    } else {
                        Reply::Stdout { id, data }
                    });
                }
            }
        }
        let _ = closed.send(());
    });
}
