//! `flotilla import`: make a single-layer image from a root file system tarball.

use std::fs::File;
use std::io::{self, Read};
use std::process::ExitCode;

use anyhow::Context as _;
use image::import::{import, Change, ImportOptions};
use image::reference::Reference;

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
pub fn run(context: &Context, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let changes = args
        .change
        .iter()
        .map(|c| Change::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let tag = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let reader: Box<dyn Read> = if args.file == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&args.file).with_context(|| format!("cannot open {}", args.file))?)
    };
    let store = context.store()?;
    let id = import(
        &store,
        reader,
        &ImportOptions {
            changes: &changes,
            message: args.message.as_deref(),
            source_name: &args.file,
            tag: tag.as_ref(),
        },
    )
    .with_context(|| format!("cannot import {}", args.file))?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}
