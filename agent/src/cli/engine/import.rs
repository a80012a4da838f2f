//! `flotilla import`: make a single-layer image from a root file system tarball.

use std::process::ExitCode;

use super::Context;

/// `flotilla import [-c CHANGE]… [-m MESSAGE] FILE|- [REPOSITORY[:TAG]]`
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    flotilla import rootfs.tar myapp:v1\n  \
    flotilla export web | flotilla import -c 'CMD [\"/bin/sh\"]' - web-snapshot")]
pub struct ImportArgs {
    /// A Dockerfile instruction to apply to the image config (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL); may be repeated.
    #[arg(short, long, value_name = "CHANGE")]
    pub change: Vec<String>,
    /// The commit message, recorded in the image's history.
    #[arg(short, long, value_name = "MESSAGE")]
    pub message: Option<String>,
    /// The tarball (plain, gzip or zstd), or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub file: String,
    /// The name to give the new image.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// Runs `flotilla import`.
pub fn run(_context: &Context, _args: &ImportArgs) -> anyhow::Result<ExitCode> {
    Ok(crate::cli::not_built("flotilla", "import"))
}
