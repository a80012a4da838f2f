//! Descriptors a parent passed down by number on the command line (the supervisor's status
//! pipe, its lock, the attach pipes): adopting one is the only `unsafe` of the container store.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Why an inherited descriptor was refused.
#[derive(Debug, thiserror::Error)]
pub enum InheritedError {
    #[error("descriptor {0} was not passed to this process: {1}")]
    NotOpen(RawFd, nix::errno::Errno),
    #[error("descriptor {0} is one of stdin, stdout or stderr")]
    Standard(RawFd),
}

/// Takes ownership of descriptor `fd`, which the parent left open for this process, and
/// closes it on exec.
pub fn adopt(fd: RawFd) -> Result<OwnedFd, InheritedError> {
    if fd <= 2 {
        return Err(InheritedError::Standard(fd));
    }
    // Checks the number is open before claiming it, so a wrong number is an error, not a
    // second owner of something else.
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)
        .map_err(|e| InheritedError::NotOpen(fd, e))?;
    // Ours alone from now on: no child of ours (a container, the DNS resolver) may hold the
    // lock or keep a pipe open.
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| InheritedError::NotOpen(fd, e))?;
    // SAFETY: `fd` is open (checked above), was opened by our parent for us alone, and each
    // number is adopted once, at start-up, before anything else could open or close it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
