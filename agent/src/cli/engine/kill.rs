//! `flotilla kill [-s SIGNAL] CONTAINER…`: a signal to each running container (SIGKILL by
//! default); like `stop`, it keeps the restart policy from starting the container again.

use std::process::ExitCode;
use std::str::FromStr;

use nix::sys::signal::Signal;

use super::{containers, Context};
use crate::containers::control;
use crate::containers::store::ContainerStore;
use crate::engine::options::parse_stop_signal;

/// `flotilla kill`.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// The signal: a name (KILL, SIGTERM) or a number.
    #[arg(short = 's', long, default_value = "KILL", value_parser = parse_signal)]
    pub signal: Signal,
    /// The containers (names or IDs).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn parse_signal(text: &str) -> Result<Signal, String> {
    let name = parse_stop_signal(text).map_err(|e| e.to_string())?;
    match name.parse::<i32>() {
        Ok(number) => Signal::try_from(number).map_err(|e| format!("signal {number}: {e}")),
        Err(_) => Signal::from_str(&name).map_err(|e| format!("signal {name}: {e}")),
    }
}

/// Runs `flotilla kill`.
pub fn run(context: &Context, args: &KillArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    containers::each(&store, "kill", &args.containers, |name, id| {
        control::signal(&store, id, args.signal, true)?;
        println!("{name}");
        Ok(())
    })
}
