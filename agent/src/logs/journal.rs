//! Writes entries to the systemd journal with its native protocol: one datagram of fields to
//! `/run/systemd/journal/socket`, and when that is too big for a datagram (EMSGSIZE/ENOBUFS) the
//! same bytes in a sealed memfd passed with SCM_RIGHTS, as `sd_journal_sendv` does.
//!
//! Written here rather than taken from a crate: `libsystemd::logging::journal_send` and
//! `systemd-journal-logger` only send UTF-8 values and hard-code the socket path, and container
//! output is arbitrary bytes while the tests need a private journal's socket.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

/// The system journal's socket for native protocol datagrams.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Errors sending to the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("invalid journal field name {0:?}: upper-case letters, digits and '_', not first, at most 64")]
    FieldName(String),
    #[error("create a datagram socket for the journal: {0}")]
    Socket(io::Error),
    #[error("send to the journal at {path}: {source}")]
    Send { path: PathBuf, source: io::Error },
    #[error("pass a memfd to the journal at {path}: {source}")]
    Memfd { path: PathBuf, source: io::Error },
}

/// A connection-less writer to one journal socket.
#[derive(Debug)]
pub struct JournalWriter {
    socket: UnixDatagram,
    path: PathBuf,
}

impl JournalWriter {
    /// A writer sending to the journal socket at `path` (normally [`JOURNAL_SOCKET`]).
    pub fn new(path: &Path) -> Result<Self, JournalError> {
        let socket = UnixDatagram::unbound().map_err(JournalError::Socket)?;
        Ok(Self {
            socket,
            path: path.to_owned(),
        })
    }

    /// Sends one entry made of `fields` (name, value); values may hold any bytes.
    pub fn send(&self, fields: &[(&str, &[u8])]) -> Result<(), JournalError> {
        let entry = encode(fields)?;
        match self.socket.send_to(&entry, &self.path) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                    Errno::EMSGSIZE | Errno::ENOBUFS
                ) =>
            {
                self.send_memfd(&entry)
                    .map_err(|source| JournalError::Memfd {
                        path: self.path.clone(),
                        source,
                    })
            }
            Err(source) => Err(JournalError::Send {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn send_memfd(&self, entry: &[u8]) -> io::Result<()> {
        const NAME: &CStr = c"journal-data";
        let flags = MemFdCreateFlag::MFD_ALLOW_SEALING | MemFdCreateFlag::MFD_CLOEXEC;
        let mut memfd = File::from(memfd_create(NAME, flags)?);
        memfd.write_all(entry)?;
        let seals = SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE
            | SealFlag::F_SEAL_SEAL;
        fcntl(memfd.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals))?;
        let address = UnixAddr::new(&self.path)?;
        let fds = [memfd.as_raw_fd()];
        sendmsg(
            self.socket.as_raw_fd(),
            &[],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&address),
        )?;
        Ok(())
    }
}

/// Encodes an entry: `NAME=value\n`, or for values holding a newline
/// `NAME\n` + 64-bit little-endian length + value + `\n`.
pub fn encode(fields: &[(&str, &[u8])]) -> Result<Vec<u8>, JournalError> {
    let mut entry = Vec::with_capacity(fields.iter().map(|(n, v)| n.len() + v.len() + 10).sum());
    for (name, value) in fields {
        if !valid_name(name) {
            return Err(JournalError::FieldName((*name).to_owned()));
        }
        entry.extend_from_slice(name.as_bytes());
        if value.contains(&b'\n') {
            entry.push(b'\n');
            entry.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            entry.push(b'=');
        }
        entry.extend_from_slice(value);
        entry.push(b'\n');
    }
    Ok(entry)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_name_equals_value_lines() {
        let entry = encode(&[("MESSAGE", b"hello"), ("PRIORITY", b"6")]).expect("encode");
        assert_eq!(entry, b"MESSAGE=hello\nPRIORITY=6\n");
    }

    #[test]
    fn values_with_newlines_are_length_prefixed() {
        let entry = encode(&[("MESSAGE", b"a\nb")]).expect("encode");
        assert_eq!(entry, b"MESSAGE\n\x03\0\0\0\0\0\0\0a\nb\n");
    }

    #[test]
    fn bad_field_names_are_refused() {
        for name in ["", "_PID", "lower", "9LIVES", "A-B", &"X".repeat(65)] {
            let err = encode(&[(name, b"v")]).expect_err(name);
            assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        }
    }
}
