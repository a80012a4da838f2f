//! `flotilla`: the container engine's command line, with docker's verbs and flags.

use std::process::ExitCode;

use clap::Parser;

/// The command line of `flotilla`.
#[derive(Debug, Parser)]
#[command(
    name = "flotilla",
    version,
    about = "Run containers from OCI and Docker images, with docker's commands and flags",
    after_help = "Examples:\n  \
        flotilla pull registry.local:5000/library/mongo:latest\n  \
        flotilla run -d --name mongo-ins --restart=on-failure:10 mongo   (run-or-start: idempotent)\n  \
        flotilla ps -a ; flotilla logs mongo-ins\n  \
        flotilla save -o mongo.tar mongo ; flotilla load -i mongo.tar"
)]
pub struct Flotilla {
    /// Where images and containers are kept.
    #[arg(
        long,
        global = true,
        env = "FLOTILLA_DATA_ROOT",
        default_value = "/var/lib/flotilla"
    )]
    pub data_root: std::path::PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The engine's commands (docker's names).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pull an image from a registry.
    Pull(Rest),
    /// List images.
    Images(Rest),
    /// Give an image another name.
    Tag(Rest),
    /// Remove images.
    Rmi(Rest),
    /// Manage images (inspect, prune, …).
    Image(Rest),
    /// Write images to a tar archive (docker-archive or oci-archive).
    Save(Rest),
    /// Read images from a tar archive.
    Load(Rest),
    /// Write a container's root filesystem as a tar archive.
    Export(Rest),
    /// Make an image from a root filesystem tar archive.
    Import(Rest),
    /// Run a container (starts the existing one when the configuration is the same).
    Run(Rest),
    /// Create a container without starting it.
    Create(Rest),
    /// Start containers.
    Start(Rest),
    /// Stop containers (SIGTERM, then SIGKILL after the stop timeout).
    Stop(Rest),
    /// Restart containers.
    Restart(Rest),
    /// Send a signal to containers.
    Kill(Rest),
    /// Remove containers.
    Rm(Rest),
    /// Wait for containers to exit and print their exit codes.
    Wait(Rest),
    /// List containers.
    Ps(Rest),
    /// Show containers or images as JSON.
    Inspect(Rest),
    /// Show a container's output.
    Logs(Rest),
    /// Run a command in a running container.
    Exec(Rest),
    /// Manage volumes.
    Volume(Rest),
    /// Manage networks.
    Network(Rest),
    /// Show a container's published ports.
    Port(Rest),
}

/// The arguments of a command this build does not parse yet.
#[derive(Debug, clap::Args)]
pub struct Rest {
    /// Arguments, as docker takes them.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARG"
    )]
    pub args: Vec<String>,
}

/// Runs `flotilla` with the given arguments; `command` is the subcommand's name as typed.
pub fn run(_args: Flotilla, command: &str) -> ExitCode {
    super::not_built("flotilla", command)
}
