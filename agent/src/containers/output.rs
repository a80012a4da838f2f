//! A running container's output on its way to the log: one line splitter per stream in front
//! of the log driver (the journal, else a json-file). A container with a terminal (`-t`) has
//! one stream, logged as stdout, whose lines end in `\r\n` (the terminal's `onlcr`): the `\r`
//! is dropped with the `\n`, as docker's journald driver shows such lines; nothing else is.
//!
//! Writing the log is best effort: a full disk or a journal that went away must not stop the
//! container, so failures are counted, not returned, and `inspect` does not pretend otherwise.

use crate::engine::container::LogTarget;
use crate::logs::driver::{DriverError, LogConfig, LogDriver, Stream};
use crate::logs::lines::{LineSplitter, Piece};

/// The log of one run of a container.
#[derive(Debug)]
pub struct ContainerOutput {
    driver: LogDriver,
    stdout: LineSplitter,
    stderr: LineSplitter,
    /// The output comes from a terminal.
    terminal: bool,
    /// Pieces the driver refused.
    pub lost: u64,
}

impl ContainerOutput {
    /// Opens the container's log driver; `terminal` when the output comes from a terminal.
    pub fn open(config: &LogConfig, terminal: bool) -> Result<ContainerOutput, DriverError> {
        Ok(ContainerOutput {
            driver: LogDriver::open(config)?,
            stdout: LineSplitter::default(),
            stderr: LineSplitter::default(),
            terminal,
            lost: 0,
        })
    }

    /// Which driver it is and where it writes, for the record.
    pub fn target(&self) -> LogTarget {
        let description = self.driver.describe();
        LogTarget {
            driver: description.log_config.kind.to_owned(),
            path: Some(description.log_path).filter(|path| !path.is_empty()),
        }
    }

    fn splitter(&mut self, stream: Stream) -> &mut LineSplitter {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }

    /// Logs the complete lines in `bytes` (the rest waits for its newline).
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) {
        for piece in self.splitter(stream).feed(bytes) {
            self.log(stream, piece);
        }
    }

    /// The stream ended: logs its last, unterminated line.
    pub fn finish(&mut self, stream: Stream) {
        if let Some(piece) = self.splitter(stream).finish() {
            self.log(stream, piece);
        }
    }

    fn log(&mut self, stream: Stream, mut piece: Piece) {
        if self.terminal {
            drop_carriage_return(&mut piece);
        }
        if self.driver.write(stream, &piece).is_err() {
            self.lost += 1;
        }
    }
}

/// Drops the `\r` that ends a line from a terminal (only from a piece that ends its line).
fn drop_carriage_return(piece: &mut Piece) {
    let ends_line = piece.partial.is_none_or(|partial| partial.last);
    if ends_line && piece.bytes.last() == Some(&b'\r') {
        piece.bytes.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::lines::Partial;

    fn piece(bytes: &[u8], partial: Option<Partial>) -> Vec<u8> {
        let mut piece = Piece {
            bytes: bytes.to_vec(),
            partial,
        };
        drop_carriage_return(&mut piece);
        piece.bytes
    }

    #[test]
    fn a_terminals_line_ends_without_its_carriage_return() {
        assert_eq!(piece(b"hello\r", None), b"hello");
        assert_eq!(piece(b"\x1b[1mbold\x1b[0m\r", None), b"\x1b[1mbold\x1b[0m");
        assert_eq!(piece(b"a\rb", None), b"a\rb", "only at the end");
        assert_eq!(piece(b"two\r\r", None), b"two\r", "only one");
        let cut = |last| {
            Some(Partial {
                line: 0,
                ordinal: 1,
                last,
            })
        };
        assert_eq!(piece(b"cut\r", cut(false)), b"cut\r", "not inside a line");
        assert_eq!(piece(b"end\r", cut(true)), b"end");
    }
}
