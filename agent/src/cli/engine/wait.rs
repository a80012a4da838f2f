//! `flotilla wait CONTAINER…`: block until each container stops; print its exit code.

use std::process::ExitCode;

use super::{containers, Context};
use crate::containers::control;
use crate::containers::store::ContainerStore;

/// `flotilla wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// The containers (names or IDs).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Runs `flotilla wait`.
pub fn run(context: &Context, args: &WaitArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    containers::each(&store, "wait", &args.containers, |_, id| {
        println!("{}", control::wait(&store, id)?);
        Ok(())
    })
}
