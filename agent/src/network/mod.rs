//! Container networking.
//!
//! The kernel side: [`bridge`] makes a network's bridge and sets the sysctls routing needs,
//! [`veth`] connects a container's network namespace to it, [`firewall`] keeps flotilla's
//! nftables table (masquerading, isolation, published ports) in step with the engine's records.

pub mod bridge;
pub mod firewall;
mod netlink;
pub mod veth;
