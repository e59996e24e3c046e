//! The only ways out of a VM on the restricted network: QEMU's user-mode network runs with
//! `restrict=on` (the guest reaches nothing of this machine or beyond) plus `guestfwd` rules
//! that hand each guest TCP connection to one address and port to a command of its own, the
//! connection on the command's stdin and stdout. The command is the `runnel` binary itself
//! (`runnel __vm-forward HOST:PORT`, [`forward_stdio`]), connecting to the target and copying
//! both ways. Two forwards at most: [`FORWARD_ADDRESS`]`:PORT` to the runner's cache server
//! (`127.0.0.1:PORT`), and in daemon mode [`SERVER_FORWARD_ADDRESS`]`:PORT` to the Gitea
//! server the runner is registered with ([`ServerForward`], the `.runner` file's address), so
//! `actions/checkout` and Gitea's artifact and runtime URLs work from the guest.
//!
//! Owns: the forwards' guest addresses, the `-netdev` option text (QEMU's commas doubled), the
//! server's address as the guest sees it ([`ServerForward::guest_origin`]) and the copy. Must
//! not: write to stderr while forwarding (QEMU gives the command the guest's connection as
//! stderr too).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

/// The address in the guest's network whose connections go to the cache server (the port is
/// the server's own, so the job's URL is `http://10.0.2.100:PORT/`).
pub const FORWARD_ADDRESS: &str = "10.0.2.100";

/// The address in the guest's network whose connections go to the Gitea server the runner is
/// registered with (the port is the server's own: `http://10.0.2.101:3000/` for a Gitea at
/// `http://127.0.0.1:3000/`).
pub const SERVER_FORWARD_ADDRESS: &str = "10.0.2.101";

/// The hidden subcommand of `runnel` that does the copying.
pub const FORWARD_SUBCOMMAND: &str = "__vm-forward";

/// How long the connection to the cache server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `text` as a value inside one of QEMU's `key=value,…` options: commas doubled.
fn qemu_escape(text: &str) -> String {
    text.replace(',', ",,")
}

/// The `guestfwd=` part of `-netdev user,…` sending the guest's connections to
/// `guest_address:port` to `target` (`HOST:PORT`, resolved by the forwarder at each connection)
/// through `forwarder __vm-forward target`. `None` when the forwarder's path has white space:
/// libslirp splits the command at spaces.
pub(crate) fn guestfwd_option(
    forwarder: &Path,
    guest_address: &str,
    port: u16,
    target: &str,
) -> Option<String> {
    let forwarder = forwarder.to_str()?;
    if forwarder.chars().any(char::is_whitespace) || target.chars().any(char::is_whitespace) {
        return None;
    }
    Some(format!(
        "guestfwd=tcp:{guest_address}:{port}-cmd:{} {FORWARD_SUBCOMMAND} {}",
        qemu_escape(forwarder),
        qemu_escape(target),
    ))
}

/// The Gitea server a daemon's VM jobs reach through [`SERVER_FORWARD_ADDRESS`]: the scheme,
/// host and port of the runner's registered address (`.runner`'s `address`), which this machine
/// reaches (on its loopback or elsewhere); the forwarder connects there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerForward {
    /// `http` or `https`.
    pub scheme: String,
    /// A name, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
}

impl ServerForward {
    /// The server of `address` (`http://127.0.0.1:3000/`, `https://gitea.example.com`): the
    /// port defaults to the scheme's. `None` for anything but an `http` or `https` URL with a
    /// host.
    pub fn from_url(address: &str) -> Option<ServerForward> {
        let (scheme, rest) = address.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // No credentials in a server address.
        let authority = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(port) => port.parse().ok()?,
            None => default_port,
        };
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == ',') {
            return None;
        }
        Some(ServerForward {
            scheme,
            host: host.to_owned(),
            port,
        })
    }

    /// What the forwarder connects to: `HOST:PORT` (`[v6]:PORT`).
    pub fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether the server is on this machine's loopback (which a NAT guest reaches at its
    /// gateway).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The server's origin as the guest reaches it at `guest_address` (the forward's address,
    /// or the NAT gateway): `http://10.0.2.101:3000`.
    pub fn guest_origin(&self, guest_address: &str) -> String {
        format!("{}://{guest_address}:{}", self.scheme, self.port)
    }
}

/// Connects to `target` (`HOST:PORT`: each of its addresses in turn) and copies stdin to it and
/// its answers to stdout until it closes: the forwarder QEMU runs per guest connection. Writes
/// nothing else anywhere (stderr is the guest's connection too).
pub fn forward_stdio(target: &str) -> std::io::Result<()> {
    let server = connect(target)?;
    server.set_nodelay(true)?;
    // Unbuffered handles on fds 0 and 1 (`std::io::stdout()` buffers lines, which would hold
    // back a response not ending in a newline).
    let mut guest_in = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut guest_out = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let mut upstream = server.try_clone()?;
    std::thread::spawn(move || {
        let _ = copy(&mut guest_in, &mut upstream);
        // The guest is done sending; the server may still answer.
        let _ = upstream.shutdown(Shutdown::Write);
    });
    let mut downstream = server;
    copy(&mut downstream, &mut guest_out)?;
    // The server closed: so does the guest's connection, when this process ends.
    Ok(())
}

/// The first of `target`'s addresses that answers.
fn connect(target: &str) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in target.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{target} has no address"),
        )
    }))
}

/// Copies until end of file, writing each chunk as soon as it is read.
fn copy(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        to.write_all(&buffer[..n])?;
        to.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forward_rule_names_the_cache_port_and_doubles_commas() {
        let rule = |path: &str| {
            guestfwd_option(Path::new(path), FORWARD_ADDRESS, 40123, "127.0.0.1:40123")
        };
        assert_eq!(
            rule("/opt/a,b/runnel").as_deref(),
            Some("guestfwd=tcp:10.0.2.100:40123-cmd:/opt/a,,b/runnel __vm-forward 127.0.0.1:40123")
        );
        assert_eq!(rule("/my dir/runnel"), None);
    }

    #[test]
    fn a_server_address_gives_the_forwards_target_and_the_guests_origin() {
        let cases = [
            ("http://127.0.0.1:3000/", "http", "127.0.0.1:3000", true),
            ("http://localhost:3000", "http", "localhost:3000", true),
            (
                "https://gitea.example.com/sub/",
                "https",
                "gitea.example.com:443",
                false,
            ),
            ("HTTP://git.internal", "http", "git.internal:80", false),
            ("http://[::1]:8080/x", "http", "[::1]:8080", true),
            (
                "http://user:pw@10.1.2.3:3000",
                "http",
                "10.1.2.3:3000",
                false,
            ),
        ];
        for (address, scheme, target, loopback) in cases {
            let server = ServerForward::from_url(address).expect(address);
            assert_eq!(server.scheme, scheme, "{address}");
            assert_eq!(server.target(), target, "{address}");
            assert_eq!(server.is_loopback(), loopback, "{address}");
        }
        let server = ServerForward::from_url("http://127.0.0.1:3000/").expect("server");
        assert_eq!(
            server.guest_origin(SERVER_FORWARD_ADDRESS),
            "http://10.0.2.101:3000"
        );
        for bad in [
            "",
            "127.0.0.1:3000",
            "ftp://host/",
            "http://",
            "http://h:port/",
            "http://a b/",
        ] {
            assert_eq!(ServerForward::from_url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_forwarder_tries_each_address_of_a_name() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // `localhost` may resolve to ::1 first, where nothing listens.
        let stream = connect(&format!("localhost:{port}")).expect("connect");
        assert_eq!(stream.peer_addr().expect("peer").port(), port);
        assert!(connect("name.invalid:1").is_err());
    }

    #[test]
    fn copy_passes_everything_through() {
        let mut out = Vec::new();
        copy(&mut &b"GET / HTTP/1.1\r\n\r\nbody"[..], &mut out).expect("copy");
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\nbody");
    }
}
