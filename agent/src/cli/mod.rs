//! Command-line front ends: clap definitions and the functions that run them. `anyhow` lives
//! here and in `bin/`, nowhere else in the crate.

pub mod flotctl;
pub mod flotilla;
pub mod flotillad;
pub mod verify;

use std::process::ExitCode;

/// The exit status of a command that this build does not provide yet.
pub const EXIT_NOT_BUILT: u8 = 2;

/// Says that `program command` is not part of this build and returns exit status 2.
pub fn not_built(program: &str, command: &str) -> ExitCode {
    eprintln!(
        "{program} {command}: not available yet: this build of flotilla {} does not implement it",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(EXIT_NOT_BUILT)
}
