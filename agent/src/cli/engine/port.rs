//! `flotilla port CONTAINER [PRIVATE_PORT[/PROTO]]`: where a running container's ports are
//! published on the host, as docker prints it.

use std::process::ExitCode;

use super::Context;
use crate::containers::store::ContainerStore;
use crate::network::ports::{port_lines, ContainerPort, Origin};

/// `flotilla port`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    flotilla port web            80/tcp -> 0.0.0.0:8080\n  \
    flotilla port web 80/tcp     0.0.0.0:8080")]
pub struct PortArgs {
    /// The container (name or ID).
    pub container: String,
    /// Only this container port (PORT or PORT/tcp|udp).
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub port: Option<String>,
}

/// Runs `flotilla port`.
pub fn run(context: &Context, args: &PortArgs) -> anyhow::Result<ExitCode> {
    let store = ContainerStore::open(&context.data_root)?;
    let record = store.read(&store.resolve(&args.container)?)?;
    let query = args
        .port
        .as_deref()
        .map(|text| ContainerPort::parse(text, Origin::Query))
        .transpose()?;
    let bindings = if record.is_active() {
        record.ports.as_slice()
    } else {
        &[]
    };
    for line in port_lines(&record.name, bindings, query)? {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
