//! The container process's session and standard streams: a new session with the caller's
//! stdio, or, when `process.terminal` is set, a pseudo-terminal allocated from the container's
//! own devpts (as runc does, so `tty` names `/dev/pts/0`), made the controlling terminal and
//! stdio, and `/dev/console` for init, sized by `process.consoleSize` when given (before the
//! process runs, so its first look at the size is right); its controller goes back to the caller
//! over a socket (SCM_RIGHTS).

use std::ffi::CStr;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::unistd::setsid;
use oci_spec::runtime::Process;
use rustix::fs::{Mode, OFlags};
use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};

use super::process::install_stdio;
use super::{rustix_errno, Result, RuntimeError, Stdio, Step, StepError};

/// The socket pair over which the container's side sends the terminal's controller.
#[derive(Debug)]
pub struct Channel {
    caller: OwnedFd,
    container: OwnedFd,
    size: Option<Winsize>,
}

/// A channel for the terminal if `process` asks for one.
pub fn channel_if_wanted(process: &Process) -> Result<Option<Channel>> {
    if !process.terminal().unwrap_or(false) {
        return Ok(None);
    }
    let (caller, container) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|errno| RuntimeError::Terminal(rustix_errno(errno)))?;
    let cells = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
    let size = process.console_size().map(|size| Winsize {
        ws_row: cells(size.height()),
        ws_col: cells(size.width()),
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    Ok(Some(Channel {
        caller,
        container,
        size,
    }))
}

/// In the child: starts a new session with `stdio` as standard streams.
pub fn attach(stdio: &Stdio) -> std::result::Result<(), StepError> {
    setsid().step(|| "start a new session".to_owned())?;
    install_stdio(
        stdio.stdin.as_fd(),
        stdio.stdout.as_fd(),
        stdio.stderr.as_fd(),
    )
}

/// In the child, inside the container's mount namespace: allocates a terminal from its
/// `/dev/ptmx`, makes it the controlling terminal and stdio (and, for a container's init,
/// `/dev/console`), and sends the controller.
pub fn create(channel: &Channel, console: bool) -> std::result::Result<(), StepError> {
    let step = || "allocate a terminal from \"/dev/ptmx\"".to_owned();
    let controller =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).step(step)?;
    grantpt(&controller).step(step)?;
    unlockpt(&controller).step(step)?;
    if let Some(size) = channel.size {
        tcsetwinsize(&controller, size).step(|| {
            format!(
                "set the terminal's size to {} rows, {} columns",
                size.ws_row, size.ws_col
            )
        })?;
    }
    let name = ptsname(&controller, Vec::new()).step(step)?;
    let replica = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(|| format!("open terminal {name:?}"))?;
    rustix::process::ioctl_tiocsctty(&replica)
        .step(|| format!("make {name:?} the controlling terminal"))?;
    install_stdio(replica.as_fd(), replica.as_fd(), replica.as_fd())?;
    if console {
        bind_console(&name)?;
    }
    let fds = [controller.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    sendmsg(
        &channel.container,
        &[IoSlice::new(b"t")],
        &mut control,
        SendFlags::empty(),
    )
    .step(|| "send the terminal to the caller".to_owned())
    .map(drop)
}

/// Makes `/dev/console` the terminal `name`, as runc does for a container with a terminal.
fn bind_console(name: &CStr) -> std::result::Result<(), StepError> {
    let console = "/dev/console";
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(console)
        .step(|| format!("create {console:?}"))?;
    mount(
        Some(name),
        console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .step(|| format!("mount {name:?} on {console:?}"))
}

/// In the parent, once the child runs: the terminal's controller.
pub fn receive(channel: Channel) -> Result<OwnedFd> {
    // Only the child's copy stays open: end of file, not a hang, if it sent nothing.
    drop(channel.container);
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    recvmsg(
        &channel.caller,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|errno| RuntimeError::Terminal(rustix_errno(errno)))?;
    control
        .drain()
        .find_map(|message| match message {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        })
        .ok_or(RuntimeError::Terminal(Errno::EPROTO))
}
