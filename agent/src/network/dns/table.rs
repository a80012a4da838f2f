//! What the resolver serves: the user networks with the names of their containers, and the
//! nameservers it forwards other queries to. The engine writes it whole, as one JSON file
//! (`<data-root>/network/dns.json`), and tells the resolver to read it again.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::records::{self, RecordError};

/// What the table file holds, for errors.
const WHAT: &str = "resolver table";

/// Everything the resolver serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// The user networks, each with its resolver.
    pub networks: Vec<Network>,
    /// Where queries for other names go (the host's nameservers, loopback ones included: the
    /// resolver runs on the host).
    pub upstreams: Vec<SocketAddr>,
}

/// One user network as its resolver sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    /// The address the network's resolver listens on (port 53), its bridge's.
    pub gateway: Ipv4Addr,
    pub entries: Vec<Entry>,
}

/// A container on a network: the names it answers to there and its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its name, its short ID (12 hex digits), its aliases on the network.
    pub names: Vec<String>,
    pub addresses: Vec<Ipv4Addr>,
}

impl Table {
    /// The network named `name`.
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|network| network.name == name)
    }
}

/// The directory of the resolver's files under the data root.
pub fn dir(data_root: &Path) -> PathBuf {
    data_root.join("network")
}

/// The table file under the data root.
pub fn path(data_root: &Path) -> PathBuf {
    dir(data_root).join("dns.json")
}

/// The table at `path`; an empty one when there is no file.
pub fn read(path: &Path) -> records::Result<Table> {
    Ok(records::read(path, WHAT)?.unwrap_or_default())
}

/// Replaces the table at `path` atomically (its directory made if missing).
pub fn write(path: &Path, table: &Table) -> records::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| RecordError::Create {
            path: parent.to_owned(),
            source,
        })?;
    }
    records::write(path, WHAT, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_reads_back_as_written_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path());
        assert_eq!(read(&path).unwrap(), Table::default());
        let table = Table {
            networks: vec![Network {
                name: "net1".into(),
                gateway: Ipv4Addr::new(10, 223, 0, 1),
                entries: vec![Entry {
                    names: vec!["web".into(), "0123456789ab".into()],
                    addresses: vec![Ipv4Addr::new(10, 223, 0, 2)],
                }],
            }],
            upstreams: vec!["127.0.0.53:53".parse().unwrap()],
        };
        write(&path, &table).unwrap();
        assert_eq!(read(&path).unwrap(), table);
        assert_eq!(table.network("net1"), Some(&table.networks[0]));
        assert_eq!(table.network("net2"), None);
    }

    #[test]
    fn a_damaged_table_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path(dir.path());
        write(&path, &Table::default()).unwrap();
        std::fs::write(&path, "{").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(
            error.contains("resolver table") && error.contains("dns.json"),
            "{error}"
        );
    }
}
