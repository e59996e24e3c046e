//! The fast way to agree on an API version with a local engine.
//!
//! bollard's `negotiate_version` asks `GET /version`, which dockerd answers only after running
//! `runc --version` and `docker-init --version`: 6 to 20 ms here, on the path of every `runnel
//! run`. `GET /_ping` carries the same version in its `Api-Version` header in well under a
//! millisecond, so for a Unix socket (`DOCKER_HOST` unset or `unix://`) we ping by hand and
//! hand bollard the version it would have negotiated. Anything unexpected answers `None`, and
//! the caller negotiates as before (with its error messages).
//!
//! Must not: do anything but connect.

use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// bollard's defaults (not exported): the socket, and the timeout of every request.
const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";
const REQUEST_TIMEOUT_SECONDS: u64 = 120;
const PING_LIMIT: Duration = Duration::from_secs(5);

/// A client for `docker_host` (else `DOCKER_HOST`, else the default socket) at the engine's
/// API version, when that is a Unix socket that answers a ping.
pub(crate) async fn by_ping(docker_host: Option<&str>) -> Option<Docker> {
    let host = match docker_host {
        Some(host) => host.to_owned(),
        None => std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_SOCKET.to_owned()),
    };
    let path = host.strip_prefix("unix://")?;
    let server = tokio::time::timeout(PING_LIMIT, ping(path)).await.ok()??;
    let version = if server < *API_DEFAULT_VERSION {
        server
    } else {
        *API_DEFAULT_VERSION
    };
    Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECONDS, &version).ok()
}

async fn ping(path: &str) -> Option<ClientVersion> {
    let mut stream = UnixStream::connect(path).await.ok()?;
    // HTTP/1.0: the engine closes the connection after its answer.
    stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    api_version(&String::from_utf8_lossy(&answer))
}

/// The `Api-Version` header of a `200` answer.
fn api_version(answer: &str) -> Option<ClientVersion> {
    let mut lines = answer.split("\r\n");
    let status = lines.next()?;
    if status.split(' ').nth(1) != Some("200") {
        return None;
    }
    let value = lines
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("api-version"))
        .map(|(_, value)| value.trim())?;
    let (major, minor) = value.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::api_version;

    #[test]
    fn the_version_comes_from_the_ping_header() {
        let answer = "HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nDocker-Experimental: false\r\n\
                      Server: Docker/20.10.24+dfsg1 (linux)\r\n\r\nOK";
        let version = api_version(answer);
        assert_eq!(
            version.map(|version| (version.major_version, version.minor_version)),
            Some((1, 41))
        );
        for broken in [
            "HTTP/1.0 500 Internal Server Error\r\nApi-Version: 1.41\r\n\r\n",
            "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nApi-Version: 1.41",
            "HTTP/1.0 200 OK\r\napi-version: one\r\n\r\n",
            "",
        ] {
            assert!(api_version(broken).is_none(), "{broken:?}");
        }
        let lower = api_version("HTTP/1.1 200 OK\r\napi-version:1.47\r\n\r\n");
        assert_eq!(lower.map(|version| version.minor_version), Some(47));
    }
}
