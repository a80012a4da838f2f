//! `flotilla load`: read images from a docker-archive or oci-archive tarball (plain, gzip or
//! zstd).

use std::path::PathBuf;
use std::process::ExitCode;

use super::Context;

/// `flotilla load [-i FILE] [-q]`
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    flotilla load -i busybox.tar\n  \
    zstd -dc apps.tar.zst | flotilla load")]
pub struct LoadArgs {
    /// Read from FILE instead of standard input.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print only the loaded image names.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `flotilla load`.
pub fn run(_context: &Context, _args: &LoadArgs) -> anyhow::Result<ExitCode> {
    Ok(crate::cli::not_built("flotilla", "load"))
}
