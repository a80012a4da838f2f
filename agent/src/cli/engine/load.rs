//! `flotilla load`: read images from a docker-archive or oci-archive tarball (plain, gzip or
//! zstd).

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use image::archive;

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
pub fn run(context: &Context, args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let (input, name) = match &args.input {
        Some(path) => (
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
            path.display().to_string(),
        ),
        None if io::stdin().is_terminal() => anyhow::bail!(
            "requested load from standard input, but it is a terminal; use -i FILE or redirect standard input"
        ),
        None => (
            File::from(io::stdin().as_fd().try_clone_to_owned()?),
            "standard input".to_owned(),
        ),
    };
    let store = context.store()?;
    let loaded = archive::load(&store, input).with_context(|| format!("cannot load {name}"))?;
    for image in loaded {
        if image.tags.is_empty() {
            println!("Loaded image ID: {}", image.id);
        }
        for tag in image.tags {
            println!("Loaded image: {}", tag.familiar());
        }
    }
    Ok(ExitCode::SUCCESS)
}
