//! Command-line front ends: clap definitions and the functions that run them. `anyhow` lives
//! here and in `bin/`, nowhere else in the crate.

mod engine;
pub mod firstboot;
pub mod flotctl;
pub mod flotilla;
pub mod flotillad;
pub mod verify;

use clap::{CommandFactory, FromArgMatches};

/// Parses the process's arguments into `P`, with the name of the subcommand given (clap's own
/// spelling, e.g. `list-units`), so that messages name commands exactly as users type them.
pub fn parse<P: CommandFactory + FromArgMatches>() -> (P, String) {
    let matches = P::command().get_matches();
    let args = P::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let command = matches.subcommand_name().unwrap_or_default().to_owned();
    (args, command)
}
