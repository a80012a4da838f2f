//! Container networking: the engine's own bridge networks, their addresses and a container's
//! view of them.
//!
//! [`store`] keeps the networks (the default `bridge` and user-defined ones) under the data
//! root; [`ipam`] hands out their addresses, persistently and without leaks; [`ports`] is
//! docker's `-p`/`-P` grammar and the choice of host ports; [`files`] renders a container's
//! `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`; [`links`] is docker's `--link`
//! environment. The kernel side (bridge, veth, firewall) sits beside them.

pub mod files;
pub mod ipam;
pub mod links;
pub mod ports;
pub mod store;
