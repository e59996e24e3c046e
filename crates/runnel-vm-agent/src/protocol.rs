//! The runner ↔ agent protocol: length-prefixed frames over one byte stream (the guest's
//! virtio-serial port `runnel.agent`). A frame is a little-endian `u32` length, then that many
//! bytes: one kind byte and the message's fields. Integers are little-endian, byte strings and
//! strings a `u32` length and the bytes, lists a `u32` count and the items, an optional value
//! one byte (0 none, 1 some) and the value.
//!
//! Requests carry an `id` the runner chooses; every answer names the request it belongs to, so
//! several processes run at once over one port. The agent says [`Reply::Ready`] once, first.
//!
//! Owns: [`Request`], [`Reply`], [`encode_request`]/[`encode_reply`] (whole frames, length
//! included) and [`decode_request`]/[`decode_reply`] (one frame's body). Must not: do IO.

/// Frames longer than this are refused by both sides (a file read or written whole must fit).
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// The name of the guest's virtio-serial port the agent listens on.
pub const PORT_NAME: &str = "runnel.agent";

/// What the runner asks of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Start `argv` with exactly `env`, in `workdir`, in a process group of its own; its output
    /// comes as [`Reply::Stdout`]/[`Reply::Stderr`], its end as [`Reply::Exited`].
    Exec {
        id: u32,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: String,
    },
    /// SIGKILL the process group of the exec request `id` (nothing when it has ended).
    Kill { id: u32 },
    /// Write `contents` to `path` (parents created) with `mode`; answered by [`Reply::Done`].
    WriteFile {
        id: u32,
        path: String,
        contents: Vec<u8>,
        mode: u32,
    },
    /// Read `path`; answered by [`Reply::File`].
    ReadFile { id: u32, path: String },
    /// Look `program` up on `path` (a `:` list) as exec would; answered by [`Reply::Found`].
    FindProgram {
        id: u32,
        program: String,
        path: String,
    },
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The agent is up (sent once, first); `version` is the agent's crate version.
    Ready {
        version: String,
    },
    Stdout {
        id: u32,
        data: Vec<u8>,
    },
    Stderr {
        id: u32,
        data: Vec<u8>,
    },
    /// The process of exec request `id` ended: its exit code, or 128 + the signal that
    /// killed it (as shells report it).
    Exited {
        id: u32,
        code: i32,
    },
    /// A write succeeded.
    Done {
        id: u32,
    },
    /// A read: `None` when the file does not exist.
    File {
        id: u32,
        contents: Option<Vec<u8>>,
    },
    Found {
        id: u32,
        path: Option<String>,
    },
    /// Request `id` failed (a program that cannot start, a file that cannot be written).
    Failed {
        id: u32,
        message: String,
    },
}

/// Why a frame body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame ends in the middle of a field")]
    Truncated,
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    #[error("a string field is not UTF-8")]
    NotUtf8,
    #[error("{0} bytes left over after the message")]
    TrailingBytes(usize),
    #[error("a field's length ({0}) is larger than the frame")]
    TooLong(usize),
}

mod kind {
    pub(super) const EXEC: u8 = 1;
    pub(super) const KILL: u8 = 2;
    pub(super) const WRITE_FILE: u8 = 3;
    pub(super) const READ_FILE: u8 = 4;
    pub(super) const FIND_PROGRAM: u8 = 5;
    pub(super) const READY: u8 = 101;
    pub(super) const STDOUT: u8 = 102;
    pub(super) const STDERR: u8 = 103;
    pub(super) const EXITED: u8 = 104;
    pub(super) const DONE: u8 = 105;
    pub(super) const FILE: u8 = 106;
    pub(super) const FOUND: u8 = 107;
    pub(super) const FAILED: u8 = 108;
}

/// Builds one frame: the length is filled in by [`Writer::finish`].
struct Writer(Vec<u8>);

impl Writer {
    fn new(kind: u8) -> Writer {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&[0, 0, 0, 0, kind]);
        Writer(bytes)
    }
    fn u32(&mut self, value: u32) -> &mut Writer {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn i32(&mut self, value: i32) -> &mut Writer {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn bytes(&mut self, value: &[u8]) -> &mut Writer {
        // Frames over MAX_FRAME are refused on reading; a longer field cannot be sent whole.
        self.u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(value);
        self
    }
    fn str(&mut self, value: &str) -> &mut Writer {
        self.bytes(value.as_bytes())
    }
    fn strings(&mut self, values: &[String]) -> &mut Writer {
        self.u32(u32::try_from(values.len()).unwrap_or(u32::MAX));
        for value in values {
            self.str(value);
        }
        self
    }
    fn optional(&mut self, value: Option<&[u8]>) -> &mut Writer {
        match value {
            None => self.0.push(0),
            Some(value) => {
                self.0.push(1);
                self.bytes(value);
            }
        }
        self
    }
    fn finish(&mut self) -> Vec<u8> {
        let body = u32::try_from(self.0.len() - 4).unwrap_or(u32::MAX);
        self.0[..4].copy_from_slice(&body.to_le_bytes());
        std::mem::take(&mut self.0)
    }
}

/// Reads one frame body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        if count > self.0.len() {
            return Err(if count > MAX_FRAME {
                DecodeError::TooLong(count)
            } else {
                DecodeError::Truncated
            });
        }
        let (head, rest) = self.0.split_at(count);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut four = [0; 4];
        four.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(four))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        let mut four = [0; 4];
        four.copy_from_slice(self.take(4)?);
        Ok(i32::from_le_bytes(four))
    }
    fn len(&mut self) -> Result<usize, DecodeError> {
        let len = self.u32()? as usize;
        if len > self.0.len() {
            return Err(if len > MAX_FRAME {
                DecodeError::TooLong(len)
            } else {
                DecodeError::Truncated
            });
        }
        Ok(len)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let len = self.len()?;
        Ok(self.take(len)?.to_vec())
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?).map_err(|_| DecodeError::NotUtf8)
    }
    fn strings(&mut self) -> Result<Vec<String>, DecodeError> {
        let count = self.u32()?;
        // Each item takes at least its 4-byte length: a count larger than that is a lie.
        if count as usize > self.0.len() / 4 {
            return Err(DecodeError::Truncated);
        }
        (0..count).map(|_| self.string()).collect()
    }
    fn optional(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.bytes().map(Some),
        }
    }
    fn end(&self) -> Result<(), DecodeError> {
        match self.0.len() {
            0 => Ok(()),
            left => Err(DecodeError::TrailingBytes(left)),
        }
    }
}

/// `request` as one frame, length prefix included.
pub fn encode_request(request: &Request) -> Vec<u8> {
    match request {
        Request::Exec {
            id,
            argv,
            env,
            workdir,
        } => {
            let mut writer = Writer::new(kind::EXEC);
            writer.u32(*id).strings(argv);
            writer.u32(u32::try_from(env.len()).unwrap_or(u32::MAX));
            for (name, value) in env {
                writer.str(name).str(value);
            }
            writer.str(workdir).finish()
        }
        Request::Kill { id } => Writer::new(kind::KILL).u32(*id).finish(),
        Request::WriteFile {
            id,
            path,
            contents,
            mode,
        } => Writer::new(kind::WRITE_FILE)
            .u32(*id)
            .str(path)
            .bytes(contents)
            .u32(*mode)
            .finish(),
        Request::ReadFile { id, path } => Writer::new(kind::READ_FILE).u32(*id).str(path).finish(),
        Request::FindProgram { id, program, path } => Writer::new(kind::FIND_PROGRAM)
            .u32(*id)
            .str(program)
            .str(path)
            .finish(),
    }
}

/// `reply` as one frame, length prefix included.
pub fn encode_reply(reply: &Reply) -> Vec<u8> {
    match reply {
        Reply::Ready { version } => Writer::new(kind::READY).str(version).finish(),
        Reply::Stdout { id, data } => Writer::new(kind::STDOUT).u32(*id).bytes(data).finish(),
        Reply::Stderr { id, data } => Writer::new(kind::STDERR).u32(*id).bytes(data).finish(),
        Reply::Exited { id, code } => Writer::new(kind::EXITED).u32(*id).i32(*code).finish(),
        Reply::Done { id } => Writer::new(kind::DONE).u32(*id).finish(),
        Reply::File { id, contents } => Writer::new(kind::FILE)
            .u32(*id)
            .optional(contents.as_deref())
            .finish(),
        Reply::Found { id, path } => Writer::new(kind::FOUND)
            .u32(*id)
            .optional(path.as_deref().map(str::as_bytes))
            .finish(),
        Reply::Failed { id, message } => Writer::new(kind::FAILED).u32(*id).str(message).finish(),
    }
}

/// The length a frame's 4-byte prefix announces.
pub fn frame_len(prefix: [u8; 4]) -> usize {
    u32::from_le_bytes(prefix) as usize
}

/// One request from a frame body (the bytes after the length).
pub fn decode_request(body: &[u8]) -> Result<Request, DecodeError> {
    let mut reader = Reader(body);
    let request = match reader.u8()? {
        kind::EXEC => {
            let id = reader.u32()?;
            let argv = reader.strings()?;
            let count = reader.u32()?;
            if count as usize > reader.0.len() / 8 {
                return Err(DecodeError::Truncated);
            }
            let env = (0..count)
                .map(|_| Ok((reader.string()?, reader.string()?)))
                .collect::<Result<_, DecodeError>>()?;
            let workdir = reader.string()?;
            Request::Exec {
                id,
                argv,
                env,
                workdir,
            }
        }
        kind::KILL => Request::Kill { id: reader.u32()? },
        kind::WRITE_FILE => Request::WriteFile {
            id: reader.u32()?,
            path: reader.string()?,
            contents: reader.bytes()?,
            mode: reader.u32()?,
        },
        kind::READ_FILE => Request::ReadFile {
            id: reader.u32()?,
            path: reader.string()?,
        },
        kind::FIND_PROGRAM => Request::FindProgram {
            id: reader.u32()?,
            program: reader.string()?,
            path: reader.string()?,
        },
        other => return Err(DecodeError::UnknownKind(other)),
    };
    reader.end()?;
    Ok(request)
}

/// One reply from a frame body (the bytes after the length).
pub fn decode_reply(body: &[u8]) -> Result<Reply, DecodeError> {
    let mut reader = Reader(body);
    let reply = match reader.u8()? {
        kind::READY => Reply::Ready {
            version: reader.string()?,
        },
        kind::STDOUT => Reply::Stdout {
            id: reader.u32()?,
            data: reader.bytes()?,
        },
        kind::STDERR => Reply::Stderr {
            id: reader.u32()?,
            data: reader.bytes()?,
        },
        kind::EXITED => Reply::Exited {
            id: reader.u32()?,
            code: reader.i32()?,
        },
        kind::DONE => Reply::Done { id: reader.u32()? },
        kind::FILE => Reply::File {
            id: reader.u32()?,
            contents: reader.optional()?,
        },
        kind::FOUND => {
            let id = reader.u32()?;
            let path = match reader.optional()? {
                None => None,
                Some(bytes) => Some(String::from_utf8(bytes).map_err(|_| DecodeError::NotUtf8)?),
            };
            Reply::Found { id, path }
        }
        kind::FAILED => Reply::Failed {
            id: reader.u32()?,
            message: reader.string()?,
        },
        other => return Err(DecodeError::UnknownKind(other)),
    };
    reader.end()?;
    Ok(reply)
}

#[cfg(test)]
mod tests;
