//! `flotilla save`: write images to a docker-archive or oci-archive tarball.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use image::archive;

use super::{output, Context};

/// The archive formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `docker save`'s format: manifest.json, repositories, one tar per layer.
    DockerArchive,
    /// An OCI image layout in a tar (oci-layout, index.json, blobs/).
    OciArchive,
}

/// `flotilla save [-o FILE] [--format docker-archive|oci-archive] IMAGE…`
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    flotilla save -o busybox.tar busybox\n  \
    flotilla save --format oci-archive app:v1 app:v2 | zstd > apps.tar.zst")]
pub struct SaveArgs {
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The archive format.
    #[arg(long, value_enum, default_value_t = Format::DockerArchive)]
    pub format: Format,
    /// Images to save, by name, digest or ID.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// Runs `flotilla save`.
pub fn run(context: &Context, args: &SaveArgs) -> anyhow::Result<ExitCode> {
    let store = context.store()?;
    let format = match args.format {
        Format::DockerArchive => archive::Format::DockerArchive,
        Format::OciArchive => archive::Format::OciArchive,
    };
    output::write_to(args.output.as_deref(), "save", |out| {
        archive::save(&store, &args.images, format, out)
            .with_context(|| format!("cannot save {}", args.images.join(", ")))
    })?;
    Ok(ExitCode::SUCCESS)
}
