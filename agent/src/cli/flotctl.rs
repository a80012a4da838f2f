//! `flotctl`: fleetctl's commands for a flotilla cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line of `flotctl`.
#[derive(Debug, Parser)]
#[command(
    name = "flotctl",
    version,
    about = "Control a flotilla cluster: submit, schedule and inspect units (fleetctl-compatible)",
    after_help = "Examples:\n  \
        flotctl verify mongo.service employees.service   check units before submitting them\n  \
        flotctl start mongo.service employees.service    schedule and start units\n  \
        flotctl list-units                               where each unit runs, and its state\n  \
        flotctl journal -f employees.service             follow a unit's output\n\n\
        Unit names without a suffix mean .service: 'flotctl start web' acts on web.service.\n\
        Global options can also be set as FLOTCTL_<OPTION>, e.g. FLOTCTL_ENDPOINT."
)]
pub struct Flotctl {
    /// The agent's API: a unix socket path or an https:// URL.
    #[arg(
        long,
        global = true,
        env = "FLOTCTL_ENDPOINT",
        default_value = "unix:///run/flotilla/flotilla.sock"
    )]
    pub endpoint: String,

    /// Seconds to wait for each API request.
    #[arg(
        long,
        global = true,
        env = "FLOTCTL_REQUEST_TIMEOUT",
        default_value_t = 3.0
    )]
    pub request_timeout: f64,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `flotctl`'s subcommands (fleetctl's names and meanings).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check unit files (names, [X-Fleet], [Container]) and print every problem as FILE:LINE:COL.
    Verify {
        /// Unit files to check (.service, .socket, .timer, …, or .container).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Upload units to the cluster without scheduling them (desired state: inactive).
    Submit(Units),
    /// Schedule units to machines without starting them (desired state: loaded).
    Load(Units),
    /// Schedule and start units (desired state: launched).
    Start(Units),
    /// Stop units but keep them scheduled (desired state: loaded).
    Stop(Units),
    /// Stop and unschedule units (desired state: inactive).
    Unload(Units),
    /// Remove units from the cluster.
    Destroy(Units),
    /// Stop then start units.
    Restart(Units),
    /// Show each unit's machine and systemd state: UNIT MACHINE ACTIVE SUB.
    ListUnits,
    /// Show the units in the cluster: UNIT HASH DSTATE STATE TARGET.
    ListUnitFiles,
    /// Show the machines of the cluster: MACHINE IP METADATA.
    ListMachines,
    /// Show a unit's systemd status on its machine, and why it cannot be placed if it is not.
    Status(Units),
    /// Print a unit's journal from the machine it runs on.
    Journal(Units),
    /// Print a unit file as stored in the cluster.
    Cat(Units),
}

/// Unit names or files.
#[derive(Debug, clap::Args)]
pub struct Units {
    /// Units: names (web, web.service, app@1.service) or unit files.
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
}

/// Runs `flotctl` with the given arguments; `command` is the subcommand's name as typed.
pub fn run(args: Flotctl, command: &str) -> ExitCode {
    match &args.command {
        Command::Verify { files } => super::verify::run(files),
        _ => super::not_built("flotctl", command),
    }
}
