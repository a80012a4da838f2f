//! The engine's pure core: a container's configuration and what follows from it.
//!
//! [`container`] is a container's record and the rules of its state changes.
//!
//! [`options`] holds docker's `run` flags as [`options::RunOptions`]; [`image_config`] the
//! image's own settings; [`spec`] combines both into a standard OCI runtime `config.json` with
//! docker's defaults; [`user`] resolves `user[:group]` against an image's passwd and group
//! files; [`restart`] is docker's restart policy and back-off. Nothing here does I/O: files,
//! the host's environment and its limits come in as values. [`present`] renders a container
//! as docker's `ps` and `inspect` show it.

pub mod container;
pub mod image_config;
pub mod names;
pub mod options;
pub mod present;
pub mod restart;
pub mod spec;
pub mod user;
