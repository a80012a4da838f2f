//! `flotilla-firstboot`: see [`agent::cli::firstboot`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    agent::cli::firstboot::run(agent::cli::firstboot::FirstBootArgs::parse())
}
