//! A container's terminal seen from outside (`run -t`, `exec -t`): what is read from its
//! controller, the input copied into it without ever blocking the copier, its window size, and
//! the window sizes an attached CLI sends the supervisor, one `ROWS COLS` line each on a pipe.
//!
//! Parsing those lines is pure ([`take_latest`]); the rest are thin calls on descriptors.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags};
use nix::sys::termios::{tcgetattr, SpecialCharacterIndices};
use oci_spec::runtime::{BoxBuilder, Process};

use crate::runtime::{errno_text, rustix_errno};

/// Why a container's terminal could not be set up or resized.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("make descriptor {fd} non-blocking: {}", errno_text(*errno))]
    NonBlocking { fd: i32, errno: Errno },
    #[error("duplicate the container's terminal: {}", errno_text(*.0))]
    Duplicate(Errno),
    #[error("set the container's terminal to {rows} rows, {cols} columns: {}", errno_text(*errno))]
    Resize { rows: u16, cols: u16, errno: Errno },
    #[error("cannot write the terminal's size into the process: {0}")]
    ConsoleSize(#[from] oci_spec::OciSpecError),
}

/// A terminal's window size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

impl WindowSize {
    /// The size of the terminal `fd` is, if it is one with a size (not 0×0).
    pub fn of(fd: impl AsFd) -> Option<WindowSize> {
        let size = rustix::termios::tcgetwinsize(fd).ok()?;
        (size.ws_row > 0 && size.ws_col > 0).then_some(WindowSize {
            rows: size.ws_row,
            cols: size.ws_col,
        })
    }

    /// Gives the terminal `fd` (either side) this size; its foreground processes get SIGWINCH.
    pub fn apply(self, fd: impl AsFd) -> Result<(), ConsoleError> {
        let size = rustix::termios::Winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(fd, size).map_err(|errno| ConsoleError::Resize {
            rows: self.rows,
            cols: self.cols,
            errno: rustix_errno(errno),
        })
    }

    /// Has the runtime make `process`'s terminal this size before the process runs.
    pub fn set_on(self, process: &mut Process) -> Result<(), ConsoleError> {
        let size = BoxBuilder::default()
            .height(u64::from(self.rows))
            .width(u64::from(self.cols))
            .build()?;
        process.set_console_size(Some(size));
        Ok(())
    }

    /// The line sent to the supervisor: `ROWS COLS\n`.
    pub fn to_line(self) -> String {
        format!("{} {}\n", self.rows, self.cols)
    }
}

/// Takes the complete lines out of `pending` and returns the last size among them; an
/// unfinished line stays for the next call, a malformed one is skipped.
pub fn take_latest(pending: &mut Vec<u8>) -> Option<WindowSize> {
    let end = pending.iter().rposition(|&b| b == b'\n')?;
    let latest = pending[..end].rsplit(|&b| b == b'\n').find_map(|line| {
        let (rows, cols) = std::str::from_utf8(line).ok()?.split_once(' ')?;
        Some(WindowSize {
            rows: rows.parse().ok()?,
            cols: cols.parse().ok()?,
        })
    });
    pending.drain(..=end);
    latest
}

/// The supervisor's end of an attached CLI's window sizes.
#[derive(Debug)]
pub struct SizeReceiver {
    file: File,
    pending: Vec<u8>,
}

impl SizeReceiver {
    /// Reads `fd` (made non-blocking) from now on.
    pub fn new(fd: OwnedFd) -> Result<SizeReceiver, ConsoleError> {
        non_blocking(fd.as_fd())?;
        Ok(SizeReceiver {
            file: File::from(fd),
            pending: Vec::new(),
        })
    }

    /// What to poll for new sizes.
    pub fn poll_fd(&self) -> PollFd<'_> {
        PollFd::new(self.file.as_fd(), PollFlags::POLLIN)
    }

    /// The newest size sent since the last call, and whether the CLI still sends.
    pub fn receive(&mut self) -> (Option<WindowSize>, bool) {
        let mut buffer = [0u8; 512];
        let open = loop {
            match self.file.read(&mut buffer) {
                Ok(0) => break false,
                Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break e.kind() == ErrorKind::WouldBlock,
            }
        };
        (take_latest(&mut self.pending), open)
    }
}

/// What one read of a terminal's controller gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// This many bytes.
    Bytes(usize),
    /// Nothing yet.
    Nothing,
    /// Every process closed the terminal (EIO) or the read failed.
    Closed,
}

/// Reads what the container wrote to its terminal.
pub fn read_output(controller: &mut File, buffer: &mut [u8]) -> Chunk {
    match controller.read(buffer) {
        Ok(0) => Chunk::Closed,
        Ok(n) => Chunk::Bytes(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
            Chunk::Nothing
        }
        Err(_) => Chunk::Closed,
    }
}

/// Copies an input (`-i`: a pipe, or the user's own terminal) into a container's terminal,
/// never blocking on either: poll what [`InputPump::poll_fd`] names, then call
/// [`InputPump::ready`]. At the input's end it types the terminal's end-of-file character
/// (^D), which ends a read in canonical mode, as closing a pipe would.
#[derive(Debug)]
pub struct InputPump {
    from: File,
    to: File,
    pending: Vec<u8>,
    at_end: bool,
    done: bool,
}

impl InputPump {
    /// A pump from `from` into the terminal `controller`, whose descriptor (shared with every
    /// duplicate of it) becomes non-blocking; `from` is left as it is.
    pub fn new(from: OwnedFd, controller: BorrowedFd<'_>) -> Result<InputPump, ConsoleError> {
        let to = controller
            .try_clone_to_owned()
            .map_err(|e| ConsoleError::Duplicate(crate::runtime::io_errno(&e)))?;
        non_blocking(to.as_fd())?;
        Ok(InputPump {
            from: File::from(from),
            to: File::from(to),
            pending: Vec::new(),
            at_end: false,
            done: false,
        })
    }

    /// What to wait for: input to read, or room in the terminal for what is pending; `None`
    /// once everything, the end-of-file character included, was delivered.
    pub fn poll_fd(&self) -> Option<PollFd<'_>> {
        if self.done {
            None
        } else if self.pending.is_empty() {
            Some(PollFd::new(self.from.as_fd(), PollFlags::POLLIN))
        } else {
            Some(PollFd::new(self.to.as_fd(), PollFlags::POLLOUT))
        }
    }

    /// Moves what can move now.
    pub fn ready(&mut self) {
        if self.pending.is_empty() && !self.at_end {
            let mut buffer = [0u8; 4096];
            match self.from.read(&mut buffer) {
                Ok(0) | Err(_) => {
                    self.at_end = true;
                    self.pending.push(end_of_file(self.to.as_fd()));
                }
                Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
            }
        }
        while !self.pending.is_empty() {
            match self.to.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The terminal is gone: nothing more can be delivered.
                    self.pending.clear();
                    self.done = true;
                }
            }
        }
        self.done |= self.at_end;
    }
}

/// The terminal's end-of-file character (VEOF, ^D unless changed).
fn end_of_file(terminal: BorrowedFd<'_>) -> u8 {
    tcgetattr(terminal)
        .map(|t| t.control_chars[SpecialCharacterIndices::VEOF as usize])
        .unwrap_or(4)
}

fn non_blocking(fd: BorrowedFd<'_>) -> Result<(), ConsoleError> {
    let raw = fd.as_raw_fd();
    let failed = |errno| ConsoleError::NonBlocking { fd: raw, errno };
    let flags = fcntl(raw, FcntlArg::F_GETFL).map_err(failed)?;
    fcntl(
        raw,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map(drop)
    .map_err(failed)
}

/// The CLI's end of the window sizes it sends the supervisor.
#[derive(Debug)]
pub struct SizeSender(File);

impl SizeSender {
    /// Sends on `fd`.
    pub fn new(fd: OwnedFd) -> SizeSender {
        SizeSender(File::from(fd))
    }

    /// Sends `size` (one write, so never mixed with another); a supervisor that is gone is
    /// not an error.
    pub fn send(&mut self, size: WindowSize) {
        let _ = self.0.write_all(size.to_line().as_bytes());
    }
}

/// Which of `fds` poll(2) found ready (any event, hang-ups included), in order; the descriptors'
/// borrows end here so the caller can read from them.
pub fn ready(fds: Vec<PollFd<'_>>) -> Vec<bool> {
    fds.iter()
        .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_complete_size_wins() {
        let mut pending = b"24 80\n30 100\n40 1".to_vec();
        assert_eq!(
            take_latest(&mut pending),
            Some(WindowSize {
                rows: 30,
                cols: 100
            })
        );
        assert_eq!(pending, b"40 1");
        assert_eq!(take_latest(&mut pending), None, "an unfinished line waits");
        pending.extend_from_slice(b"20\nnonsense\n");
        assert_eq!(
            take_latest(&mut pending),
            Some(WindowSize {
                rows: 40,
                cols: 120
            }),
            "a malformed line is skipped"
        );
        assert!(pending.is_empty());
        let size = WindowSize { rows: 7, cols: 9 };
        let mut line = size.to_line().into_bytes();
        assert_eq!(take_latest(&mut line), Some(size));
    }

    #[test]
    fn a_size_becomes_the_processs_console_size() {
        let mut process = Process::default();
        WindowSize {
            rows: 30,
            cols: 100,
        }
        .set_on(&mut process)
        .unwrap();
        let size = process.console_size().unwrap();
        assert_eq!((size.height(), size.width()), (30, 100));
    }
}
