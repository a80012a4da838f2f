//! flotilla's agent crate: the node agent `flotillad`, the cluster client `flotctl` and the
//! engine CLI `flotilla`.
//!
//! Today it holds the command-line front ends ([`cli`]), the configuration file ([`config`]),
//! the engine's pure core ([`engine`]: run options → OCI runtime spec, restart policy) and its
//! named volumes ([`volumes`]); the rest of the engine, the cluster (etcd, scheduler,
//! reconciler), the systemd D-Bus layer and the HTTP API arrive as modules beside them (see
//! ARCHITECTURE.md for the map and the layering rules).

pub mod api;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod containers;
pub mod daemon;
pub mod engine;
pub mod firstboot;
pub mod logs;
pub mod network;
pub mod node;
pub mod notify;
pub mod random;
pub mod records;
pub mod registry;
pub mod runtime;
pub mod systemd;
pub mod volumes;
