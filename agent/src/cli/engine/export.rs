//! `flotilla export`: write a container's root file system, flattened, as a tarball.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::{output, Context};

/// `flotilla export [-o FILE] CONTAINER`
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The container (until the engine lands: a directory holding an unpacked root file system).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Runs `flotilla export`.
pub fn run(_context: &Context, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let root = Path::new(&args.container);
    if !root.is_dir() {
        anyhow::bail!(
            "no such container: {} (until the engine lands, CONTAINER is a directory holding a root file system)",
            args.container
        );
    }
    output::write_to(args.output.as_deref(), "export", |out| {
        image::export::export(root, out)
            .with_context(|| format!("cannot export {}", root.display()))
    })?;
    Ok(ExitCode::SUCCESS)
}
