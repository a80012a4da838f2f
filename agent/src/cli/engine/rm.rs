//! `flotilla rm [-f] [-v] CONTAINER…`: remove stopped containers (`-f` kills running ones
//! first; `-v` removes their anonymous volumes too).

use std::process::ExitCode;

use super::{containers, Context};
use crate::containers::control;
use crate::containers::store::ContainerStore;

/// `flotilla rm`.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Kill and remove running containers.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the containers' anonymous volumes.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// The containers (names or IDs).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Runs `flotilla rm`.
pub fn run(context: &Context, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    containers::each(&store, "rm", &args.containers, |name, id| {
        control::remove(&context.data_root, &store, id, args.force, args.volumes)?;
        println!("{name}");
        Ok(())
    })
}
