//! The cluster: the records flotilla keeps in etcd ([`model`]) and the pure decisions made on them.
//!
//! Nothing here does I/O: the etcd side lives in `registry`, the systemd side in `systemd`, and
//! `flotillad` wires them together.

pub mod model;
pub mod sched;
