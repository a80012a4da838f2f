//! `flotilla rmi` (and `flotilla image rm`): remove images.

use std::process::ExitCode;

use image::store::Removal;

use super::Context;

/// `flotilla rmi [-f] IMAGE…`
#[derive(Debug, clap::Args)]
#[command(
    after_help = "A tag only untags when the image has other tags; an ID removes the image \
    with all its names (--force when they span repositories). Unused layers are deleted."
)]
pub struct RmiArgs {
    /// Remove the image even if tags of several repositories point at it.
    #[arg(short, long)]
    pub force: bool,
    /// Images to remove, by name, digest or ID.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// Runs `flotilla rmi`: every name is tried; the exit status is 1 if any failed.
pub fn run(context: &Context, args: &RmiArgs) -> anyhow::Result<ExitCode> {
    let store = context.store()?;
    let in_use = super::in_use::images_in_use(context)?;
    let mut status = ExitCode::SUCCESS;
    for name in &args.images {
        let result = super::in_use::check_removable(&store, &in_use, name)
            .and_then(|()| Ok(store.remove(std::slice::from_ref(name), args.force)?));
        match result {
            Ok(removals) => print_removals(&removals),
            Err(error) => {
                eprintln!("flotilla rmi: {error}");
                status = ExitCode::FAILURE;
            }
        }
    }
    Ok(status)
}

/// Prints `Untagged: …` and `Deleted: …` lines as docker does.
pub fn print_removals(removals: &[Removal]) {
    for removal in removals {
        match removal {
            Removal::Untagged(name) => println!("Untagged: {name}"),
            Removal::Deleted(digest) => println!("Deleted: {digest}"),
        }
    }
}
