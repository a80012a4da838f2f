//! Cross-process locks on the store: `flock(2)` on files under its root, released when the
//! [`FileLock`] is dropped (or the process dies, so a killed pull never leaves a stale lock).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

/// A held lock on a file.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Waits for a shared lock on `path` (created if missing).
    pub fn shared(path: &Path) -> io::Result<FileLock> {
        Self::take(path, FlockOperation::LockShared)
    }

    /// Waits for an exclusive lock on `path` (created if missing).
    pub fn exclusive(path: &Path) -> io::Result<FileLock> {
        Self::take(path, FlockOperation::LockExclusive)
    }

    /// An exclusive lock on `path` if nobody holds any lock on it now, else `None`.
    pub fn try_exclusive(path: &Path) -> io::Result<Option<FileLock>> {
        match Self::take(path, FlockOperation::NonBlockingLockExclusive) {
            Ok(lock) => Ok(Some(lock)),
            Err(e) if e.raw_os_error() == Some(Errno::WOULDBLOCK.raw_os_error()) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn take(path: &Path, operation: FlockOperation) -> io::Result<FileLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        loop {
            match flock(&file, operation) {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}
