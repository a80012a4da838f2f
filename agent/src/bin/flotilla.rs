//! `flotilla`: see [`agent::cli::flotilla`].

use std::process::ExitCode;

use agent::cli::flotilla::{run, Flotilla};

fn main() -> ExitCode {
    let (args, command) = agent::cli::parse::<Flotilla>();
    run(args, &command)
}
