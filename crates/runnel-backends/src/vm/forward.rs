//! The one way out of a VM on the restricted network: QEMU's user-mode network runs with
//! `restrict=on` (the guest reaches nothing of this machine or beyond) plus a `guestfwd` rule
//! that hands each guest TCP connection to [`FORWARD_ADDRESS`]`:PORT` to a command of its own,
//! the connection on the command's stdin and stdout. The command is the `runnel` binary itself
//! (`runnel __vm-forward 127.0.0.1:PORT`, [`forward_stdio`]), connecting to the runner's cache
//! server and copying both ways.
//!
//! Owns: the forward's guest address, the `-netdev` option text (QEMU's commas doubled) and
//! the copy. Must not: write to stderr while forwarding (QEMU gives the command the guest's
//! connection as stderr too).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

/// The address in the guest's network whose connections go to the cache server (the port is
/// the server's own, so the job's URL is `http://10.0.2.100:PORT/`).
pub const FORWARD_ADDRESS: &str = "10.0.2.100";

/// The hidden subcommand of `runnel` that does the copying.
pub const FORWARD_SUBCOMMAND: &str = "__vm-forward";

/// How long the connection to the cache server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `text` as a value inside one of QEMU's `key=value,…` options: commas doubled.
fn qemu_escape(text: &str) -> String {
    text.replace(',', ",,")
}

/// The `guestfwd=` part of `-netdev user,…` sending the guest's connections to
/// `FORWARD_ADDRESS:target.port` to `target` through `forwarder __vm-forward target`. `None`
/// when the forwarder's path has white space: libslirp splits the command at spaces.
pub(crate) fn guestfwd_option(forwarder: &Path, target: SocketAddr) -> Option<String> {
    let forwarder = forwarder.to_str()?;
    if forwarder.chars().any(char::is_whitespace) {
        return None;
    }
    Some(format!(
        "guestfwd=tcp:{FORWARD_ADDRESS}:{port}-cmd:{} {FORWARD_SUBCOMMAND} {target}",
        qemu_escape(forwarder),
        port = target.port(),
    ))
}

/// Connects to `target` and copies stdin to it and its answers to stdout until it closes: the
/// forwarder QEMU runs per guest connection. Writes nothing else anywhere (stderr is the
/// guest's connection too).
pub fn forward_stdio(target: SocketAddr) -> std::io::Result<()> {
    let server = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)?;
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
        let target: SocketAddr = "127.0.0.1:40123".parse().expect("addr");
        assert_eq!(
            guestfwd_option(Path::new("/opt/a,b/runnel"), target).as_deref(),
            Some("guestfwd=tcp:10.0.2.100:40123-cmd:/opt/a,,b/runnel __vm-forward 127.0.0.1:40123")
        );
        assert_eq!(guestfwd_option(Path::new("/my dir/runnel"), target), None);
    }

    #[test]
    fn copy_passes_everything_through() {
        let mut out = Vec::new();
        copy(&mut &b"GET / HTTP/1.1\r\n\r\nbody"[..], &mut out).expect("copy");
        assert_eq!(out, b"GET / HTTP/1.1\r\n\r\nbody");
    }
}
