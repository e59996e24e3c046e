//! The runner's end of the agent channel: QEMU's virtio-serial port as a Unix socket in the job
//! directory. One task reads frames and hands each reply to the request it names; requests are
//! written whole under a lock, so several run at once (a step and the engine's file reads).
//!
//! Owns: request ids, routing replies, noticing that the agent went away (every waiting request
//! then ends with [`VmError::AgentGone`]). Must not: know jobs or steps.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runnel_vm_agent::protocol::{
    MAX_FRAME, Reply, Request, decode_reply, encode_request, frame_len,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::error::VmError;

/// Where replies go, by request id; `None` once the agent went away (no request is added then).
type Pending = Arc<Mutex<Option<HashMap<u32, mpsc::UnboundedSender<Reply>>>>>;

/// A connected agent.
pub(crate) struct Channel {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU32,
    reader: tokio::task::JoinHandle<()>,
}

/// Replies to one request; forgets the request when dropped.
pub(crate) struct Replies {
    pub(crate) id: u32,
    receiver: mpsc::UnboundedReceiver<Reply>,
    pending: Pending,
}

impl Replies {
    /// The next reply; `None` when the agent went away.
    pub(crate) async fn next(&mut self) -> Option<Reply> {
        self.receiver.recv().await
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.pending.lock()
            && let Some(pending) = pending.as_mut()
        {
            pending.remove(&self.id);
        }
    }
}

/// Connects to QEMU's socket (created when QEMU starts: retried until `patience` ends).
pub(crate) async fn connect(socket: &Path, patience: Duration) -> Result<UnixStream, VmError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match UnixStream::connect(socket).await {
            Ok(stream) => return Ok(stream),
            Err(error) if tokio::time::Instant::now() >= deadline => {
                return Err(VmError::Io {
                    what: format!("connect to the agent socket {}", socket.display()),
                    source: error,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Reads one frame; `Ok(None)` at the end of the stream.
async fn read_frame(reader: &mut OwnedReadHalf) -> Result<Option<Reply>, VmError> {
    let mut prefix = [0; 4];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(source) => {
            return Err(VmError::Io {
                what: "read from the agent".to_owned(),
                source,
            });
        }
    }
    let len = frame_len(prefix);
    if len > MAX_FRAME {
        return Err(VmError::Protocol(
            runnel_vm_agent::protocol::DecodeError::TooLong(len),
        ));
    }
    let mut body = vec![0; len];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|source| VmError::Io {
            what: "read from the agent".to_owned(),
            source,
        })?;
    decode_reply(&body).map(Some).map_err(VmError::Protocol)
}

/// Waits for the agent's first frame, `Ready`; its version.
pub(crate) async fn wait_ready(reader: &mut OwnedReadHalf) -> Result<String, VmError> {
    match read_frame(reader).await? {
        Some(Reply::Ready { version }) => Ok(version),
        Some(_) => Err(VmError::Unexpected { id: 0 }),
        None => Err(VmError::AgentGone),
    }
}

impl Channel {
    /// Starts routing replies read from `reader` (after `Ready`).
    pub(crate) fn start(mut reader: OwnedReadHalf, writer: OwnedWriteHalf) -> Channel {
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let routes = pending.clone();
        let reader = tokio::spawn(async move {
            loop {
                let reply = match read_frame(&mut reader).await {
                    Ok(Some(reply)) => reply,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "the VM agent's channel broke");
                        break;
                    }
                };
                let Some(id) = reply_id(&reply) else {
                    continue;
                };
                let route = routes
                    .lock()
                    .ok()
                    .and_then(|map| map.as_ref().and_then(|map| map.get(&id).cloned()));
                if let Some(route) = route {
                    let _ = route.send(reply);
                }
            }
            // Every waiting request sees the end, and no new one is added.
            if let Ok(mut map) = routes.lock() {
                *map = None;
            }
        });
        Channel {
            writer: tokio::sync::Mutex::new(writer),
            pending,
            next_id: AtomicU32::new(1),
            reader,
        }
    }

    /// Sends the request `build` makes with a fresh id; its replies come through the result.
    pub(crate) async fn request(
        &self,
        build: impl FnOnce(u32) -> Request,
    ) -> Result<Replies, VmError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::unbounded_channel();
        match self.pending.lock().as_deref_mut() {
            Ok(Some(pending)) => {
                pending.insert(id, sender);
            }
            _ => return Err(VmError::AgentGone),
        }
        let replies = Replies {
            id,
            receiver,
            pending: self.pending.clone(),
        };
        self.send(&build(id)).await?;
        Ok(replies)
    }

    /// Sends a request that gets no answer (`Kill`).
    pub(crate) async fn send(&self, request: &Request) -> Result<(), VmError> {
        let frame = encode_request(request);
        let mut writer = self.writer.lock().await;
        writer
            .write_all(&frame)
            .await
            .map_err(|source| VmError::Io {
                what: "write to the agent".to_owned(),
                source,
            })
    }

    /// Stops reading (the VM is being torn down).
    pub(crate) fn close(&self) {
        self.reader.abort();
        if let Ok(mut pending) = self.pending.lock() {
            *pending = None;
        }
    }
}

fn reply_id(reply: &Reply) -> Option<u32> {
    match reply {
        Reply::Ready { .. } => None,
        Reply::Stdout { id, .. }
        | Reply::Stderr { id, .. }
        | Reply::Exited { id, .. }
        | Reply::Done { id }
        | Reply::File { id, .. }
        | Reply::Found { id, .. }
        | Reply::Failed { id, .. } => Some(*id),
    }
}

#[cfg(test)]
mod tests {
    use runnel_vm_agent::protocol::{decode_request, encode_reply};

    use super::*;

    /// Reads one request frame from the fake agent's end.
    async fn read_request(stream: &mut UnixStream) -> Request {
        let mut prefix = [0; 4];
        stream.read_exact(&mut prefix).await.expect("prefix");
        let mut body = vec![0; frame_len(prefix)];
        stream.read_exact(&mut body).await.expect("body");
        decode_request(&body).expect("a request")
    }

    #[tokio::test]
    async fn replies_reach_their_request_and_a_gone_agent_ends_every_wait() {
        let (ours, mut agent) = UnixStream::pair().expect("socket pair");
        let (reader, writer) = ours.into_split();
        let channel = Channel::start(reader, writer);
        let mut first = channel
            .request(|id| Request::ReadFile {
                id,
                path: "/a".to_owned(),
            })
            .await
            .expect("sent");
        let mut second = channel
            .request(|id| Request::ReadFile {
                id,
                path: "/b".to_owned(),
            })
            .await
            .expect("sent");
        let (Request::ReadFile { id: a, .. }, Request::ReadFile { id: b, .. }) = (
            read_request(&mut agent).await,
            read_request(&mut agent).await,
        ) else {
            panic!("two reads");
        };
        // Answered in the other order, with a frame for nobody in between.
        for reply in [
            Reply::File {
                id: b,
                contents: None,
            },
            Reply::Done { id: 999 },
            Reply::File {
                id: a,
                contents: Some(b"A".to_vec()),
            },
        ] {
            agent.write_all(&encode_reply(&reply)).await.expect("reply");
        }
        assert_eq!(
            first.next().await,
            Some(Reply::File {
                id: a,
                contents: Some(b"A".to_vec())
            })
        );
        assert_eq!(
            second.next().await,
            Some(Reply::File {
                id: b,
                contents: None
            })
        );
        drop(agent);
        assert_eq!(first.next().await, None, "the agent went away");
        let after = channel
            .request(|id| Request::Kill { id })
            .await
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            after.as_deref(),
            Some("the guest agent went away (the VM stopped or its channel broke)")
        );
    }
}
