//! Container networking: the engine's own bridge networks, their addresses, a container's view of
//! them, and the kernel state that carries them.
//!
//! [`store`] keeps the networks (the default `bridge` and user-defined ones) under the data
//! root; [`ipam`] hands out their addresses, persistently and without leaks; [`ports`] is
//! docker's `-p`/`-P` grammar and the choice of host ports; [`files`] renders a container's
//! `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`; [`links`] is docker's `--link`
//! environment. The kernel side: [`bridge`] makes a network's bridge and sets the sysctls routing
//! needs, [`netns`] keeps a container's network namespace alive by a bind mount, [`veth`] connects
//! that namespace to a bridge, [`firewall`] keeps flotilla's nftables table (masquerading,
//! isolation, published ports) in step with the engine's records; [`dns`] is the resolver that
//! lets the containers of a user network find each other by name.

pub mod bridge;
pub mod dns;
pub mod files;
pub mod firewall;
pub mod ipam;
pub mod links;
mod netlink;
pub mod netns;
pub mod ports;
pub mod store;
pub mod veth;

pub use netlink::mac_for;
