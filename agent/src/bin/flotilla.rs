//! `flotilla`: see [`agent::cli::flotilla`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    agent::cli::flotilla::run(agent::cli::flotilla::Flotilla::parse())
}
