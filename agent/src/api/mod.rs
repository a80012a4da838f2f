//! The agent's HTTP API: fleet's v1 resources (units, unit states, machines) plus journal and status
//! of a unit from the machine that runs it.
//!
//! Served by every `flotillad` on a unix socket (`api_socket`) and optionally on TCP with mutual TLS
//! (`api_listen`); `flotctl` and other agents are its clients. [`types`] holds the JSON shapes,
//! [`tls`] the certificates both sides load, and [`client`] the HTTP client.

pub mod client;
pub mod tls;
pub mod types;
pub mod view;
