//! The resolver's lock and pid files: a flock held for as long as a resolver runs (or a start
//! is under way), and the running resolver's process ID.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Pid;

/// Why a lock or pid file could not be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot create {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: Errno },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

/// A `Result` whose error is [`LockError`].
pub type Result<T> = std::result::Result<T, LockError>;

/// The lock at `path` (made if missing, with its directory), waiting for it when `wait`;
/// `None` when it is held and `wait` is false.
pub fn lock(path: &Path, wait: bool) -> Result<Option<Flock<File>>> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| LockError::Create {
            path: dir.to_owned(),
            source,
        })?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_owned(),
            source,
        })?;
    let arg = if wait {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockExclusiveNonblock
    };
    match Flock::lock(file, arg) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, Errno::EWOULDBLOCK)) if !wait => Ok(None),
        Err((_, source)) => Err(LockError::Lock {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Whether someone holds the lock at `path`.
pub fn is_held(path: &Path) -> Result<bool> {
    Ok(lock(path, false)?.is_none())
}

/// Writes the current process's ID to `path`, atomically.
pub fn write_pid(path: &Path) -> Result<()> {
    image::store::fsutil::write_atomic(path, format!("{}\n", std::process::id()).as_bytes())
        .map_err(|source| LockError::Write {
            path: path.to_owned(),
            source,
        })
}

/// The process ID in `path`; `None` when there is no such file (or nothing sensible in it).
pub fn read_pid(path: &Path) -> Result<Option<Pid>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().ok().map(Pid::from_raw)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LockError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// What tells one writing of the pid file at `path` from the next (its inode: each writing
/// replaces the file); `None` when there is no such file.
pub fn pid_stamp(path: &Path) -> Result<Option<u64>> {
    match fs::metadata(path) {
        Ok(metadata) => Ok(Some(metadata.ino())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LockError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Removes the pid file at `path`, if there is one.
pub fn remove_pid(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(LockError::Remove {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_held_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.lock");
        assert!(!is_held(&path).unwrap());
        let held = lock(&path, false).unwrap().unwrap();
        assert!(is_held(&path).unwrap());
        assert!(lock(&path, false).unwrap().is_none());
        drop(held);
        assert!(!is_held(&path).unwrap());
    }

    #[test]
    fn a_pid_reads_back_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pid");
        assert_eq!(read_pid(&path).unwrap(), None);
        write_pid(&path).unwrap();
        assert_eq!(read_pid(&path).unwrap(), Some(Pid::this()));
        let stamp = pid_stamp(&path).unwrap();
        assert!(stamp.is_some());
        write_pid(&path).unwrap();
        assert_ne!(
            pid_stamp(&path).unwrap(),
            stamp,
            "a new writing is told apart"
        );
        remove_pid(&path).unwrap();
        remove_pid(&path).unwrap();
        assert_eq!(pid_stamp(&path).unwrap(), None);
        assert_eq!(read_pid(&path).unwrap(), None);
    }
}
