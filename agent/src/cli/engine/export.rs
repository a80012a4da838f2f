//! `flotilla export`: write a container's root file system, flattened, as a tarball: its image's
//! layers with the container's changes on top, as the container sees `/` without its mounts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{output, Context};
use crate::containers::rootfs_view;
use crate::containers::store::ContainerStore;

/// `flotilla export [-o FILE] CONTAINER`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The container (name, ID or ID prefix), running or stopped.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Runs `flotilla export`.
pub fn run(context: &Context, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    let id = store.resolve(&args.container)?;
    output::write_to(args.output.as_deref(), "export", |out| {
        rootfs_view::read(&context.data_root, &store, &id, |root| {
            image::export::export(root, out)
        })?
        .with_context(|| format!("cannot export container {}", args.container))
    })?;
    Ok(ExitCode::SUCCESS)
}
