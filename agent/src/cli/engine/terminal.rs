//! The CLI's own terminal while it relays a container's (`run -it`, `start -ai`, `exec -it`):
//! raw mode, so every key reaches the container's terminal untouched (^C included), and our
//! window size, which the container's terminal copies.
//!
//! Raw mode lives in a guard that restores the saved settings when dropped: on return, on an
//! error and when unwinding. The relays take SIGINT, SIGTERM, SIGHUP and SIGQUIT on a signalfd
//! and end through that path too; only SIGKILL leaves the terminal raw (`reset` mends it).

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, OwnedFd};

use anyhow::Context as _;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

use crate::containers::console::WindowSize;

/// Our standard input in raw mode until this is dropped.
#[derive(Debug)]
pub struct RawMode {
    terminal: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts standard input in raw mode if it is a terminal; `None` if it is not (a pipe, a
    /// file: there is nothing to change).
    pub fn on_stdin() -> anyhow::Result<Option<RawMode>> {
        let stdin = io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let terminal = stdin.as_fd().try_clone_to_owned()?;
        let saved = tcgetattr(&terminal).context("cannot read the terminal's settings")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&terminal, SetArg::TCSANOW, &raw)
            .context("cannot put the terminal in raw mode")?;
        Ok(Some(RawMode { terminal, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Output already queued is written in raw mode first (TCSADRAIN).
        let _ = tcsetattr(&self.terminal, SetArg::TCSADRAIN, &self.saved);
    }
}

/// Our window size: standard output's, else standard input's (docker reads its output's).
pub fn window_size() -> Option<WindowSize> {
    WindowSize::of(io::stdout()).or_else(|| WindowSize::of(io::stdin()))
}

/// The signals a relay takes on its signalfd instead of dying of them, and passes on to the
/// container's process.
pub fn relayed_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(signal);
    }
    set
}
