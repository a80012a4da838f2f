//! `flotillad`: the agent that runs on every machine of the cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The command line of `flotillad`.
#[derive(Debug, Parser)]
#[command(
    name = "flotillad",
    version,
    about = "The flotilla agent: registers this machine in etcd, schedules units and runs them with systemd",
    long_about = "The flotilla agent: registers this machine in etcd, takes part in electing the \
        cluster's scheduler, and has systemd start and stop the units placed on this machine.\n\n\
        It runs under systemd as flotilla.service. Configuration comes from the TOML file \
        (default /etc/flotilla/flotilla.toml); FLOTILLA_<KEY> environment variables override \
        its top-level keys."
)]
pub struct Flotillad {
    /// The configuration file.
    #[arg(
        long,
        env = "FLOTILLA_CONFIG",
        default_value = "/etc/flotilla/flotilla.toml"
    )]
    pub config: PathBuf,
}

/// Runs the agent.
pub fn run(_args: Flotillad) -> ExitCode {
    super::not_built("flotillad", "agent")
}
