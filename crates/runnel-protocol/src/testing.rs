//! A stand-in for Gitea's runner endpoints, for tests of this crate and of its callers (the
//! daemon): an HTTP/1.1 server on 127.0.0.1 that hands each request to the test's handler and
//! writes back the handler's [`Answer`]. One request per connection (`Connection: close`), so
//! every call the client makes is seen. Compiled only with the `test-support` feature.
//!
//! Owns: the wire side of a fake server (reading a request, framing an answer, Connect's error
//! JSON). Must not: script Gitea's behaviour; the handler does that.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request line and headers, without the blank line.
    pub head: String,
    pub body: Vec<u8>,
}

impl Request {
    /// The path of the request line (`/api/actions/runner.v1.RunnerService/FetchTask`).
    pub fn path(&self) -> &str {
        self.head
            .lines()
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .unwrap_or_default()
    }

    /// The method of the service the request calls (`FetchTask`, `UpdateLog`, `Ping`).
    pub fn rpc(&self) -> &str {
        self.path().rsplit('/').next().unwrap_or_default()
    }

    /// The body as a protobuf message (Connect's `application/proto`).
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.body.as_slice())
    }
}

/// What the server writes back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// A Connect success carrying `message`.
    pub fn proto(message: &impl prost::Message) -> Answer {
        Answer {
            status: 200,
            headers: vec![("Content-Type", "application/proto".to_owned())],
            body: message.encode_to_vec(),
        }
    }

    /// A Connect error: `{"code": code, "message": message}` with HTTP `status`.
    pub fn json_error(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type", "application/json".to_owned())],
            body: serde_json::json!({"code": code, "message": message})
                .to_string()
                .into_bytes(),
        }
    }

    /// A bare answer, as a proxy in front of Gitea might give (`502 bad gateway`).
    pub fn text(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }
}

/// A running server; it stops when the handler returns `None` or the test's runtime ends.
#[derive(Debug, Clone)]
pub struct MockServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

impl MockServer {
    /// The heads of the requests answered so far, in order.
    pub fn heads(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on 127.0.0.1 for the mock server")]
pub struct ServeError(#[source] std::io::Error);

/// Serves every request with `handler`'s answer; `None` closes that connection unanswered
/// and stops the server. Connections are handled concurrently, the handler one request at a
/// time.
pub async fn serve(
    handler: impl FnMut(&Request) -> Option<Answer> + Send + 'static,
) -> Result<MockServer, ServeError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(ServeError)?;
    let url = format!("http://{}", listener.local_addr().map_err(ServeError)?);
    let heads = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(Mutex::new(handler));
    let server = MockServer {
        url,
        heads: heads.clone(),
    };
    let stopped = Arc::new(Notify::new());
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = stopped.notified() => return,
            };
            let Ok((socket, _)) = accepted else {
                return;
            };
            let handler = handler.clone();
            let heads = heads.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move {
                let Some((socket, request)) = read_request(socket).await else {
                    return;
                };
                let answer = {
                    let mut handler = handler.lock().unwrap_or_else(PoisonError::into_inner);
                    heads
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(request.head.clone());
                    handler(&request)
                };
                match answer {
                    Some(answer) => write_answer(socket, &answer).await,
                    None => stopped.notify_one(),
                }
            });
        }
    });
    Ok(server)
}

/// Serves `answers` in order, one per request, then stops.
pub async fn serve_script(answers: Vec<Answer>) -> Result<MockServer, ServeError> {
    let mut answers = answers.into_iter();
    serve(move |_| answers.next()).await
}

/// Reads the head, then as many body bytes as `Content-Length` says.
async fn read_request(mut socket: TcpStream) -> Option<(TcpStream, Request)> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = socket.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        bytes.extend_from_slice(buffer.get(..read)?);
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(bytes.get(..end)?).into_owned();
        let length = head
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .and_then(|value| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if bytes.len() >= end + 4 + length {
            let body = bytes.get(end + 4..end + 4 + length)?.to_vec();
            return Some((socket, Request { head, body }));
        }
    }
}

async fn write_answer(mut socket: TcpStream, answer: &Answer) {
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(&answer.body).await;
    let _ = socket.shutdown().await;
}
