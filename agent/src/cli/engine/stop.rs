//! `flotilla stop [-t S] CONTAINER…` and `flotilla restart [-t S] CONTAINER…`: the stop signal,
//! SIGKILL after the timeout; restart then starts it again under a new supervisor.

use std::process::ExitCode;
use std::time::Duration;

use super::{containers, Context};
use crate::containers::control;
use crate::containers::launch::{self, Attach};
use crate::containers::store::ContainerStore;

/// `flotilla stop` and `flotilla restart`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container (default: its --stop-timeout, else 10).
    #[arg(short = 't', long = "time", alias = "timeout", value_name = "SECONDS")]
    pub time: Option<u64>,
    /// The containers (names or IDs).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Runs `flotilla stop` (`restart` false) or `flotilla restart`.
pub fn run(context: &Context, args: &StopArgs, restart: bool) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    let command = if restart { "restart" } else { "stop" };
    containers::each(&store, command, &args.containers, |name, id| {
        control::stop(&store, id, args.time.map(Duration::from_secs))?;
        if restart {
            launch::start(&context.data_root, &store, id, Attach::default())?;
        }
        println!("{name}");
        Ok(())
    })
}
