//! A zbus connection over systemd's private socket (`/run/systemd/private`).
//!
//! PID 1 talks peer-to-peer there, and stamps every message it sends with the sender
//! `org.freedesktop.systemd1` (`sd_bus_set_sender()` on each private connection). That is a
//! well-known name where a sender must be a unique name, and zbus 6 refuses the whole message
//! ("Invalid unique name"), so no reply and no signal would ever get through. This module
//! therefore authenticates itself (`AUTH EXTERNAL` with our uid, then `BEGIN`) and hands zbus an
//! already authenticated socket whose read half frames each message and rewrites that sender,
//! in place and at the same length, to the unique name [`SENDER_SEEN`]. Nothing else is changed.
//!
//! systemd accepts such a connection only from root (or its own uid) in its own pid namespace:
//! it refuses peers whose `SO_PEERCRED` pid it cannot see ("Incoming private connection from
//! unprivileged client, refusing: No data available").

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use zbus::connection::socket::{ReadHalf, Socket, Split, WriteHalf};
use zbus::connection::Builder;
use zbus::export::async_trait::async_trait;
use zbus::Connection;

/// The sender systemd writes into every message on its private socket.
const SENDER_SENT: &[u8] = b"org.freedesktop.systemd1";
/// The unique name it becomes, of the same length so no offset moves.
const SENDER_SEEN: &[u8] = b":systemd1.private.socket";
/// The header field code of the sender (D-Bus specification, "Message Format").
const FIELD_SENDER: u8 = 7;
/// The fixed part of every message header.
const PRIMARY_HEADER_LEN: usize = 16;
/// The largest message the specification allows (128 MiB).
const MAX_MESSAGE_LEN: usize = 128 << 20;

/// Connects to systemd's private socket at `path`, authenticates, and builds a peer-to-peer
/// zbus connection on it.
pub(super) async fn connect(path: &Path) -> zbus::Result<Connection> {
    let mut stream = UnixStream::connect(path).await?;
    let guid = authenticate(&mut stream, nix::unistd::geteuid().as_raw()).await?;
    let (read, write) = stream.into_split();
    let socket = PrivateSocket {
        read: Reader {
            socket: read,
            message: Vec::new(),
            handed: 0,
        },
        write: Writer(write),
    };
    Builder::authenticated_socket(socket, guid.as_str())
        .p2p()
        .build()
        .await
}

/// The client side of the SASL exchange, without file-descriptor passing; returns the server's
/// GUID from its `OK` line. Reads byte by byte so that no byte of a message is taken.
async fn authenticate(stream: &mut UnixStream, uid: u32) -> zbus::Result<String> {
    let hex_uid: String = uid
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    // `BEGIN` right behind `AUTH`, as sd-bus's own clients send it: systemd 252 then has its
    // side of the connection running before our first call arrives. Sent only after `OK`, the
    // call can reach it together with `BEGIN` and wait unanswered for more input (seen here).
    stream
        .write_all(format!("\0AUTH EXTERNAL {hex_uid}\r\nBEGIN\r\n").as_bytes())
        .await?;
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        if line.len() > 512 {
            return Err(zbus::Error::Handshake(
                "over-long answer to AUTH".to_owned(),
            ));
        }
        line.push(stream.read_u8().await?);
    }
    let line = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
    let guid = line
        .strip_prefix("OK ")
        .ok_or_else(|| zbus::Error::Handshake(format!("AUTH EXTERNAL answered {line:?}")))?
        .to_owned();
    Ok(guid)
}

/// The socket zbus gets: our reader, a plain writer.
#[derive(Debug)]
struct PrivateSocket {
    read: Reader,
    write: Writer,
}

impl Socket for PrivateSocket {
    type ReadHalf = Reader;
    type WriteHalf = Writer;

    fn split(self) -> Split<Reader, Writer> {
        Split::new(self.read, self.write)
    }
}

/// Reads whole messages, rewrites their sender and hands their bytes to zbus.
#[derive(Debug)]
struct Reader {
    socket: OwnedReadHalf,
    /// The current message, sender already rewritten.
    message: Vec<u8>,
    /// How much of it zbus has taken.
    handed: usize,
}

#[async_trait]
impl ReadHalf for Reader {
    async fn recvmsg(&mut self, buffer: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
        if self.handed == self.message.len() {
            match read_message(&mut self.socket).await? {
                Some(message) => self.message = message,
                None => return Ok((0, vec![])),
            }
            self.handed = 0;
        }
        let n = buffer.len().min(self.message.len() - self.handed);
        buffer[..n].copy_from_slice(&self.message[self.handed..self.handed + n]);
        self.handed += n;
        Ok((n, vec![]))
    }
}

/// One whole message from `socket` with its sender rewritten, or `None` at end of stream.
async fn read_message(socket: &mut OwnedReadHalf) -> io::Result<Option<Vec<u8>>> {
    let mut primary = [0; PRIMARY_HEADER_LEN];
    match socket.read_exact(&mut primary).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = message_len(&primary)?;
    let mut message = vec![0; len];
    message[..PRIMARY_HEADER_LEN].copy_from_slice(&primary);
    socket
        .read_exact(&mut message[PRIMARY_HEADER_LEN..])
        .await?;
    rewrite_sender(&mut message);
    Ok(Some(message))
}

/// The whole length of the message whose primary header is `primary`: header, fields, padding
/// to 8, body.
fn message_len(primary: &[u8; PRIMARY_HEADER_LEN]) -> io::Result<usize> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let little = match primary[0] {
        b'l' => true,
        b'B' => false,
        other => {
            return Err(invalid(format!(
                "d-bus message with endianness byte {other:#04x}"
            )))
        }
    };
    let body = read_u32(primary, 4, little).unwrap_or_default() as usize;
    let fields = read_u32(primary, 12, little).unwrap_or_default() as usize;
    let len = align(PRIMARY_HEADER_LEN + fields, 8) + body;
    if len > MAX_MESSAGE_LEN {
        return Err(invalid(format!("d-bus message of {len} bytes")));
    }
    Ok(len)
}

/// Rewrites a sender field of exactly [`SENDER_SENT`] to [`SENDER_SEEN`]; leaves the message as
/// it is otherwise (also when its header cannot be walked: zbus then reports what is wrong).
fn rewrite_sender(message: &mut [u8]) {
    if let Some(at) = sender_value(message) {
        message[at..at + SENDER_SEEN.len()].copy_from_slice(SENDER_SEEN);
    }
}

/// Where the value of a sender field equal to [`SENDER_SENT`] starts in `message`.
fn sender_value(message: &[u8]) -> Option<usize> {
    let little = *message.first()? == b'l';
    let fields_len = read_u32(message, 12, little)? as usize;
    let end = PRIMARY_HEADER_LEN.checked_add(fields_len)?;
    let mut at = PRIMARY_HEADER_LEN;
    while at < end {
        at = align(at, 8);
        let code = *message.get(at)?;
        let signature_len = *message.get(at + 1)? as usize;
        let signature = message.get(at + 2..at + 2 + signature_len)?;
        at += 2 + signature_len + 1;
        match signature {
            b"s" | b"o" => {
                at = align(at, 4);
                let len = read_u32(message, at, little)? as usize;
                let value = at + 4;
                if code == FIELD_SENDER && message.get(value..value + len)? == SENDER_SENT {
                    return Some(value);
                }
                at = value + len + 1;
            }
            b"g" => at += 1 + *message.get(at)? as usize + 1,
            b"u" => at = align(at, 4) + 4,
            _ => return None,
        }
    }
    None
}

fn read_u32(bytes: &[u8], at: usize, little: bool) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(if little {
        u32::from_le_bytes(raw)
    } else {
        u32::from_be_bytes(raw)
    })
}

fn align(at: usize, to: usize) -> usize {
    at.div_ceil(to) * to
}

/// The write half: bytes out as zbus serialized them.
#[derive(Debug)]
struct Writer(OwnedWriteHalf);

#[async_trait]
impl WriteHalf for Writer {
    async fn sendmsg(&mut self, buffer: &[u8], _fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        // Neither half can pass file descriptors, so zbus never hands us any.
        self.0.write(buffer).await
    }

    async fn close(&mut self) -> io::Result<()> {
        self.0.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use zbus::Message;

    use super::*;

    /// A signal as systemd sends it on its private socket: built by zbus with the stand-in
    /// sender, then given systemd's well-known sender byte for byte.
    fn as_systemd_sends(message: &Message) -> Vec<u8> {
        let mut bytes = message.data().to_vec();
        let at = bytes
            .windows(SENDER_SEEN.len())
            .position(|w| w == SENDER_SEEN)
            .expect("the stand-in sender is in the header");
        bytes[at..at + SENDER_SENT.len()].copy_from_slice(SENDER_SENT);
        bytes
    }

    fn job_removed() -> Message {
        Message::signal(
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "JobRemoved",
        )
        .sender(std::str::from_utf8(SENDER_SEEN).unwrap())
        .build(&(
            7u32,
            zbus::ObjectPath::try_from("/org/freedesktop/systemd1/job/7").unwrap(),
            "web.service",
            "done",
        ))
        .unwrap()
    }

    #[test]
    fn the_well_known_sender_becomes_the_stand_in_and_nothing_else_changes() {
        let message = job_removed();
        let mut bytes = as_systemd_sends(&message);
        assert_ne!(bytes, message.data().to_vec());
        rewrite_sender(&mut bytes);
        assert_eq!(bytes, message.data().to_vec());
    }

    #[test]
    fn the_length_comes_from_the_primary_header() {
        let message = job_removed();
        let primary: [u8; PRIMARY_HEADER_LEN] =
            message.data()[..PRIMARY_HEADER_LEN].try_into().unwrap();
        assert_eq!(message_len(&primary).unwrap(), message.data().len());
    }

    #[test]
    fn other_senders_and_garbage_are_left_alone() {
        let message = job_removed();
        let mut bytes = message.data().to_vec();
        rewrite_sender(&mut bytes);
        assert_eq!(bytes, message.data().to_vec(), "a unique sender stays");
        let mut cut = as_systemd_sends(&message)[..40].to_vec();
        let before = cut.clone();
        rewrite_sender(&mut cut);
        assert_eq!(cut, before, "a truncated header is not touched");
    }

    #[test]
    fn a_bad_endianness_byte_is_an_error() {
        let mut primary = [0u8; PRIMARY_HEADER_LEN];
        primary[0] = b'x';
        assert!(message_len(&primary).is_err());
    }

    #[test]
    fn the_stand_in_is_a_unique_name_of_the_same_length() {
        assert_eq!(SENDER_SEEN.len(), SENDER_SENT.len());
        let name = std::str::from_utf8(SENDER_SEEN).unwrap();
        zbus::names::UniqueName::try_from(name).unwrap();
    }
}
