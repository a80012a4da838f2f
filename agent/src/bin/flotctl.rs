//! `flotctl`: see [`agent::cli::flotctl`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    agent::cli::flotctl::run(agent::cli::flotctl::Flotctl::parse())
}
