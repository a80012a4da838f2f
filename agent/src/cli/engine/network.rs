//! `flotilla network …`: docker's network commands (`create`, `ls`, `rm`, `inspect`, `connect`,
//! `disconnect`) over the [`crate::network::store`] and a container's
//! [`crate::containers::networking`].

use std::process::ExitCode;

use serde_json::json;

use super::images::OutputFormat;
use super::Context;
use crate::containers::networking;
use crate::containers::store::ContainerStore;
use crate::engine::container::Container;
use crate::network::ipam::Subnet;
use crate::network::store::{Network, NetworkRequest, NetworkStore, BRIDGE_DRIVER};
use crate::network::{bridge, firewall};

/// The `flotilla network` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network on which containers find each other by name, and print its ID.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove networks no container is connected to.
    #[command(alias = "remove")]
    Rm(NamesArgs),
    /// Show networks as JSON, with their containers.
    Inspect(NamesArgs),
    /// Connect a container to a network (at once if it runs).
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(ConnectArgs),
}

/// `flotilla network create [--subnet CIDR] [--gateway IP] [--internal] [--label K=V] NAME`
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    flotilla network create backend\n  \
    flotilla network create --subnet 10.30.0.0/24 backend\n  \
    flotilla run -d --network backend --name db mongo   (others on backend reach it as db)")]
pub struct CreateArgs {
    /// The driver; only bridge.
    #[arg(short, long, default_value = BRIDGE_DRIVER, value_parser = [BRIDGE_DRIVER])]
    pub driver: String,
    /// The subnet (default: the next free /24 of 10.223.0.0/16).
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<Subnet>,
    /// The bridge's own address (default: the subnet's first).
    #[arg(long, value_name = "IP")]
    pub gateway: Option<std::net::Ipv4Addr>,
    /// No route out of the network.
    #[arg(long)]
    pub internal: bool,
    /// Set metadata on the network (KEY=VALUE or KEY).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// The network's name.
    pub name: String,
}

/// `flotilla network ls [-q] [--format json]`
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only show network IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print one JSON object per line instead of the table.
    #[arg(long, value_name = "json")]
    pub format: Option<OutputFormat>,
}

/// Networks named on the command line.
#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    /// Networks (name, ID or ID prefix).
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

/// `flotilla network connect|disconnect NETWORK CONTAINER`
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// The network.
    pub network: String,
    /// The container.
    pub container: String,
}

/// Runs `flotilla network SUBCOMMAND`.
pub fn run(context: &Context, command: NetworkCommand) -> anyhow::Result<ExitCode> {
    let networks = context.networks()?;
    let containers = ContainerStore::open(&context.data_root)?;
    match command {
        NetworkCommand::Create(a) => {
            let network = networks.create(
                &a.name,
                NetworkRequest {
                    subnet: a.subnet,
                    gateway: a.gateway,
                    labels: super::volume::parse_labels(&a.labels)?,
                    internal: a.internal,
                },
            )?;
            println!("{}", network.id);
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Ls(a) => ls(&networks, &a),
        NetworkCommand::Rm(a) => each(&a.networks, "rm", |name| rm(&networks, &containers, name)),
        NetworkCommand::Inspect(a) => inspect(&networks, &containers, &a),
        NetworkCommand::Connect(a) => {
            let id = containers.resolve(&a.container)?;
            networking::connect(&context.data_root, &containers, &id, &a.network)?;
            Ok(ExitCode::SUCCESS)
        }
        NetworkCommand::Disconnect(a) => {
            let id = containers.resolve(&a.container)?;
            networking::disconnect(&context.data_root, &containers, &id, &a.network)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `action` on each name; the exit status is 1 if any failed (each failure printed).
fn each(
    names: &[String],
    verb: &str,
    mut action: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<ExitCode> {
    let mut status = ExitCode::SUCCESS;
    for name in names {
        if let Err(error) = action(name) {
            eprintln!("flotilla network {verb}: {error:#}");
            status = ExitCode::FAILURE;
        }
    }
    Ok(status)
}

fn ls(networks: &NetworkStore, args: &LsArgs) -> anyhow::Result<ExitCode> {
    let all = networks.list()?;
    if args.quiet {
        for network in &all {
            println!("{}", &network.id[..12]);
        }
    } else if args.format == Some(OutputFormat::Json) {
        for network in &all {
            let line = json!({
                "CreatedAt": network.created,
                "Driver": network.driver,
                "ID": &network.id[..12],
                "IPv6": "false",
                "Internal": network.internal.to_string(),
                "Labels": network.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "Name": network.name,
                "Scope": "local",
            });
            println!("{line}");
        }
    } else {
        let mut table = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
            .map(str::to_owned)
            .to_vec()];
        for network in &all {
            table.push(vec![
                network.id[..12].to_owned(),
                network.name.clone(),
                network.driver.clone(),
                "local".to_owned(),
            ]);
        }
        super::table::print(&table);
    }
    Ok(ExitCode::SUCCESS)
}

/// The containers with an address on `network`.
fn members(containers: &ContainerStore, network: &str) -> anyhow::Result<Vec<Container>> {
    Ok(containers
        .list()?
        .into_iter()
        .filter(|c| c.endpoints.iter().any(|e| e.network == network))
        .collect())
}

fn rm(networks: &NetworkStore, containers: &ContainerStore, name: &str) -> anyhow::Result<()> {
    let all = containers.list()?;
    let users = |network: &str| {
        all.iter()
            .filter(|c| c.endpoints.iter().any(|e| e.network == network))
            .map(|c| c.name.clone())
            .collect()
    };
    let network = networks.remove(name, &users)?;
    firewall::remove_network_rules(&network.name)?;
    bridge::remove_bridge(&network.interface)?;
    println!("{name}");
    Ok(())
}

fn inspect(
    networks: &NetworkStore,
    containers: &ContainerStore,
    args: &NamesArgs,
) -> anyhow::Result<ExitCode> {
    let mut found = Vec::new();
    let status = each(&args.networks, "inspect", |name| {
        let network = networks.get(name)?;
        found.push(inspect_json(&network, &members(containers, &network.name)?));
        Ok(())
    })?;
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(status)
}

/// docker's `network inspect` object.
fn inspect_json(network: &Network, members: &[Container]) -> serde_json::Value {
    let containers: serde_json::Map<String, serde_json::Value> = members
        .iter()
        .filter_map(|c| {
            let endpoint = c.endpoints.iter().find(|e| e.network == network.name)?;
            Some((
                c.id.clone(),
                json!({
                    "Name": c.name,
                    "EndpointID": "",
                    "MacAddress": endpoint.mac,
                    "IPv4Address": format!("{}/{}", endpoint.address, endpoint.prefix),
                    "IPv6Address": "",
                }),
            ))
        })
        .collect();
    json!({
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": network.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": network.subnet.to_string(), "Gateway": network.gateway.to_string()}],
        },
        "Internal": network.internal,
        "Attachable": false,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": network.interface},
        "Labels": network.labels,
    })
}
