//! The host image's first boot (Ignition-style): one TOML file gives a machine its host name,
//! SSH keys, metadata, etcd role, agent configuration, network and extra units, and is applied
//! once, before the network and the agent start. `config` parses and checks it (pure, with
//! errors naming the key), `plan` turns it into files, commands and units (pure), `apply` finds
//! the file and carries the plan out. The binary is `flotilla-firstboot`.

pub mod apply;
pub mod checks;
pub mod config;
pub mod plan;
pub mod reader;
