//! `flotillad`: see [`agent::cli::flotillad`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    agent::cli::flotillad::run(agent::cli::flotillad::Flotillad::parse())
}
