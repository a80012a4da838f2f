//! `flotilla`: the container engine's command line, with docker's verbs and flags.

use std::process::ExitCode;

use clap::Parser;

use super::engine;

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

    /// The configuration file (registry mirrors, insecure registries, credentials).
    #[arg(
        long,
        global = true,
        env = "FLOTILLA_CONFIG",
        default_value = crate::config::DEFAULT_CONFIG_PATH
    )]
    pub config: std::path::PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The engine's commands (docker's names).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pull an image from a registry.
    Pull(engine::pull::PullArgs),
    /// List images.
    Images(engine::images::ImagesArgs),
    /// Give an image another name.
    Tag(engine::tag::TagArgs),
    /// Remove images.
    Rmi(engine::rmi::RmiArgs),
    /// Manage images (inspect, prune, ls, rm, …).
    #[command(subcommand)]
    Image(engine::image_commands::ImageCommand),
    /// Write images to a tar archive (docker-archive or oci-archive).
    Save(engine::save::SaveArgs),
    /// Read images from a tar archive.
    Load(engine::load::LoadArgs),
    /// Write a container's root filesystem as a tar archive.
    Export(engine::export::ExportArgs),
    /// Make an image from a root filesystem tar archive.
    Import(engine::import::ImportArgs),
    /// Run a container (starts the existing one when the configuration is the same).
    #[command(disable_help_flag = true)]
    Run(engine::run::RunArgs),
    /// Create a container without starting it.
    #[command(disable_help_flag = true)]
    Create(engine::run::CreateArgs),
    /// Start containers.
    Start(engine::start::StartArgs),
    /// Stop containers (the stop signal, then SIGKILL after the stop timeout).
    Stop(engine::stop::StopArgs),
    /// Restart containers.
    Restart(engine::stop::StopArgs),
    /// Send a signal to containers.
    Kill(engine::kill::KillArgs),
    /// Remove containers.
    Rm(engine::rm::RmArgs),
    /// Wait for containers to exit and print their exit codes.
    Wait(engine::wait::WaitArgs),
    /// List containers.
    Ps(engine::ps::PsArgs),
    /// Show containers or images as JSON.
    Inspect(engine::inspect::InspectArgs),
    /// Show a container's output.
    Logs(engine::logs::LogsArgs),
    /// Run a command in a running container.
    Exec(engine::exec::ExecArgs),
    /// Manage volumes (create, ls, rm, inspect, prune).
    #[command(subcommand)]
    Volume(engine::volume::VolumeCommand),
    /// Manage networks (create, ls, rm, inspect, connect, disconnect).
    #[command(subcommand)]
    Network(engine::network::NetworkCommand),
    /// Show a container's published ports.
    Port(engine::port::PortArgs),
    /// Start the containers whose restart policy wants them back after a reboot.
    Boot(engine::boot::BootArgs),
    /// Supervise a container (started by `run -d` and `start`; not for people).
    #[command(hide = true)]
    Supervise(engine::supervise::SuperviseArgs),
    /// Serve the user networks' DNS (started by the engine; not for people).
    #[command(hide = true)]
    DnsServe,
}

/// Runs `flotilla` with the given arguments; `command` is the subcommand's name as typed.
pub fn run(args: Flotilla, command: &str) -> ExitCode {
    let context = engine::Context {
        data_root: args.data_root,
        config: args.config,
    };
    let result = match args.command {
        Command::Pull(a) => engine::pull::run(&context, &a),
        Command::Images(a) => engine::images::run(&context, &a),
        Command::Tag(a) => engine::tag::run(&context, &a),
        Command::Rmi(a) => engine::rmi::run(&context, &a),
        Command::Image(a) => engine::image_commands::run(&context, a),
        Command::Save(a) => engine::save::run(&context, &a),
        Command::Load(a) => engine::load::run(&context, &a),
        Command::Export(a) => engine::export::run(&context, &a),
        Command::Import(a) => engine::import::run(&context, &a),
        Command::Volume(a) => engine::volume::run(&context, a),
        Command::Network(a) => engine::network::run(&context, a),
        Command::Port(a) => engine::port::run(&context, &a),
        Command::Run(a) => engine::run::run(&context, &a),
        Command::Create(a) => engine::run::run_create(&context, &a),
        Command::Start(a) => engine::start::run(&context, &a),
        Command::Stop(a) => engine::stop::run(&context, &a, false),
        Command::Restart(a) => engine::stop::run(&context, &a, true),
        Command::Kill(a) => engine::kill::run(&context, &a),
        Command::Rm(a) => engine::rm::run(&context, &a),
        Command::Wait(a) => engine::wait::run(&context, &a),
        Command::Supervise(a) => engine::supervise::run(&context, &a),
        Command::DnsServe => engine::dns_serve::run(&context),
        Command::Logs(a) => engine::logs::run(&context, &a),
        Command::Boot(a) => engine::boot::run(&context, &a),
        Command::Ps(a) => engine::ps::run(&context, &a),
        Command::Exec(a) => engine::exec::run(&context, &a),
        Command::Inspect(a) => engine::inspect::run(&context, &a),
    };
    engine::finish(command, result)
}
