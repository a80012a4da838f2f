//! `flotilla-firstboot`: `check` validates first-boot files (for people and for the Vagrantfile's
//! test); `apply` is what `flotilla-firstboot.service` runs once at a machine's first boot.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::firstboot::{apply, config, plan};

/// `flotilla-firstboot`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "flotilla-firstboot",
    version,
    about = "The flotilla host image's first boot"
)]
pub struct FirstBootArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check first-boot files; print every problem with the key it is about.
    Check {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Find this machine's configuration (kernel command line `flotilla.config=PATH`, a config
    /// drive labelled FLOTILLA or cidata holding flotilla.toml, or /var/lib/flotilla/firstboot.toml)
    /// and apply it, once.
    Apply {
        /// Apply this file instead of looking for one.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write the files under this directory (an image being built) instead of the running machine.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
}

/// Runs `flotilla-firstboot`.
pub fn run(args: FirstBootArgs) -> ExitCode {
    let result = match args.command {
        Command::Check { files } => check(&files),
        Command::Apply { config, root } => apply_once(config.as_deref(), &root),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("flotilla-firstboot: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        if let Err(error) = config::parse(&file.display().to_string(), &text) {
            eprintln!("{error}");
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn apply_once(file: Option<&Path>, root: &Path) -> anyhow::Result<ExitCode> {
    let found = match file {
        Some(path) => Some(apply::Found {
            origin: path.display().to_string(),
            text: std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        }),
        None => apply::locate()?,
    };
    let Some(found) = found else {
        println!("flotilla-firstboot: no first-boot configuration: keeping the image's defaults");
        apply::stamp(root, "none")?;
        return Ok(ExitCode::SUCCESS);
    };
    let config = config::parse(&found.origin, &found.text)?;
    let current =
        apply::current_flotilla_toml(&apply::under(root, Path::new(plan::FLOTILLA_TOML)))?;
    let plan = plan::plan(&config, &current);
    apply::apply(&plan, root)?;
    apply::stamp(root, &found.origin)?;
    println!(
        "flotilla-firstboot: applied {}: hostname {}, started {}",
        found.origin,
        config.hostname.as_deref().unwrap_or("(unchanged)"),
        if plan.start.is_empty() {
            "nothing".to_owned()
        } else {
            plan.start.join(" ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
