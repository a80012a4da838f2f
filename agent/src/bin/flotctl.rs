//! `flotctl`: see [`agent::cli::flotctl`].

use std::process::ExitCode;

use agent::cli::flotctl::{run, Flotctl};

fn main() -> ExitCode {
    let (args, command) = agent::cli::parse::<Flotctl>();
    run(args, &command)
}
