//! The first-boot file (Ignition-style, one TOML file) parsed and checked, without I/O.
//!
//! ```toml
//! hostname = "core-01"
//! ssh_authorized_keys = ["ssh-ed25519 AAAA… user@laptop"]
//! [metadata]                       # the machine's metadata (flotilla.toml's [metadata])
//! role = "etcd"
//! [etcd]                           # role = "member": run etcd, one of an initial cluster
//! role = "member"
//! name = "core-01"
//! peer_urls = ["http://10.240.8.101:2380"]
//! client_urls = ["http://10.240.8.101:2379"]
//! initial_cluster = ["core-01=http://10.240.8.101:2380", "core-02=http://10.240.8.102:2380"]
//! # initial_cluster_token = "flotilla"
//! # role = "client": endpoints = ["http://10.240.8.101:2379"]
//! [flotilla]                       # merged into /etc/flotilla/flotilla.toml
//! public_ip = "10.240.8.101"
//! [[interfaces]]                   # systemd-networkd; the image's default is DHCP on every NIC
//! name = "eth1"
//! addresses = ["10.240.8.101/24"]
//! # gateway = "10.240.8.1", dhcp = false
//! [[units]]                        # written to /etc/systemd/system, enabled and started
//! name = "hello.service"
//! contents = "[Service]\nExecStart=/bin/echo hello\n"
//! # start = true
//! ```
//!
//! Every key is optional; an unknown key, a value of the wrong type or shape, and keys that do
//! not fit together are errors naming the key: `etcd.role: unknown role "memer" (member|client)`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

use super::checks;
use super::reader::{KeyError, Table};
use crate::config::Config;

/// What the default `initial_cluster_token` is.
pub const DEFAULT_CLUSTER_TOKEN: &str = "flotilla";

/// Why a first-boot file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FirstBootError {
    /// Not TOML.
    #[error("{origin}: {reason}")]
    Syntax {
        /// Where the file came from.
        origin: String,
        /// What toml said, with line and column.
        reason: toml::de::Error,
    },
    /// A key is unknown, of the wrong type or shape, or does not fit with another.
    #[error("{origin}: {reason}")]
    Key {
        /// Where the file came from.
        origin: String,
        /// The key and the problem.
        reason: KeyError,
    },
}

/// A checked first-boot file.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstBoot {
    /// The machine's host name.
    pub hostname: Option<String>,
    /// Lines of root's `authorized_keys`; any enables sshd.
    pub ssh_authorized_keys: Vec<String>,
    /// The machine's metadata.
    pub metadata: BTreeMap<String, String>,
    /// This machine's part in etcd.
    pub etcd: Option<Etcd>,
    /// Keys of `flotilla.toml`, as given (already checked against [`Config`]).
    pub flotilla: toml::Table,
    /// Network interfaces configured statically or by DHCP.
    pub interfaces: Vec<Interface>,
    /// Extra units.
    pub units: Vec<ExtraUnit>,
}

/// This machine's part in etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Etcd {
    /// Runs an etcd member of a new cluster.
    Member(Member),
    /// Uses the etcd at these client URLs.
    Client {
        /// etcd's client URLs.
        endpoints: Vec<String>,
    },
}

/// An etcd member of an initial cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name in `initial_cluster`.
    pub name: String,
    /// The URLs other members reach it at.
    pub peer_urls: Vec<String>,
    /// The URLs clients reach it at.
    pub client_urls: Vec<String>,
    /// `NAME=PEER_URL` of every member.
    pub initial_cluster: Vec<String>,
    /// The cluster's token.
    pub initial_cluster_token: String,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The interface name or a glob (networkd's `Name=`).
    pub name: String,
    /// Static addresses with prefix length.
    pub addresses: Vec<String>,
    /// The default gateway.
    pub gateway: Option<IpAddr>,
    /// DHCP (v4 and v6).
    pub dhcp: bool,
}

/// A unit written to `/etc/systemd/system`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraUnit {
    /// Its name (`hello.service`).
    pub name: String,
    /// Its text.
    pub contents: String,
    /// Enabled and started at first boot (else only written).
    pub start: bool,
}

/// Parses and checks the text of a first-boot file; `origin` (the file's name or path) starts
/// every error message.
pub fn parse(origin: &str, text: &str) -> Result<FirstBoot, FirstBootError> {
    let table: toml::Table = toml::from_str(text).map_err(|reason| FirstBootError::Syntax {
        origin: origin.to_owned(),
        reason,
    })?;
    read(&table).map_err(|reason| FirstBootError::Key {
        origin: origin.to_owned(),
        reason,
    })
}

fn check<T: ?Sized>(
    table: &Table<'_>,
    key: &str,
    value: &T,
    rule: impl Fn(&T) -> Result<(), String>,
) -> Result<(), KeyError> {
    rule(value).map_err(|problem| table.error(key, problem))
}

fn check_each(
    table: &Table<'_>,
    key: &str,
    values: &[String],
    rule: impl Fn(&str) -> Result<(), String>,
) -> Result<(), KeyError> {
    for (i, value) in values.iter().enumerate() {
        check(table, &format!("{key}[{i}]"), value.as_str(), &rule)?;
    }
    Ok(())
}

fn read(file: &toml::Table) -> Result<FirstBoot, KeyError> {
    let mut top = Table::new("", file);
    let hostname = top.string("hostname")?;
    if let Some(name) = &hostname {
        check(&top, "hostname", name.as_str(), checks::hostname)?;
    }
    let ssh_authorized_keys = top.strings("ssh_authorized_keys")?;
    check_each(
        &top,
        "ssh_authorized_keys",
        &ssh_authorized_keys,
        checks::ssh_key,
    )?;
    let metadata = read_metadata(&mut top)?;
    let etcd = top.table("etcd")?.map(read_etcd).transpose()?;
    let flotilla = match top.table("flotilla")? {
        Some(table) => read_flotilla(table, etcd.as_ref(), &metadata)?,
        None => toml::Table::new(),
    };
    let interfaces = top
        .tables("interfaces")?
        .into_iter()
        .map(read_interface)
        .collect::<Result<_, _>>()?;
    let units = read_units(top.tables("units")?)?;
    top.finish()?;
    Ok(FirstBoot {
        hostname,
        ssh_authorized_keys,
        metadata,
        etcd,
        flotilla,
        interfaces,
        units,
    })
}

fn read_metadata(top: &mut Table<'_>) -> Result<BTreeMap<String, String>, KeyError> {
    let metadata = top.string_map("metadata")?;
    for (key, value) in &metadata {
        let key_path = format!("metadata.{key}");
        checks::metadata_word(key)
            .and_then(|()| checks::metadata_word(value))
            .map_err(|problem| KeyError {
                key: key_path,
                problem,
            })?;
    }
    Ok(metadata)
}

fn read_etcd(mut table: Table<'_>) -> Result<Etcd, KeyError> {
    let role = table
        .string("role")?
        .ok_or_else(|| table.error("role", "missing (member|client)"))?;
    const MEMBER_KEYS: &[&str] = &[
        "name",
        "peer_urls",
        "client_urls",
        "initial_cluster",
        "initial_cluster_token",
    ];
    let (own, other): (&[&str], &[&str]) = match role.as_str() {
        "member" => (MEMBER_KEYS, &["endpoints"]),
        "client" => (&["endpoints"], MEMBER_KEYS),
        _ => return Err(table.error("role", format!("unknown role {role:?} (member|client)"))),
    };
    if let Some(key) = other.iter().find(|key| table.has(key)) {
        return Err(table.error(key, format!("not a key of role {role:?}")));
    }
    let required = |table: &mut Table<'_>, key: &str| -> Result<Vec<String>, KeyError> {
        let values = table.strings(key)?;
        if values.is_empty() {
            return Err(table.error(key, format!("missing (required by role {role:?})")));
        }
        Ok(values)
    };
    let etcd = if own == MEMBER_KEYS {
        let name = table
            .string("name")?
            .ok_or_else(|| table.error("name", "missing (required by role \"member\")"))?;
        check(&table, "name", name.as_str(), checks::member_name)?;
        let peer_urls = required(&mut table, "peer_urls")?;
        check_each(&table, "peer_urls", &peer_urls, checks::url)?;
        let client_urls = required(&mut table, "client_urls")?;
        check_each(&table, "client_urls", &client_urls, checks::url)?;
        let initial_cluster = required(&mut table, "initial_cluster")?;
        check_initial_cluster(&table, &initial_cluster, &name, &peer_urls)?;
        let initial_cluster_token = table
            .string("initial_cluster_token")?
            .unwrap_or_else(|| DEFAULT_CLUSTER_TOKEN.to_owned());
        Etcd::Member(Member {
            name,
            peer_urls,
            client_urls,
            initial_cluster,
            initial_cluster_token,
        })
    } else {
        let endpoints = required(&mut table, "endpoints")?;
        check_each(&table, "endpoints", &endpoints, checks::url)?;
        Etcd::Client { endpoints }
    };
    table.finish()?;
    Ok(etcd)
}

fn check_initial_cluster(
    table: &Table<'_>,
    entries: &[String],
    name: &str,
    peer_urls: &[String],
) -> Result<(), KeyError> {
    let mut own = false;
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("initial_cluster[{i}]");
        let (member, url) = entry
            .split_once('=')
            .ok_or_else(|| table.error(&key, format!("expected NAME=PEER_URL, got {entry:?}")))?;
        check(table, &key, member, checks::member_name)?;
        check(table, &key, url, checks::url)?;
        own |= member == name && peer_urls.iter().any(|peer| peer == url);
    }
    if own {
        Ok(())
    } else {
        Err(table.error(
            "initial_cluster",
            format!("has no entry {name}=URL with one of this member's peer_urls"),
        ))
    }
}

fn read_flotilla(
    mut table: Table<'_>,
    etcd: Option<&Etcd>,
    metadata: &BTreeMap<String, String>,
) -> Result<toml::Table, KeyError> {
    if table.has("metadata") && !metadata.is_empty() {
        return Err(table.error(
            "metadata",
            "also given as [metadata]: give the machine's metadata in one place",
        ));
    }
    if etcd.is_some() && table.has("etcd_endpoints") {
        return Err(table.error(
            "etcd_endpoints",
            "set by [etcd] (its client_urls or endpoints): give them in one place",
        ));
    }
    let keys = table.raw().clone();
    Config::deserialize(toml::Value::Table(keys.clone())).map_err(|e| KeyError {
        key: "flotilla".to_owned(),
        problem: e.message().to_owned(),
    })?;
    Ok(keys)
}

fn read_interface(mut table: Table<'_>) -> Result<Interface, KeyError> {
    let name = table
        .string("name")?
        .ok_or_else(|| table.error("name", "missing"))?;
    check(&table, "name", name.as_str(), checks::interface)?;
    let addresses = table.strings("addresses")?;
    check_each(&table, "addresses", &addresses, checks::address)?;
    let gateway = table
        .string("gateway")?
        .map(|text| {
            text.parse::<IpAddr>()
                .map_err(|_| table.error("gateway", format!("invalid address {text:?}")))
        })
        .transpose()?;
    let dhcp = table.bool("dhcp")?.unwrap_or(false);
    if addresses.is_empty() && !dhcp {
        return Err(table.error("addresses", "missing (give addresses, or dhcp = true)"));
    }
    table.finish()?;
    Ok(Interface {
        name,
        addresses,
        gateway,
        dhcp,
    })
}

fn read_units(tables: Vec<Table<'_>>) -> Result<Vec<ExtraUnit>, KeyError> {
    let mut units: Vec<ExtraUnit> = Vec::new();
    for mut table in tables {
        let name = table
            .string("name")?
            .ok_or_else(|| table.error("name", "missing"))?;
        unitgen::name::UnitName::parse(&name).map_err(|e| table.error("name", e.to_string()))?;
        if units.iter().any(|unit| unit.name == name) {
            return Err(table.error("name", format!("{name:?} is given twice")));
        }
        let contents = table
            .string("contents")?
            .ok_or_else(|| table.error("contents", "missing"))?;
        let (_, diagnostics) = unitgen::syntax::UnitFile::parse(name.as_str(), &contents);
        if let Some(first) = diagnostics.sorted().first() {
            return Err(table.error("contents", first.to_string()));
        }
        let start = table.bool("start")?.unwrap_or(true);
        table.finish()?;
        units.push(ExtraUnit {
            name,
            contents,
            start,
        });
    }
    Ok(units)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
