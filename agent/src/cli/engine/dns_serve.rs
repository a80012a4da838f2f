//! `flotilla dns-serve` (hidden): the resolver of the data root's user networks, started by
//! the engine (`network::dns::launch`). It leaves the caller's session and serves until it is
//! told to stop or has nothing left to serve; problems with single networks go to stderr
//! (the journal under systemd).

use std::process::ExitCode;

use nix::errno::Errno;

use super::Context;
use crate::network::dns::resolver;

/// Runs the resolver.
pub fn run(context: &Context) -> anyhow::Result<ExitCode> {
    // A session of its own: the terminal's hang-up or the caller's exit must not reach it.
    // EPERM: it leads a process group already (a systemd service, a shell's job).
    match nix::unistd::setsid() {
        Ok(_) | Err(Errno::EPERM) => {}
        Err(error) => return Err(error.into()),
    }
    resolver::run(&context.data_root, &mut |problem| {
        eprintln!("flotilla dns-serve: {problem}");
    })?;
    Ok(ExitCode::SUCCESS)
}
