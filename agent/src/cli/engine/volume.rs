//! `flotilla volume …`: docker's volume commands (`create`, `ls`, `rm`, `inspect`, `prune`)
//! over the [`crate::volumes`] store.
//!
//! Which containers use a volume is read from their records
//! (`<data-root>/containers/*/container.json`).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::images::OutputFormat;
use super::{human, Context};
use crate::volumes::{self, Volume, VolumeError, VolumeStore};

/// The label docker puts on anonymous volumes.
const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The `flotilla volume` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    /// Create a volume and print its name.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove volumes.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Show volumes as JSON.
    Inspect(InspectArgs),
    /// Remove unused volumes: anonymous ones, or with -a all of them.
    Prune(PruneArgs),
}

/// `flotilla volume create [--label K=V]… [NAME]`
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Set metadata on the volume (KEY=VALUE or KEY).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// The volume's name ([a-zA-Z0-9][a-zA-Z0-9_.-]*); a random one when omitted.
    pub name: Option<String>,
}

/// `flotilla volume ls [-q] [--format json]`
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only show volume names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print one JSON object per line instead of the table.
    #[arg(long, value_name = "json")]
    pub format: Option<OutputFormat>,
}

/// `flotilla volume rm [-f] VOLUME…`
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Do not complain about volumes that do not exist.
    #[arg(short, long)]
    pub force: bool,
    /// Volumes to remove.
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

/// `flotilla volume inspect VOLUME…`
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Volumes to show.
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

/// `flotilla volume prune [-a] [-f]`
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not only anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Runs `flotilla volume SUBCOMMAND`.
pub fn run(context: &Context, command: VolumeCommand) -> anyhow::Result<ExitCode> {
    let store = VolumeStore::open(&context.data_root)?;
    match command {
        VolumeCommand::Create(a) => create(&store, &a),
        VolumeCommand::Ls(a) => ls(&store, &a),
        VolumeCommand::Rm(a) => rm(context, &store, &a),
        VolumeCommand::Inspect(a) => inspect(&store, &a),
        VolumeCommand::Prune(a) => prune(context, &store, &a),
    }
}

/// `--label KEY=VALUE` (or `KEY`) values as a map; later ones win.
pub(super) fn parse_labels(given: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for label in given {
        let (key, value) = label.split_once('=').unwrap_or((label, ""));
        anyhow::ensure!(
            !key.is_empty(),
            "invalid --label {label:?}: the key is empty"
        );
        labels.insert(key.to_owned(), value.to_owned());
    }
    Ok(labels)
}

fn create(store: &VolumeStore, args: &CreateArgs) -> anyhow::Result<ExitCode> {
    let labels = parse_labels(&args.labels)?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => volumes::anonymous_name()?,
    };
    let volume = store.create(&name, labels)?;
    println!("{}", volume.name);
    Ok(ExitCode::SUCCESS)
}

fn ls(store: &VolumeStore, args: &LsArgs) -> anyhow::Result<ExitCode> {
    let all = store.list()?;
    if args.quiet {
        for volume in &all {
            println!("{}", volume.name);
        }
    } else if args.format == Some(OutputFormat::Json) {
        for volume in &all {
            let line = serde_json::json!({
                "Availability": "N/A",
                "Driver": volume.metadata.driver,
                "Group": "N/A",
                "Labels": labels(volume)
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                "Links": "N/A",
                "Mountpoint": volume.mountpoint,
                "Name": volume.name,
                "Scope": "local",
                "Size": "N/A",
                "Status": "N/A",
            });
            println!("{line}");
        }
    } else {
        // docker's tabwriter: columns at least 10 wide, 3 spaces of padding.
        let width = all
            .iter()
            .map(|v| v.metadata.driver.len())
            .chain([6])
            .max()
            .map_or(10, |w| (w + 3).max(10));
        println!("{:<width$}VOLUME NAME", "DRIVER");
        for volume in &all {
            println!("{:<width$}{}", volume.metadata.driver, volume.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes each volume; the exit status is 1 if any could not be.
fn rm(context: &Context, store: &VolumeStore, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let users = super::in_use::volumes_in_use(context)?;
    let mut status = ExitCode::SUCCESS;
    for name in &args.volumes {
        let in_use = users.get(name).map_or(&[][..], Vec::as_slice);
        match store.remove(name, in_use) {
            Ok(()) => println!("{name}"),
            Err(VolumeError::NotFound(_)) if args.force => {}
            Err(error) => {
                eprintln!("flotilla volume rm: {error}");
                status = ExitCode::FAILURE;
            }
        }
    }
    Ok(status)
}

/// Prints a JSON array with docker's fields for each volume; exit status 1 if any is missing.
fn inspect(store: &VolumeStore, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let mut found = Vec::new();
    let mut status = ExitCode::SUCCESS;
    for name in &args.volumes {
        match store.get(name) {
            Ok(volume) => found.push(serde_json::json!({
                "CreatedAt": volume.metadata.created_at,
                "Driver": volume.metadata.driver,
                "Labels": labels(&volume),
                "Mountpoint": volume.mountpoint,
                "Name": volume.name,
                "Options": null,
                "Scope": "local",
            })),
            Err(error) => {
                eprintln!("flotilla volume inspect: {error}");
                status = ExitCode::FAILURE;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(status)
}

/// Removes volumes no container uses (only anonymous ones without `--all`) after asking
/// (unless `--force`), then prints them and the space reclaimed.
fn prune(context: &Context, store: &VolumeStore, args: &PruneArgs) -> anyhow::Result<ExitCode> {
    let what = if args.all {
        "all local volumes not used by at least one container"
    } else {
        "anonymous local volumes not used by at least one container"
    };
    if !args.force && !super::confirm::confirm("volume prune", what)? {
        return Ok(ExitCode::SUCCESS);
    }
    let users = super::in_use::volumes_in_use(context)?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0;
    for volume in store.list()? {
        if users.contains_key(&volume.name) || !(args.all || volume.metadata.anonymous) {
            continue;
        }
        let size = disk_usage(&volume.mountpoint)
            .with_context(|| format!("cannot measure {}", volume.mountpoint.display()))?;
        store.remove(&volume.name, &[])?;
        reclaimed += size;
        deleted.push(volume.name);
    }
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for name in &deleted {
            println!("{name}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human::size(reclaimed));
    Ok(ExitCode::SUCCESS)
}

/// A volume's labels as docker shows them: anonymous volumes carry docker's anonymous label.
fn labels(volume: &Volume) -> BTreeMap<String, String> {
    let mut labels = volume.metadata.labels.clone();
    if volume.metadata.anonymous {
        labels.insert(ANONYMOUS_LABEL.to_owned(), String::new());
    }
    labels
}

/// The bytes of the regular files under `dir` (symbolic links not followed).
fn disk_usage(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += disk_usage(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}
