//! The embedded resolver of user-defined networks (podman's aardvark-dns): containers on a
//! user network find each other by name through a resolver at the network's gateway.
//!
//! The engine writes what it serves as one [`table`] (`<data-root>/network/dns.json`) and
//! calls [`launch::reload`]; one resolver process runs per data root ([`resolver::run`], the
//! hidden `flotilla dns-serve`), which [`answer`]s each query from the table or relays it to
//! the upstreams through its [`server`] sockets. It re-reads the table on SIGHUP, stops on
//! SIGTERM, and exits by itself once the table has no network left.
//!
//! Its files, beside the table: `dns.lock`, flocked by the running resolver (whether one
//! runs); `dns.pid`, its process ID, written once it listens; `dns.start.lock`, flocked by
//! whoever starts or signals a resolver, so that only one is ever started.

use std::path::{Path, PathBuf};

pub mod answer;
pub mod launch;
mod lock;
pub mod resolver;
pub mod server;
pub mod table;

/// The resolver's files under a data root.
#[derive(Debug, Clone)]
pub struct Paths {
    /// What it serves.
    pub table: PathBuf,
    /// Held by the running resolver.
    pub lock: PathBuf,
    /// The running resolver's process ID.
    pub pid: PathBuf,
    /// Held while a resolver is started or signalled.
    pub start: PathBuf,
}

impl Paths {
    /// The files under `data_root`.
    pub fn new(data_root: &Path) -> Paths {
        let dir = table::dir(data_root);
        Paths {
            table: table::path(data_root),
            lock: dir.join("dns.lock"),
            pid: dir.join("dns.pid"),
            start: dir.join("dns.start.lock"),
        }
    }
}
