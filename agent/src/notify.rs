//! systemd's service notification protocol (`sd_notify(3)`): datagrams of `KEY=VALUE` lines to the
//! socket in `$NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`).
//!
//! Written by hand: it is one datagram; the crates that wrap it add nothing we use.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` to systemd if this process runs as a notifying service; does nothing
/// otherwise (a notification is advice, never a reason to fail).
pub fn send(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let target = target.to_string_lossy().into_owned();
    let address = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(&target),
    };
    if let (Ok(address), Ok(socket)) = (address, UnixDatagram::unbound()) {
        let _ = socket.send_to_addr(state.as_bytes(), &address);
    }
}

/// The container runs: the service is up.
pub fn container_ready(container_pid: i32) {
    send(&format!(
        "READY=1\nSTATUS=container running as pid {container_pid}\n"
    ));
}

/// The service is stopping (its container, or the agent itself).
pub fn stopping() {
    send("STOPPING=1\n");
}
