//! `flotillad`: the agent that runs on every machine of the cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::config::{Config, Overrides};
use crate::daemon::run::{run as run_daemon, Settings, RUN_DIR};

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
        its top-level keys, and these flags override both.\n\n\
        Signals: SIGHUP reads the configuration again (metadata and address take effect at \
        once); SIGTERM leaves the cluster: this machine's units are stopped and the scheduler \
        moves them at once. A killed or crashed agent that comes back within agent_ttl adopts \
        its units without restarting any."
)]
pub struct Flotillad {
    /// The configuration file.
    #[arg(
        long,
        env = "FLOTILLA_CONFIG",
        default_value = crate::config::DEFAULT_CONFIG_PATH
    )]
    pub config: PathBuf,
    /// etcd's client URLs, comma-separated.
    #[arg(long, value_name = "URLS")]
    pub etcd_endpoints: Option<String>,
    /// The prefix of every key of the cluster in etcd.
    #[arg(long, value_name = "PREFIX")]
    pub etcd_key_prefix: Option<String>,
    /// The address other machines reach this one at.
    #[arg(long, value_name = "IP")]
    pub public_ip: Option<String>,
    /// How long the cluster waits for a silent machine before moving its units (e.g. 30s).
    #[arg(long, value_name = "DURATION")]
    pub agent_ttl: Option<String>,
    /// What MachineMetadata= matches here: k=v,k2=v2.
    #[arg(long, value_name = "K=V,…")]
    pub metadata: Option<String>,
    /// Run units but never become the scheduler.
    #[arg(long)]
    pub disable_engine: bool,
    /// Where the units placed on this machine are written.
    #[arg(long, value_name = "DIR")]
    pub units_directory: Option<String>,
    /// The API's unix socket.
    #[arg(long, value_name = "PATH")]
    pub api_socket: Option<String>,
    /// Also serve the API on this TCP address, with mutual TLS.
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub api_listen: Option<String>,
}

impl Flotillad {
    fn overrides(&self) -> Overrides {
        let mut overrides = Overrides::from_env(std::env::vars());
        let flags = [
            ("--etcd-endpoints", "etcd_endpoints", &self.etcd_endpoints),
            (
                "--etcd-key-prefix",
                "etcd_key_prefix",
                &self.etcd_key_prefix,
            ),
            ("--public-ip", "public_ip", &self.public_ip),
            ("--agent-ttl", "agent_ttl", &self.agent_ttl),
            ("--metadata", "metadata", &self.metadata),
            (
                "--units-directory",
                "units_directory",
                &self.units_directory,
            ),
            ("--api-socket", "api_socket", &self.api_socket),
            ("--api-listen", "api_listen", &self.api_listen),
        ];
        for (flag, key, value) in flags {
            if let Some(value) = value {
                overrides.set(flag, key, value.clone());
            }
        }
        if self.disable_engine {
            overrides.set("--disable-engine", "disable_engine", "true");
        }
        overrides
    }
}

/// Runs the agent.
pub fn run(args: Flotillad) -> ExitCode {
    let overrides = args.overrides();
    let config = match Config::load_with(&args.config, &overrides) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("flotillad: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = crate::logs::agent::init_agent_logging("flotillad") {
        eprintln!("flotillad: logging: {error}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("flotillad: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let settings = Settings {
        config,
        config_path: args.config,
        overrides,
        run_dir: PathBuf::from(RUN_DIR),
    };
    match runtime.block_on(run_daemon(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("flotillad: {error}");
            eprintln!("flotillad: {error}");
            ExitCode::FAILURE
        }
    }
}
