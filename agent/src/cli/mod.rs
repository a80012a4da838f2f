//! Command-line front ends: clap definitions and the functions that run them. `anyhow` lives
//! here and in `bin/`, nowhere else in the crate.

mod engine;
pub mod firstboot;
pub mod flotctl;
pub mod flotilla;
pub mod flotillad;
pub mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

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

/// Parses the process's arguments into `P`, with the name of the subcommand given (clap's own
/// spelling, e.g. `list-units`), so that messages name commands exactly as users type them.
pub fn parse<P: CommandFactory + FromArgMatches>() -> (P, String) {
    let matches = P::command().get_matches();
    let args = P::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let command = matches.subcommand_name().unwrap_or_default().to_owned();
    (args, command)
}
