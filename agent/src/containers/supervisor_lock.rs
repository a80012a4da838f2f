//! The lock a container's supervisor holds for as long as it lives (`supervisor.lock`).
//!
//! An open-file-description lock (`fcntl(F_OFD_SETLK)`), not `flock`: like `flock` it belongs to
//! the open file (a child that inherits the descriptor shares it; it ends when the last copy is
//! closed, so also when the supervisor dies), but others can ask whether it is held
//! (`F_OFD_GETLK`) without taking it even for an instant, so a `ps` never makes a concurrent
//! `start` believe the container runs.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

/// A held supervisor lock.
#[derive(Debug)]
pub struct SupervisorLock {
    file: File,
}

/// A write lock over the whole file.
fn whole_file(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

impl SupervisorLock {
    /// The lock of `path` if no supervisor holds it, else `None`.
    pub fn try_take(path: &Path) -> io::Result<Option<SupervisorLock>> {
        let file = open(path)?;
        match fcntl(
            file.as_raw_fd(),
            FcntlArg::F_OFD_SETLK(&whole_file(libc::F_WRLCK)),
        ) {
            Ok(_) => Ok(Some(SupervisorLock { file })),
            Err(Errno::EAGAIN | Errno::EACCES) => Ok(None),
            Err(errno) => Err(errno.into()),
        }
    }

    /// Waits until no supervisor holds `path`, and takes it.
    pub fn take(path: &Path) -> io::Result<SupervisorLock> {
        let file = open(path)?;
        loop {
            match fcntl(
                file.as_raw_fd(),
                FcntlArg::F_OFD_SETLKW(&whole_file(libc::F_WRLCK)),
            ) {
                Ok(_) => return Ok(SupervisorLock { file }),
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
    }

    /// The locked file, whose descriptor a supervisor inherits.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Whether a supervisor holds `path` now; asks without taking anything.
pub fn is_held(path: &Path) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut probe = whole_file(libc::F_WRLCK);
    fcntl(file.as_raw_fd(), FcntlArg::F_OFD_GETLK(&mut probe))?;
    Ok(i32::from(probe.l_type) != libc::F_UNLCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_and_not_taken_twice_and_ends_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("supervisor.lock");
        assert!(!is_held(&path).unwrap());
        let lock = SupervisorLock::try_take(&path).unwrap().unwrap();
        assert!(is_held(&path).unwrap());
        assert!(is_held(&path).unwrap(), "asking does not take it");
        assert!(SupervisorLock::try_take(&path).unwrap().is_none());
        drop(lock);
        assert!(!is_held(&path).unwrap());
        assert!(SupervisorLock::try_take(&path).unwrap().is_some());
    }
}
