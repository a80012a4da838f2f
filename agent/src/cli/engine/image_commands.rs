//! `flotilla image …`: docker's image management commands (`inspect`, `prune`, and the long
//! spellings `ls`, `rm`, `pull`, `tag`, `save`, `load`, `import`).

use std::process::ExitCode;

use image::store::{Image, Store};

use super::{human, images, import, load, pull, rmi, save, tag, Context};

/// The `flotilla image` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Show images as JSON: config, layers, digests, size.
    Inspect(InspectArgs),
    /// Remove unused images: untagged ones, or with -a all of them.
    Prune(PruneArgs),
    /// List images (as `flotilla images`).
    #[command(alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove images (as `flotilla rmi`).
    #[command(alias = "remove")]
    Rm(rmi::RmiArgs),
    /// Pull an image (as `flotilla pull`).
    Pull(pull::PullArgs),
    /// Give an image another name (as `flotilla tag`).
    Tag(tag::TagArgs),
    /// Write images to a tar archive (as `flotilla save`).
    Save(save::SaveArgs),
    /// Read images from a tar archive (as `flotilla load`).
    Load(load::LoadArgs),
    /// Make an image from a root file system tarball (as `flotilla import`).
    Import(import::ImportArgs),
}

/// `flotilla image inspect IMAGE…`
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Images by name, digest or ID.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `flotilla image prune [-a] [-f]`
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all images, not only untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Runs `flotilla image SUBCOMMAND`.
pub fn run(context: &Context, command: ImageCommand) -> anyhow::Result<ExitCode> {
    match command {
        ImageCommand::Inspect(a) => inspect(context, &a),
        ImageCommand::Prune(a) => prune(context, &a),
        ImageCommand::Ls(a) => images::run(context, &a),
        ImageCommand::Rm(a) => rmi::run(context, &a),
        ImageCommand::Pull(a) => pull::run(context, &a),
        ImageCommand::Tag(a) => tag::run(context, &a),
        ImageCommand::Save(a) => save::run(context, &a),
        ImageCommand::Load(a) => load::run(context, &a),
        ImageCommand::Import(a) => import::run(context, &a),
    }
}

/// Prints a JSON array with docker's fields for each image; exit status 1 if any is missing.
fn inspect(context: &Context, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let store = context.store()?;
    let mut found = Vec::new();
    let mut status = ExitCode::SUCCESS;
    for name in &args.images {
        match store
            .resolve(name)
            .map_err(anyhow::Error::from)
            .and_then(|image| describe(&store, &image))
        {
            Ok(json) => found.push(json),
            Err(error) => {
                eprintln!("flotilla image inspect: {error:#}");
                status = ExitCode::FAILURE;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(status)
}

/// Docker's `image inspect` object for one image, plus the manifest descriptor.
pub fn describe(store: &Store, image: &Image) -> anyhow::Result<serde_json::Value> {
    let contents = store.contents(image)?;
    let config: serde_json::Value = serde_json::from_slice(&contents.config)?;
    let (manifest, layers) = (&contents.manifest, &contents.layers);
    let familiar = |names: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        names
            .map(|n| {
                image::reference::Reference::parse(n).map_or_else(|_| n.clone(), |r| r.familiar())
            })
            .collect()
    };
    let lower_dirs: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.dir.display().to_string())
        .collect();
    Ok(serde_json::json!({
        "Id": image.id.to_string(),
        "RepoTags": familiar(&mut image.tags.iter()),
        "RepoDigests": familiar(&mut image.entry.repo_digests.iter()),
        "Parent": "",
        "Comment": config.get("comment").cloned().unwrap_or_else(|| "".into()),
        "Created": config.get("created").cloned().unwrap_or(serde_json::Value::Null),
        "Author": config.get("author").cloned().unwrap_or_else(|| "".into()),
        "Config": config.get("config").cloned().unwrap_or(serde_json::Value::Null),
        "Architecture": config.get("architecture").cloned().unwrap_or(serde_json::Value::Null),
        "Variant": config.get("variant").cloned(),
        "Os": config.get("os").cloned().unwrap_or(serde_json::Value::Null),
        "Size": images::image_size(store, layers)?,
        "RootFS": {
            "Type": "layers",
            "Layers": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": { "LowerDir": lower_dirs.join(":") },
        },
        "Descriptor": {
            "mediaType": manifest.media_type,
            "digest": image.entry.manifest.to_string(),
            "size": contents.manifest_bytes.len(),
        },
        "Layers": manifest.layers,
    }))
}

/// Removes unused images after asking (unless `--force`), then prints what was reclaimed.
fn prune(context: &Context, args: &PruneArgs) -> anyhow::Result<ExitCode> {
    if !args.force {
        let what = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        if !super::confirm::confirm("image prune", what)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let in_use = super::in_use::images_in_use(context)?;
    let keep: Vec<_> = in_use.keys().cloned().collect();
    let (removals, swept) = context.store()?.prune(args.all, &keep)?;
    if !removals.is_empty() {
        println!("Deleted Images:");
        rmi::print_removals(&removals);
        println!();
    }
    println!("Total reclaimed space: {}", human::size(swept.blob_bytes));
    Ok(ExitCode::SUCCESS)
}
