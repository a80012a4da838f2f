//! Staying attached to a container the supervisor started (`run` without `-d`, `start -a`):
//! its output is copied to ours until the supervisor reports the exit, and SIGINT, SIGTERM,
//! SIGHUP and SIGQUIT are passed on to the container (docker's `--sig-proxy`).
//!
//! A container with a terminal (`-t`) writes everything on the stdout pipe. Our window size
//! goes to the supervisor on a resize pipe, at start and on every SIGWINCH; with `-i` our
//! terminal is in raw mode while attached (the supervisor copies our input into the
//! container's terminal).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::terminal::{self, RawMode};
use crate::containers::console::{self, SizeSender};
use crate::containers::control;
use crate::containers::launch::{self, Attach, Report};
use crate::containers::store::ContainerStore;

/// The CLI's ends of the attach pipes, and its terminal's state while attached.
#[derive(Debug)]
pub struct Ends {
    out: File,
    err: File,
    resize: Option<SizeSender>,
    /// Restores our terminal when the attachment ends.
    _raw: Option<RawMode>,
}

/// Pipes for an attached start; the first half goes to the supervisor. For a container with
/// a terminal (`tty`), our window size is sent ahead and, with `interactive`, our terminal is
/// put in raw mode (restored when the [`Ends`] are dropped).
pub fn pipes(interactive: bool, tty: bool) -> anyhow::Result<(Attach, Ends)> {
    let (out_read, out_write) = launch::pipe()?;
    let (err_read, err_write) = launch::pipe()?;
    // Held from before the size is read and raw mode is set until `follow` takes them: no
    // resize goes unsent, and no signal ends us with our terminal left raw.
    signals().thread_block()?;
    let (resize_read, resize) = match terminal::window_size().filter(|_| tty) {
        Some(size) => {
            let (read, write) = launch::pipe()?;
            let mut sender = SizeSender::new(write);
            sender.send(size);
            (Some(read), Some(sender))
        }
        None => (None, None),
    };
    let raw = if tty && interactive {
        RawMode::on_stdin()?
    } else {
        None
    };
    Ok((
        Attach {
            output: Some((out_write, err_write)),
            stdin: interactive,
            resize: resize_read,
        },
        Ends {
            out: File::from(out_read),
            err: File::from(err_read),
            resize,
            _raw: raw,
        },
    ))
}

/// The signals an attached CLI takes on its signalfd: those passed on, and SIGWINCH.
fn signals() -> SigSet {
    let mut mask = terminal::relayed_signals();
    mask.add(Signal::SIGWINCH);
    mask
}

/// Copies what can be read from `from` to `to`; false once `from` is closed.
fn copy_available(from: &mut File, to: &mut dyn Write, buffer: &mut [u8]) -> bool {
    match from.read(buffer) {
        Ok(0) => false,
        Ok(n) => {
            let _ = to.write_all(&buffer[..n]);
            let _ = to.flush();
            true
        }
        Err(e) => e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted,
    }
}

/// Copies what `from` holds now to `to`, without waiting for more.
fn drain(from: &mut File, to: &mut dyn Write, buffer: &mut [u8]) {
    while let Ok(n @ 1..) = from.read(buffer) {
        let _ = to.write_all(&buffer[..n]);
    }
    let _ = to.flush();
}

/// Follows container `id` until its first exit; its exit code is ours.
pub fn follow(
    store: &ContainerStore,
    id: &str,
    mut ends: Ends,
    mut status: BufReader<File>,
) -> anyhow::Result<ExitCode> {
    let mask = signals();
    mask.thread_block()?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    for end in [&ends.out, &ends.err] {
        fcntl(end.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    }
    let mut buffer = vec![0u8; 64 * 1024];
    let (mut out_open, mut err_open) = (true, true);
    loop {
        let mut fds = vec![
            PollFd::new(status.get_ref().as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if out_open {
            fds.push(PollFd::new(ends.out.as_fd(), PollFlags::POLLIN));
        }
        if err_open {
            fds.push(PollFd::new(ends.err.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready = console::ready(fds);
        let mut next = 2;
        if out_open {
            if ready[next] {
                out_open = copy_available(&mut ends.out, &mut io::stdout(), &mut buffer);
            }
            next += 1;
        }
        if err_open && ready[next] {
            err_open = copy_available(&mut ends.err, &mut io::stderr(), &mut buffer);
        }
        if ready[1] {
            while let Ok(Some(info)) = signals.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGWINCH) => {
                        if let (Some(sender), Some(size)) =
                            (&mut ends.resize, terminal::window_size())
                        {
                            sender.send(size);
                        }
                    }
                    Ok(signal) => {
                        let _ = control::signal(store, id, signal, false);
                    }
                    Err(_) => {}
                }
            }
        }
        if ready[0] {
            let report = launch::read_report(&mut status);
            // Everything the container wrote was sent before the report: take the rest.
            drain(&mut ends.out, &mut io::stdout(), &mut buffer);
            drain(&mut ends.err, &mut io::stderr(), &mut buffer);
            return match report {
                Some(Report::Exited { code }) => {
                    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
                }
                _ => anyhow::bail!(
                    "the supervisor of container {} ended without reporting the container's exit",
                    &id[..12]
                ),
            };
        }
    }
}
