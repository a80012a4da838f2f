//! `flotilla tag`: give an image another name.

use std::process::ExitCode;

use anyhow::bail;
use image::reference::Reference;

use super::Context;

/// `flotilla tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]`
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  flotilla tag busybox registry.local:5000/tools/busybox:1.36")]
pub struct TagArgs {
    /// The image: a name, digest or ID.
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    /// The new name.
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

/// Runs `flotilla tag`.
pub fn run(context: &Context, args: &TagArgs) -> anyhow::Result<ExitCode> {
    let target = Reference::parse(&args.target)?;
    if target.digest().is_some() {
        bail!(
            "refusing to create a tag with a digest reference: {}",
            args.target
        );
    }
    context.store()?.tag(&args.source, &target)?;
    Ok(ExitCode::SUCCESS)
}
