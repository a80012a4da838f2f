//! Container networking.
//!
//! The kernel side: [`bridge`] makes a network's bridge and sets the sysctls routing needs,
//! [`veth`] connects a container's network namespace to it.

pub mod bridge;
mod netlink;
pub mod veth;
