//! The agent's HTTP API: fleet's v1 resources (units, unit states, machines) plus journal and status
//! of a unit from the machine that runs it.
//!
//! Served by every `flotillad` on a unix socket (`api_socket`) and optionally on TCP with mutual TLS
//! (`api_listen`); `flotctl` and other agents are its clients. [`types`] holds the JSON shapes,
//! [`view`] computes what is shown from what etcd holds, [`resources`] and [`remote`] answer the
//! routes [`server`] serves, [`tls`] loads the certificates both sides use, and [`client`] is the
//! HTTP client.

pub mod client;
pub mod remote;
pub mod resources;
pub mod server;
pub mod tls;
pub mod types;
pub mod view;
