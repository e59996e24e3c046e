//! Errors of protocol calls and their classification.
//!
//! Owns: the mapping from what came back (a Connect JSON error, a gRPC status, a bare HTTP
//! status, an IO error, a timeout) to a [`Cause`], and the two questions callers ask of it: is it
//! worth retrying ([`Cause::is_transient`]) and is the runner's identity gone
//! ([`Cause::is_unregistered`]). Must not: retry or sleep; that is the client's job.
//!
//! Gitea answers most failures as code `unknown` (HTTP 500) with the real reason only in the
//! message text (its handlers return gRPC-library errors that the Connect library does not
//! recognise), so the classification looks at the message as well as the code.

use std::time::Duration;

/// A boxed error from the HTTP or TLS stack.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One protocol call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// `ping.v1.PingService/Ping`
    Ping,
    /// `runner.v1.RunnerService/Register`
    Register,
    /// `runner.v1.RunnerService/Declare`
    Declare,
    /// `runner.v1.RunnerService/FetchTask`
    FetchTask,
    /// `runner.v1.RunnerService/UpdateTask`
    UpdateTask,
    /// `runner.v1.RunnerService/UpdateLog`
    UpdateLog,
}

impl Rpc {
    /// The method path below the server's `/api/actions` mount point.
    pub fn path(self) -> &'static str {
        use crate::proto::{ping::ping_service_paths as ping, runner::runner_service_paths as r};
        match self {
            Rpc::Ping => ping::PING,
            Rpc::Register => r::REGISTER,
            Rpc::Declare => r::DECLARE,
            Rpc::FetchTask => r::FETCH_TASK,
            Rpc::UpdateTask => r::UPDATE_TASK,
            Rpc::UpdateLog => r::UPDATE_LOG,
        }
    }

    /// Whether repeating a call that may have reached the server is harmless. Register would
    /// create a second runner and FetchTask could assign a task whose answer is lost, so those
    /// two are retried only when the request certainly never left.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Rpc::Register | Rpc::FetchTask)
    }

    /// Whether the call carries the runner's identity headers.
    pub(crate) fn needs_identity(self) -> bool {
        !matches!(self, Rpc::Ping | Rpc::Register)
    }
}

impl std::fmt::Display for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rpc::Ping => "Ping",
            Rpc::Register => "Register",
            Rpc::Declare => "Declare",
            Rpc::FetchTask => "FetchTask",
            Rpc::UpdateTask => "UpdateTask",
            Rpc::UpdateLog => "UpdateLog",
        })
    }
}

/// A failed protocol call: which call, to where, after how many attempts, and why.
#[derive(Debug, thiserror::Error)]
#[error("runner protocol call {rpc} to {url} failed after {attempts} attempt(s)")]
pub struct Error {
    /// The call.
    pub rpc: Rpc,
    /// The server's base URL.
    pub url: String,
    /// How many times the call was sent.
    pub attempts: u32,
    /// Why the last attempt failed.
    #[source]
    pub cause: Cause,
}

impl Error {
    /// See [`Cause::is_transient`].
    pub fn is_transient(&self) -> bool {
        self.cause.is_transient()
    }

    /// See [`Cause::is_unregistered`].
    pub fn is_unregistered(&self) -> bool {
        self.cause.is_unregistered()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Cause {
    /// The server does not know this runner, or the runner token is wrong (the runner was
    /// deleted in Gitea, or `.runner` belongs to another instance). Permanent: register again.
    #[error(
        "the runner is not registered with this server or its token is invalid; register it again (server said: {message})"
    )]
    Unregistered {
        /// The server's message.
        message: String,
    },
    /// Register was refused because the registration token is unknown, superseded or empty.
    #[error(
        "the registration token was refused; get a current one from Gitea (server said: {message})"
    )]
    RegistrationToken {
        /// The server's message.
        message: String,
    },
    /// The server does not implement the call (Declare needs Gitea 1.21 or newer).
    #[error(
        "the server does not implement this call; Gitea 1.21 or newer is needed (server said: {message})"
    )]
    Unimplemented {
        /// The server's message.
        message: String,
    },
    /// The call needs the runner's identity but the client has none.
    #[error("the client has no runner identity (uuid and token); register first")]
    NoIdentity,
    /// The server answered with a protocol error.
    #[error("server error {code} (HTTP {http_status}): {message}")]
    Server {
        /// The Connect / gRPC code.
        code: Code,
        /// The HTTP status (200 for gRPC errors, which travel in trailers).
        http_status: u16,
        /// The server's message.
        message: String,
    },
    /// Something that is not the protocol answered (a proxy, a login page).
    #[error("unexpected HTTP {status} response: {excerpt}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        excerpt: String,
    },
    /// The TLS handshake failed (certificate not trusted, wrong host name, protocol mismatch).
    /// Permanent: fix the certificate or trust store, or set insecure TLS.
    #[error("TLS handshake failed")]
    Tls(#[source] BoxError),
    /// No connection could be made, so the request was certainly not sent.
    #[error("cannot connect")]
    Connect(#[source] BoxError),
    /// The connection failed while the request was in flight.
    #[error("transport failure")]
    Transport(#[source] BoxError),
    /// No answer within the call's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer could not be decoded.
    #[error("malformed response")]
    Decode(#[source] BoxError),
    /// The answer lacks a field the protocol requires.
    #[error("response lacks `{0}`")]
    MissingField(&'static str),
}

impl Cause {
    /// Whether another attempt later may succeed: the server was unreachable, restarting,
    /// overloaded, or failed without saying why. Registration and identity problems, unknown
    /// calls and malformed answers are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Cause::Connect(_) | Cause::Transport(_) | Cause::Timeout(_) => true,
            Cause::Server { code, .. } => code.is_transient(),
            Cause::Http { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            Cause::Unregistered { .. }
            | Cause::RegistrationToken { .. }
            | Cause::Unimplemented { .. }
            | Cause::NoIdentity
            | Cause::Tls(_)
            | Cause::Decode(_)
            | Cause::MissingField(_) => false,
        }
    }

    /// Whether the runner's identity is gone: the runner should stop and be registered again.
    pub fn is_unregistered(&self) -> bool {
        matches!(self, Cause::Unregistered { .. } | Cause::NoIdentity)
    }

    /// Whether the request certainly never reached the server, so even a non-idempotent call
    /// can be repeated.
    pub(crate) fn request_not_sent(&self) -> bool {
        matches!(self, Cause::Connect(_))
    }

    /// Classifies a protocol error by code and, because Gitea reports nearly everything as
    /// `unknown`, by the text of its message.
    pub(crate) fn from_server(code: Code, http_status: u16, message: String) -> Cause {
        let lower = message.to_ascii_lowercase();
        if code == Code::Unauthenticated
            || lower.contains("unregistered runner")
            || lower.contains("runner has been removed")
        {
            return Cause::Unregistered { message };
        }
        if lower.contains("registration token")
            || lower.contains("missing runner token")
            || lower.contains("has been invalidated")
        {
            return Cause::RegistrationToken { message };
        }
        if code == Code::Unimplemented {
            return Cause::Unimplemented { message };
        }
        // Known permanent answers that Gitea wraps as `unknown`: a task owned by another
        // runner, and rows sent after the log was finalized.
        let code = if code == Code::Unknown
            && (lower.contains("invalid runner for task") || lower.contains("has been archived"))
        {
            Code::FailedPrecondition
        } else {
            code
        };
        Cause::Server {
            code,
            http_status,
            message,
        }
    }
}

/// Connect / gRPC status codes (the same set under both protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl Code {
    /// Codes under which a later attempt may succeed. `unknown` and `internal` count: Gitea
    /// uses them for database hiccups while restarting too, and the classification above has
    /// already turned the permanent `unknown`s it recognises into other causes.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Code::Unknown
                | Code::Internal
                | Code::Unavailable
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted
        )
    }

    /// Parses the Connect JSON name (`"unavailable"`).
    pub(crate) fn from_connect_name(name: &str) -> Option<Code> {
        Some(match name {
            "canceled" => Code::Canceled,
            "unknown" => Code::Unknown,
            "invalid_argument" => Code::InvalidArgument,
            "deadline_exceeded" => Code::DeadlineExceeded,
            "not_found" => Code::NotFound,
            "already_exists" => Code::AlreadyExists,
            "permission_denied" => Code::PermissionDenied,
            "resource_exhausted" => Code::ResourceExhausted,
            "failed_precondition" => Code::FailedPrecondition,
            "aborted" => Code::Aborted,
            "out_of_range" => Code::OutOfRange,
            "unimplemented" => Code::Unimplemented,
            "internal" => Code::Internal,
            "unavailable" => Code::Unavailable,
            "data_loss" => Code::DataLoss,
            "unauthenticated" => Code::Unauthenticated,
            _ => return None,
        })
    }

    /// The code Connect derives from an HTTP status when the body is not a Connect error.
    pub(crate) fn from_http_status(status: u16) -> Option<Code> {
        Some(match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => return None,
        })
    }

    /// Maps a tonic status code; `Ok` has no counterpart.
    pub(crate) fn from_grpc(code: tonic::Code) -> Option<Code> {
        Some(match code {
            tonic::Code::Ok => return None,
            tonic::Code::Cancelled => Code::Canceled,
            tonic::Code::Unknown => Code::Unknown,
            tonic::Code::InvalidArgument => Code::InvalidArgument,
            tonic::Code::DeadlineExceeded => Code::DeadlineExceeded,
            tonic::Code::NotFound => Code::NotFound,
            tonic::Code::AlreadyExists => Code::AlreadyExists,
            tonic::Code::PermissionDenied => Code::PermissionDenied,
            tonic::Code::ResourceExhausted => Code::ResourceExhausted,
            tonic::Code::FailedPrecondition => Code::FailedPrecondition,
            tonic::Code::Aborted => Code::Aborted,
            tonic::Code::OutOfRange => Code::OutOfRange,
            tonic::Code::Unimplemented => Code::Unimplemented,
            tonic::Code::Internal => Code::Internal,
            tonic::Code::Unavailable => Code::Unavailable,
            tonic::Code::DataLoss => Code::DataLoss,
            tonic::Code::Unauthenticated => Code::Unauthenticated,
        })
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
        })
    }
}

/// Sorts a client-side failure: a TLS error anywhere in the chain is [`Cause::Tls`]; an IO
/// error saying the connection was never established (refused, unreachable) is
/// [`Cause::Connect`]; anything else is [`Cause::Transport`].
pub(crate) fn classify_client_failure(error: BoxError) -> Cause {
    let mut connect = false;
    let mut tls = false;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = current {
        tls |= e.is::<rustls::Error>();
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            connect |= matches!(
                io.kind(),
                ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
            );
            // `io::Error::source` skips the error it wraps (and hyper-rustls wraps rustls's
            // error in two of them), so descend into the wrapped error instead.
            if let Some(inner) = io.get_ref() {
                current = Some(inner);
                continue;
            }
        }
        current = e.source();
    }
    if tls {
        Cause::Tls(error)
    } else if connect {
        Cause::Connect(error)
    } else {
        Cause::Transport(error)
    }
}
