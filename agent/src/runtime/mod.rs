//! The container runtime: what turns an OCI runtime spec into running processes on this host.

pub mod cgroups;
