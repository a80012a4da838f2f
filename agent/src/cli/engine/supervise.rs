//! `flotilla supervise ID` (hidden): the supervisor process `start` and `run -d` launch. It
//! leaves the caller's session, adopts the descriptors passed down (its lock, the status pipe,
//! the attach pipes, the resize pipe) and supervises the container until it stays stopped.

use std::fs::File;
use std::os::fd::AsFd;
use std::process::ExitCode;

use super::Context;
use crate::containers::console::SizeReceiver;
use crate::containers::inherited::adopt;
use crate::containers::supervisor::{supervise, Mode};

/// `flotilla supervise`.
#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    /// The container's full ID.
    pub id: String,
    /// The status pipe's descriptor.
    #[arg(long = "status-fd")]
    pub status_fd: i32,
    /// The supervisor lock's descriptor (held for the supervisor's life).
    #[arg(long = "lock-fd")]
    pub lock_fd: i32,
    /// The attach pipes' descriptors: stdout,stderr.
    #[arg(long = "attach-fds", value_delimiter = ',')]
    pub attach_fds: Vec<i32>,
    /// The supervisor's standard input is the container's (`-i`).
    #[arg(long)]
    pub interactive: bool,
    /// The pipe on which the attached CLI sends its window sizes (`-t`).
    #[arg(long = "resize-fd")]
    pub resize_fd: Option<i32>,
}

/// Runs the supervisor.
pub fn run(context: &Context, args: &SuperviseArgs) -> anyhow::Result<ExitCode> {
    // A session of its own: the terminal's hang-up or the caller's exit must not reach it.
    nix::unistd::setsid()?;
    let _lock = adopt(args.lock_fd)?;
    let status = File::from(adopt(args.status_fd)?);
    let attach = match args.attach_fds.as_slice() {
        [out, err] => Some((File::from(adopt(*out)?), File::from(adopt(*err)?))),
        _ => None,
    };
    let resize = args
        .resize_fd
        .map(|fd| adopt(fd).map(SizeReceiver::new))
        .transpose()?
        .transpose()?;
    let stdin = if args.interactive {
        Some(std::io::stdin().as_fd().try_clone_to_owned()?)
    } else {
        None
    };
    let code = supervise(
        &context.data_root,
        &args.id,
        Mode::Detached {
            status,
            attach,
            stdin,
            resize,
        },
    )?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}
