//! A running container's output on its way to the log: one line splitter per stream in front
//! of the log driver (the journal, else a json-file).
//!
//! Writing the log is best effort: a full disk or a journal that went away must not stop the
//! container, so failures are counted, not returned, and `inspect` does not pretend otherwise.

use crate::engine::container::LogTarget;
use crate::logs::driver::{DriverError, LogConfig, LogDriver, Stream};
use crate::logs::lines::LineSplitter;

/// The log of one run of a container.
#[derive(Debug)]
pub struct ContainerOutput {
    driver: LogDriver,
    stdout: LineSplitter,
    stderr: LineSplitter,
    /// Pieces the driver refused.
    pub lost: u64,
}

impl ContainerOutput {
    /// Opens the container's log driver.
    pub fn open(config: &LogConfig) -> Result<ContainerOutput, DriverError> {
        Ok(ContainerOutput {
            driver: LogDriver::open(config)?,
            stdout: LineSplitter::default(),
            stderr: LineSplitter::default(),
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
        let pieces = self.splitter(stream).feed(bytes);
        for piece in &pieces {
            if self.driver.write(stream, piece).is_err() {
                self.lost += 1;
            }
        }
    }

    /// The stream ended: logs its last, unterminated line.
    pub fn finish(&mut self, stream: Stream) {
        if let Some(piece) = self.splitter(stream).finish() {
            if self.driver.write(stream, &piece).is_err() {
                self.lost += 1;
            }
        }
    }
}
