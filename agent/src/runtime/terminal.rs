//! The container process's session and standard streams: a new session, and either the
//! caller's stdio or, when `process.terminal` is set, a pseudo-terminal allocated before clone
//! whose replica becomes the controlling terminal and stdio (the caller keeps the controller).

use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::setsid;
use oci_spec::runtime::Process;

use super::process::install_stdio;
use super::{Result, RuntimeError, Stdio, Step, StepError};

/// A pseudo-terminal: the caller's side and the container's side.
#[derive(Debug)]
pub struct Pair {
    pub controller: OwnedFd,
    pub replica: OwnedFd,
}

/// A pseudo-terminal if `process` asks for one.
pub fn open_if_wanted(process: &Process) -> Result<Option<Pair>> {
    if !process.terminal().unwrap_or(false) {
        return Ok(None);
    }
    let pty = nix::pty::openpty(None, None).map_err(RuntimeError::Terminal)?;
    Ok(Some(Pair {
        controller: pty.master,
        replica: pty.slave,
    }))
}

/// In the child: starts a new session and sets up the standard streams.
pub fn attach(terminal: Option<&Pair>, stdio: &Stdio) -> std::result::Result<(), StepError> {
    setsid().step(|| "start a new session".to_owned())?;
    match terminal {
        Some(pair) => {
            rustix::process::ioctl_tiocsctty(&pair.replica)
                .step(|| "set the controlling terminal".to_owned())?;
            let replica = pair.replica.as_fd();
            install_stdio(replica, replica, replica)
        }
        None => install_stdio(
            stdio.stdin.as_fd(),
            stdio.stdout.as_fd(),
            stdio.stderr.as_fd(),
        ),
    }
}
