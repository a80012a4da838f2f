//! `flotctl`: fleetctl's commands for a flotilla cluster, talking to the local agent's API (or a
//! remote one over mutual TLS).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::api::client::{Client, Endpoint};
use crate::api::tls::TlsFiles;

mod files;
mod lists;
mod show;
mod table;
mod units;
mod wait;

/// The command line of `flotctl`.
#[derive(Debug, Parser)]
#[command(
    name = "flotctl",
    version,
    about = "Control a flotilla cluster: submit, schedule and inspect units (fleetctl-compatible)",
    after_help = "Examples:\n  \
        flotctl verify mongo.service employees.service   check units before submitting them\n  \
        flotctl start mongo.service employees.service    schedule and start units\n  \
        flotctl start web@{1..3}.service                 instances of the template web@.service\n  \
        flotctl list-units                               where each unit runs, and its state\n  \
        flotctl status web.service                       systemd's status, or why it is not placed\n  \
        flotctl journal -f employees.service             follow a unit's output\n\n\
        Unit names without a suffix mean .service: 'flotctl start web' acts on web.service.\n\
        Global options can also be set as FLOTCTL_<OPTION>, e.g. FLOTCTL_ENDPOINT."
)]
pub struct Flotctl {
    /// The agent's API: unix:///path/to/socket, or https://host:port with the three TLS files.
    #[arg(
        long,
        global = true,
        env = "FLOTCTL_ENDPOINT",
        default_value = "unix:///run/flotilla/flotilla.sock"
    )]
    pub endpoint: String,

    /// The CA that signed the agent's certificate (https endpoints).
    #[arg(long, global = true, env = "FLOTCTL_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Our client certificate (https endpoints).
    #[arg(long, global = true, env = "FLOTCTL_CERT_FILE", value_name = "FILE")]
    pub cert_file: Option<PathBuf>,

    /// The key of --cert-file.
    #[arg(long, global = true, env = "FLOTCTL_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Seconds to wait for each API request.
    #[arg(
        long,
        global = true,
        env = "FLOTCTL_REQUEST_TIMEOUT",
        default_value_t = 3.0,
        value_name = "SECONDS"
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
    Submit(Submit),
    /// Schedule units to machines without starting them (desired state: loaded).
    Load(Change),
    /// Schedule and start units (desired state: launched), then wait until systemd runs them.
    Start(Change),
    /// Stop units but keep them scheduled (desired state: loaded).
    Stop(Transition),
    /// Stop and unschedule units (desired state: inactive).
    Unload(Transition),
    /// Remove units from the cluster.
    Destroy(Transition),
    /// Stop then start units.
    Restart(Transition),
    /// Show each unit's machine and systemd state: UNIT MACHINE ACTIVE SUB.
    ListUnits(List),
    /// Show the units in the cluster: UNIT HASH DSTATE STATE TARGET.
    ListUnitFiles(List),
    /// Show the machines of the cluster: MACHINE IP METADATA.
    ListMachines(List),
    /// Show a unit's systemd status on its machine, or why no machine can run it.
    Status(Names),
    /// Print a unit's journal from the machine it runs on.
    Journal(Journal),
    /// Print a unit file as stored in the cluster.
    Cat(Names),
}

/// Unit names.
#[derive(Debug, Args)]
pub struct Names {
    /// Units: web, web.service, app@1.service.
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
}

/// How long to wait for the cluster to reach the asked state.
#[derive(Debug, Clone, Copy, Args)]
pub struct Blocking {
    /// Wait at most N attempts of 2 seconds each for every unit (0: as long as it takes).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub block_attempts: u32,
    /// Do not wait: ask for the state and return.
    #[arg(long)]
    pub no_block: bool,
}

/// `submit`: unit files or template instances.
#[derive(Debug, Args)]
pub struct Submit {
    /// Unit files, or instances of templates (app@1.service) found in the cluster or beside them.
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
    /// Replace units already in the cluster whose content differs.
    #[arg(long)]
    pub replace: bool,
}

/// `load` and `start`: submit what is missing, then change the desired state.
#[derive(Debug, Args)]
pub struct Change {
    /// Unit files, names of units in the cluster, or template instances.
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
    /// Replace units already in the cluster whose content differs.
    #[arg(long)]
    pub replace: bool,
    /// How long to wait.
    #[command(flatten)]
    pub blocking: Blocking,
}

/// `stop`, `unload`, `destroy`, `restart`: units already in the cluster.
#[derive(Debug, Args)]
pub struct Transition {
    /// Names of units in the cluster.
    #[arg(required = true, value_name = "UNIT")]
    pub units: Vec<String>,
    /// How long to wait.
    #[command(flatten)]
    pub blocking: Blocking,
}

/// The list commands' output options.
#[derive(Debug, Args)]
pub struct List {
    /// Columns to show, comma-separated (see the header names).
    #[arg(long, value_name = "FIELDS")]
    pub fields: Option<String>,
    /// Full machine IDs and hashes.
    #[arg(long, short = 'l', alias = "l")]
    pub full: bool,
    /// No header line.
    #[arg(long)]
    pub no_legend: bool,
}

/// `journal`.
#[derive(Debug, Args)]
pub struct Journal {
    /// The unit.
    #[arg(value_name = "UNIT")]
    pub unit: String,
    /// How many of the last lines to print.
    #[arg(long, short = 'n', default_value_t = 10, value_name = "N")]
    pub lines: u32,
    /// Keep printing new lines as they come.
    #[arg(long, short = 'f', alias = "f")]
    pub follow: bool,
    /// journalctl's output mode (short, short-iso, json, cat, …).
    #[arg(long, short = 'o', default_value = "short", value_name = "MODE")]
    pub output: String,
}

/// What a flotctl command failed with; `anyhow` carries it to the exit.
type Result<T> = anyhow::Result<T>;

impl Flotctl {
    fn client(&self) -> Result<Client> {
        let endpoint: Endpoint = self.endpoint.parse()?;
        let tls = match (&self.ca_file, &self.cert_file, &self.key_file) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None, None) => None,
            _ => anyhow::bail!("--ca-file, --cert-file and --key-file go together"),
        };
        if !(self.request_timeout > 0.0 && self.request_timeout.is_finite()) {
            anyhow::bail!("--request-timeout must be a positive number of seconds");
        }
        let timeout = Duration::from_secs_f64(self.request_timeout);
        Ok(Client::new(endpoint, tls.as_ref(), timeout)?)
    }
}

/// Runs `flotctl` with the given arguments; `_command` is the subcommand's name as typed.
pub fn run(args: Flotctl, _command: &str) -> ExitCode {
    if let Command::Verify { files } = &args.command {
        return super::verify::run(files);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime on this thread");
    match runtime.block_on(dispatch(&args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("Error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(args: &Flotctl) -> Result<ExitCode> {
    let client = args.client()?;
    match &args.command {
        Command::Verify { .. } => unreachable!("verify needs no agent"),
        Command::Submit(submit) => units::submit(&client, submit).await,
        Command::Load(change) => units::load(&client, change).await,
        Command::Start(change) => units::start(&client, change).await,
        Command::Stop(transition) => units::stop(&client, transition).await,
        Command::Unload(transition) => units::unload(&client, transition).await,
        Command::Destroy(transition) => units::destroy(&client, transition).await,
        Command::Restart(transition) => units::restart(&client, transition).await,
        Command::ListUnits(list) => lists::list_units(&client, list).await,
        Command::ListUnitFiles(list) => lists::list_unit_files(&client, list).await,
        Command::ListMachines(list) => lists::list_machines(&client, list).await,
        Command::Status(names) => show::status(&client, names).await,
        Command::Journal(journal) => show::journal(&client, journal).await,
        Command::Cat(names) => show::cat(&client, names).await,
    }
}
