//! flotilla's firewall: masquerading, forwarding and isolation per bridge network, and the DNAT
//! of published ports, all in flotilla's own nftables table `ip flotilla`; no other table is
//! ever read or written.
//!
//! The engine describes what it wants ([`Network`], [`Publication`], or all of it as a
//! [`FirewallState`]); [`rules`] renders that into rules, pure; [`plan`] compares them with the
//! table as installed and makes one nft batch, pure; [`nft`] lists the table and applies the
//! batch. Each change reads the table first and touches only its owner's rules, so adding or
//! removing one container leaves every other rule (and its handle) alone; the table is created
//! with its first user and deleted with its last. [`rebuild`] makes the whole table match the
//! engine's records (at boot, after a crash) and changes nothing when it already does.
//!
//! Everything acts on the network namespace of the calling thread. The read-then-write of a
//! change is not atomic against another writer: the engine serialises its firewall changes (one
//! nft batch is atomic, and a rebuild repairs whatever a race left).
//!
//! Published ports also need the host's `net.ipv4.ip_forward` and the bridge's `route_localnet`
//! (see [`super::bridge`]).

mod nft;
mod plan;
mod rules;

use std::net::Ipv4Addr;

pub use nft::NftError;
pub use rules::RuleError;

use plan::{plan, Scope};
use rules::{base_group, container_group, network_group, Group, Owner};

/// Why the firewall could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The description cannot be turned into rules.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// nft failed.
    #[error(transparent)]
    Nft(#[from] NftError),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, FirewallError>;

/// Everything the firewall should hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallState {
    /// The bridge networks.
    pub networks: Vec<Network>,
    /// The containers' published ports.
    pub publications: Vec<Publication>,
}

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    /// Its name, which tags its rules.
    pub name: String,
    /// Its bridge interface.
    pub bridge: String,
    /// An address of its subnet (host bits are ignored).
    pub subnet: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
}

/// A container's published ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The container's ID, which tags its rules.
    pub container: String,
    /// The container's address the ports lead to.
    pub address: Ipv4Addr,
    /// The ports, one entry per host port (ranges expanded).
    pub ports: Vec<PublishedPort>,
}

/// A host port that leads to a container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedPort {
    /// The host address it is published on; 0.0.0.0 is every local address.
    pub host_ip: Ipv4Addr,
    /// The host port.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

/// A transport protocol a port can be published for: the one `-p` parses.
pub use super::ports::Protocol;

/// Installs (or replaces) `network`'s rules.
pub fn add_network_rules(network: &Network) -> Result<()> {
    install(network_group(network)?)
}

/// Removes the rules of network `name`; no error if it has none.
pub fn remove_network_rules(name: &str) -> Result<()> {
    uninstall(&Owner::Network(name.to_owned()))
}

/// Installs (or replaces) the DNAT rules of a container's published ports.
pub fn add_container_rules(publication: &Publication) -> Result<()> {
    install(container_group(publication)?)
}

/// Removes the rules of container `id`; no error if it has none.
pub fn remove_container_rules(id: &str) -> Result<()> {
    uninstall(&Owner::Container(id.to_owned()))
}

/// Makes `group` the only rules of its owner (with the base rules in place).
fn install(group: Group) -> Result<()> {
    let owner = group.owner.clone();
    change(&[base_group(), group], Scope::Only(&owner))
}

/// Removes every rule of `owner`.
fn uninstall(owner: &Owner) -> Result<()> {
    change(&[base_group()], Scope::Only(owner))
}

/// Makes the table hold exactly `state`'s rules (none at all: no table).
pub fn rebuild(state: &FirewallState) -> Result<()> {
    let mut groups = vec![base_group()];
    for network in &state.networks {
        groups.push(network_group(network)?);
    }
    for publication in &state.publications {
        groups.push(container_group(publication)?);
    }
    change(&groups, Scope::Everything)
}

/// Reads the table, and applies what turns it into `wanted` within `scope`, if anything.
fn change(wanted: &[Group], scope: Scope) -> Result<()> {
    let batch = plan(&nft::installed()?, wanted, scope);
    if !batch.is_empty() {
        nft::apply(batch)?;
    }
    Ok(())
}
