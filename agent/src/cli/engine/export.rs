//! `flotilla export`: write a container's root file system, flattened, as a tarball.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Context;

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
pub fn run(_context: &Context, _args: &ExportArgs) -> anyhow::Result<ExitCode> {
    Ok(crate::cli::not_built("flotilla", "export"))
}
