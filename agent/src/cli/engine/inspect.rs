//! `flotilla inspect [--type container|image] NAME…`: docker's JSON array, containers first
//! (by name, ID or ID prefix), then images, as `docker inspect` looks them up.

use std::process::ExitCode;

use super::{image_commands, Context};
use crate::containers::store::ContainerStore;
use crate::engine::image_config::ImageConfig;
use crate::engine::present;

/// `flotilla inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Only look for this kind of object.
    #[arg(long = "type", value_parser = ["container", "image"])]
    pub kind: Option<String>,
    /// Containers or images.
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

/// Runs `flotilla inspect`.
pub fn run(context: &Context, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let containers = ContainerStore::open(&context.data_root)?;
    let images = context.store()?;
    let mut found = Vec::new();
    let mut status = ExitCode::SUCCESS;
    for name in &args.names {
        let container = (args.kind.as_deref() != Some("image"))
            .then(|| containers.resolve(name).ok())
            .flatten();
        let json = if let Some(id) = container {
            let record = containers.read(&id)?;
            let spec = containers.spec(&id)?;
            let config = images
                .resolve(&record.image_id)
                .ok()
                .and_then(|image| images.contents(&image).ok())
                .and_then(|contents| ImageConfig::from_document(&contents.config).ok())
                .unwrap_or_default();
            Some(present::inspect(
                &record,
                &spec,
                &config,
                &containers.dir(&id),
            ))
        } else if args.kind.as_deref() != Some("container") {
            match images.resolve(name) {
                Ok(image) => Some(image_commands::describe(&images, &image)?),
                Err(_) => None,
            }
        } else {
            None
        };
        match json {
            Some(json) => found.push(json),
            None => {
                let what = args
                    .kind
                    .as_deref()
                    .map_or("object".to_owned(), |k| k.to_owned());
                eprintln!("flotilla inspect: no such {what}: {name}");
                status = ExitCode::FAILURE;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(status)
}
