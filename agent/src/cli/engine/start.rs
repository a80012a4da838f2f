//! `flotilla start [-a] [-i] CONTAINER…`: start stopped containers under a new supervisor each;
//! with `-a`, stay attached to the (single) container's output and exit with its code.

use std::process::ExitCode;

use super::{attach, containers, Context};
use crate::containers::launch::{self, Attach, Started};
use crate::containers::store::ContainerStore;

/// `flotilla start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach to the container's output and return its exit code.
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Pass this terminal's standard input to the container.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// The containers (names or IDs).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Runs `flotilla start`.
pub fn run(context: &Context, args: &StartArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    if args.attach || args.interactive {
        let [name] = args.containers.as_slice() else {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        };
        let id = store.resolve(name)?;
        let tty = store.read(&id)?.options.tty;
        let (attach, ends) = attach::pipes(args.interactive, tty)?;
        return match launch::start(&context.data_root, &store, &id, attach)? {
            Started::Now { status, .. } => attach::follow(&store, &id, ends, status),
            Started::AlreadyRunning => Ok(ExitCode::SUCCESS),
        };
    }
    containers::each(&store, "start", &args.containers, |name, id| {
        launch::start(&context.data_root, &store, id, Attach::default())?;
        println!("{name}");
        Ok(())
    })
}
