//! The engine's bridge networks, in the layout volumes use: `<data-root>/networks/<name>/`
//! holds `network.json` (its record, replaced atomically) and its addresses (`ipam.json`, see
//! [`super::ipam`]); `networks/.lock` is held around every create and remove.
//!
//! The default network `bridge` (interface `flotilla0`) takes its subnet from the agent's
//! config, by default [`DEFAULT_SUBNET`] 10.222.0.0/16: it collides neither with docker's
//! default bridge 172.17.0.0/16 and its pools 172.18-31.0.0/16, nor with podman's
//! 10.88.0.0/16 and 10.89.0.0/16, nor with the test harness's node subnets 10.213.X.0/24.
//! User-defined networks get the first free /24 of [`USER_POOL`] 10.223.0.0/16 (clear of all
//! of those too) unless `--subnet` names one; an explicit subnet must not overlap another
//! network's. A network's interface is `flt-` and the first 10 hex digits of its ID (14
//! characters, within Linux's 15).
//!
//! Names follow docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; `bridge`, `host`, `none` and
//! `default` are docker's pre-defined names and cannot be created. A network is found by
//! name, full ID or unique ID prefix, as docker does. Removing a network in use is refused,
//! naming the containers that use it.

use std::collections::BTreeMap;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use image::store::lock::FileLock;
use serde::{Deserialize, Serialize};

use super::ipam::{Ipam, Subnet};
use crate::engine::options::is_object_name;
use crate::records::{Entries, RecordError};

/// The directory of networks under the data root.
const NETWORKS_DIR: &str = "networks";
/// A network's record, inside its directory.
const RECORD_FILE: &str = "network.json";
/// The lock around creating and removing networks (not a valid network name).
const LOCK_FILE: &str = ".lock";
/// The only driver.
pub const BRIDGE_DRIVER: &str = "bridge";
/// The default network's name.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge interface.
pub const DEFAULT_INTERFACE: &str = "flotilla0";
/// The default network's subnet unless the agent's config says otherwise.
pub const DEFAULT_SUBNET: Subnet = Subnet::new(Ipv4Addr::new(10, 222, 0, 0), 16).unwrap();
/// Where user-defined networks get their subnets.
pub const USER_POOL: Subnet = Subnet::new(Ipv4Addr::new(10, 223, 0, 0), 16).unwrap();
/// The size of a user-defined network's subnet.
pub const USER_PREFIX: u8 = 24;
/// Names docker reserves: the networks every engine has, and `default` (the default bridge).
const PREDEFINED: [&str; 4] = ["bridge", "host", "none", "default"];
/// How much of the ID the interface name carries.
const INTERFACE_ID_DIGITS: usize = 10;

/// Why a network operation failed; each names the network or the path.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid network name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed")]
    InvalidName(String),
    #[error("{0} is a pre-defined network and cannot be created or removed")]
    Predefined(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network {prefix} is ambiguous ({count} matches found based on ID prefix)")]
    Ambiguous { prefix: String, count: usize },
    #[error("network {name} has active endpoints: {}", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("cannot create network {name}: --gateway needs --subnet")]
    GatewayWithoutSubnet { name: String },
    #[error("cannot create network {name}: gateway {gateway} is not a host address of {subnet}")]
    GatewayOutside {
        name: String,
        gateway: Ipv4Addr,
        subnet: Subnet,
    },
    #[error("network {name}: subnet {subnet} overlaps network {other}'s {other_subnet}")]
    Overlap {
        name: String,
        subnet: Subnet,
        other: String,
        other_subnet: Subnet,
    },
    #[error("cannot create network {name}: no free /{USER_PREFIX} left in {USER_POOL}")]
    PoolExhausted { name: String },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("cannot read random bytes from /dev/urandom: {0}")]
    Random(io::Error),
}

/// A `Result` whose error is [`NetworkError`].
pub type Result<T> = std::result::Result<T, NetworkError>;

/// One network: what `network.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// Always [`BRIDGE_DRIVER`].
    pub driver: String,
    pub subnet: Subnet,
    /// The bridge's own address: the containers' default route and, on user networks, their
    /// DNS resolver.
    pub gateway: Ipv4Addr,
    /// The bridge interface on the host.
    pub interface: String,
    /// RFC 3339, to the second, UTC.
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `--internal`: no route out of the network (no masquerading, no default route).
    #[serde(default)]
    pub internal: bool,
}

impl Network {
    /// Whether this is the default network.
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkRequest {
    /// `--subnet`; else the first free /24 of [`USER_POOL`].
    pub subnet: Option<Subnet>,
    /// `--gateway`; else the subnet's first host.
    pub gateway: Option<Ipv4Addr>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--internal`.
    pub internal: bool,
}

/// The bridge interface of the network `id`: `flt-` and its first 10 hex digits.
pub fn interface_name(id: &str) -> String {
    format!("flt-{}", id.get(..INTERFACE_ID_DIGITS).unwrap_or(id))
}

/// The first subnet of length `prefix` in `pool` that overlaps none of `taken`.
pub fn pick_subnet(pool: Subnet, prefix: u8, taken: &[Subnet]) -> Option<Subnet> {
    pool.split(prefix)
        .find(|candidate| !taken.iter().any(|t| t.overlaps(*candidate)))
}

/// The networks under one data root.
#[derive(Debug, Clone)]
pub struct NetworkStore {
    entries: Entries,
}

impl NetworkStore {
    /// The networks of `data_root` (`<data-root>/networks`, made if missing).
    pub fn open(data_root: &Path) -> Result<NetworkStore> {
        let root = data_root.join(NETWORKS_DIR);
        Ok(NetworkStore {
            entries: Entries::open(root, RECORD_FILE, "network record")?,
        })
    }

    /// The default network `bridge` with `subnet` (from the agent's config; its gateway is
    /// the first host), made on first use. Its ID stays when the config's subnet changes;
    /// addresses given out in the old subnet are then ignored until their containers go.
    pub fn ensure_default(&self, subnet: Subnet) -> Result<Network> {
        let _lock = self.lock()?;
        let existing = match self.read(DEFAULT_NETWORK) {
            Err(NetworkError::NotFound(_)) => None,
            found => Some(found?),
        };
        if let Some(network) = &existing {
            if network.subnet == subnet {
                return Ok(network.clone());
            }
        }
        self.check_overlap(DEFAULT_NETWORK, subnet)?;
        let network = match existing {
            Some(old) => Network {
                subnet,
                gateway: subnet.first_host(),
                ..old
            },
            None => Network {
                interface: DEFAULT_INTERFACE.to_owned(),
                ..new_network(
                    DEFAULT_NETWORK,
                    subnet,
                    subnet.first_host(),
                    BTreeMap::new(),
                    false,
                )?
            },
        };
        self.write(&network)?;
        Ok(network)
    }

    /// Creates the user-defined network `name`.
    pub fn create(&self, name: &str, request: NetworkRequest) -> Result<Network> {
        if !is_object_name(name) {
            return Err(NetworkError::InvalidName(name.to_owned()));
        }
        if PREDEFINED.contains(&name) {
            return Err(NetworkError::Predefined(name.to_owned()));
        }
        let _lock = self.lock()?;
        match self.read(name) {
            Err(NetworkError::NotFound(_)) => {}
            Ok(_) => return Err(NetworkError::Exists(name.to_owned())),
            Err(other) => return Err(other),
        }
        let subnet = match (request.subnet, request.gateway) {
            (Some(subnet), _) => {
                self.check_overlap(name, subnet)?;
                subnet
            }
            (None, Some(_)) => {
                return Err(NetworkError::GatewayWithoutSubnet {
                    name: name.to_owned(),
                })
            }
            (None, None) => {
                let taken: Vec<Subnet> = self.list()?.iter().map(|n| n.subnet).collect();
                pick_subnet(USER_POOL, USER_PREFIX, &taken).ok_or_else(|| {
                    NetworkError::PoolExhausted {
                        name: name.to_owned(),
                    }
                })?
            }
        };
        let gateway = request.gateway.unwrap_or(subnet.first_host());
        if !subnet.is_host(gateway) {
            return Err(NetworkError::GatewayOutside {
                name: name.to_owned(),
                gateway,
                subnet,
            });
        }
        let network = new_network(name, subnet, gateway, request.labels, request.internal)?;
        self.write(&network)?;
        Ok(network)
    }

    /// The network named `name_or_id`, or whose ID is or starts with it.
    pub fn get(&self, name_or_id: &str) -> Result<Network> {
        match self.read(name_or_id) {
            Err(NetworkError::NotFound(_)) => {}
            found => return found,
        }
        let networks = self.list()?;
        if let Some(network) = networks.iter().find(|n| n.id == name_or_id) {
            return Ok(network.clone());
        }
        let mut matches: Vec<Network> = networks
            .into_iter()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id))
            .collect();
        match matches.len() {
            0 => Err(NetworkError::NotFound(name_or_id.to_owned())),
            1 => Ok(matches.remove(0)),
            count => Err(NetworkError::Ambiguous {
                prefix: name_or_id.to_owned(),
                count,
            }),
        }
    }

    /// Removes the network `name_or_id` unless `users(name)` (the containers attached to it)
    /// names any; returns it, so that its interface can be taken down. The default network
    /// is never removed.
    pub fn remove(&self, name_or_id: &str, users: &dyn Fn(&str) -> Vec<String>) -> Result<Network> {
        let _lock = self.lock()?;
        let network = self.get(name_or_id)?;
        if network.is_default() {
            return Err(NetworkError::Predefined(network.name));
        }
        let users = users(&network.name);
        if !users.is_empty() {
            return Err(NetworkError::InUse {
                name: network.name,
                users,
            });
        }
        self.entries.remove(&network.name)?;
        Ok(network)
    }

    /// The addresses of `network`.
    pub fn ipam(&self, network: &Network) -> Ipam {
        Ipam::new(
            &self.entries.dir(&network.name),
            network.subnet,
            network.gateway,
        )
    }

    fn lock(&self) -> Result<FileLock> {
        let path = self.entries.root().join(LOCK_FILE);
        FileLock::exclusive(&path).map_err(|source| NetworkError::Lock { path, source })
    }

    /// Refuses `subnet` for the network `name` if another network's overlaps it.
    fn check_overlap(&self, name: &str, subnet: Subnet) -> Result<()> {
        let networks = self.list()?;
        match networks
            .iter()
            .find(|n| n.name != name && n.subnet.overlaps(subnet))
        {
            Some(other) => Err(NetworkError::Overlap {
                name: name.to_owned(),
                subnet,
                other: other.name.clone(),
                other_subnet: other.subnet,
            }),
            None => Ok(()),
        }
    }

    /// All networks, by name. Directories without a record are not networks (a removal
    /// renames the directory away first).
    pub fn list(&self) -> Result<Vec<Network>> {
        let mut networks = Vec::new();
        for name in self.entries.names()? {
            match self.read(&name) {
                Err(NetworkError::NotFound(_)) => {}
                found => networks.push(found?),
            }
        }
        Ok(networks)
    }

    /// The record of the network named `name`.
    fn read(&self, name: &str) -> Result<Network> {
        if !is_object_name(name) {
            return Err(NetworkError::NotFound(name.to_owned()));
        }
        self.entries
            .read(name)?
            .ok_or_else(|| NetworkError::NotFound(name.to_owned()))
    }

    fn write(&self, network: &Network) -> Result<()> {
        Ok(self.entries.write(&network.name, network)?)
    }
}

/// A fresh network's record: a new ID and the interface named after it.
fn new_network(
    name: &str,
    subnet: Subnet,
    gateway: Ipv4Addr,
    labels: BTreeMap<String, String>,
    internal: bool,
) -> Result<Network> {
    let id = crate::random::hex_id().map_err(NetworkError::Random)?;
    Ok(Network {
        name: name.to_owned(),
        interface: interface_name(&id),
        id,
        driver: BRIDGE_DRIVER.to_owned(),
        subnet,
        gateway,
        created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        labels,
        internal,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn store() -> (tempfile::TempDir, NetworkStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = NetworkStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn subnet(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    fn nobody(_: &str) -> Vec<String> {
        Vec::new()
    }

    #[test]
    fn defaults_avoid_docker_podman_and_the_test_nodes() {
        let others = [
            "172.17.0.0/16",
            "172.18.0.0/15",
            "172.20.0.0/14",
            "172.24.0.0/13",
            "10.88.0.0/16",
            "10.89.0.0/16",
            "10.213.0.0/16",
        ];
        for other in others {
            assert!(!DEFAULT_SUBNET.overlaps(subnet(other)), "{other}");
            assert!(!USER_POOL.overlaps(subnet(other)), "{other}");
        }
        assert!(!DEFAULT_SUBNET.overlaps(USER_POOL));
        assert_eq!(DEFAULT_SUBNET.to_string(), "10.222.0.0/16");
    }

    #[test]
    fn the_default_network_is_made_once_and_follows_the_config() {
        let (data_root, store) = store();
        let made = store.ensure_default(DEFAULT_SUBNET).unwrap();
        assert_eq!(made.name, "bridge");
        assert_eq!(made.interface, "flotilla0");
        assert_eq!(made.gateway, "10.222.0.1".parse::<Ipv4Addr>().unwrap());
        assert_eq!(made.driver, "bridge");
        assert!(data_root
            .path()
            .join("networks/bridge/network.json")
            .is_file());
        assert_eq!(store.ensure_default(DEFAULT_SUBNET).unwrap(), made);

        let moved = store.ensure_default(subnet("10.50.0.0/24")).unwrap();
        assert_eq!(moved.id, made.id);
        assert_eq!(moved.gateway, "10.50.0.1".parse::<Ipv4Addr>().unwrap());
        assert_eq!(store.get("bridge").unwrap(), moved);
        assert_eq!(
            store.remove("bridge", &nobody).unwrap_err().to_string(),
            "bridge is a pre-defined network and cannot be created or removed"
        );
    }

    #[test]
    fn user_networks_get_free_24s_and_interfaces_named_after_their_ids() {
        let (data_root, store) = store();
        store.ensure_default(DEFAULT_SUBNET).unwrap();
        let first = store.create("web", NetworkRequest::default()).unwrap();
        assert_eq!(first.subnet, subnet("10.223.0.0/24"));
        assert_eq!(first.gateway, "10.223.0.1".parse::<Ipv4Addr>().unwrap());
        assert_eq!(first.id.len(), 64);
        assert!(first.id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(first.interface, format!("flt-{}", &first.id[..10]));
        assert!(first.interface.len() <= 15);
        assert!(humantime::parse_rfc3339(&first.created).is_ok());

        store
            .create(
                "pinned",
                NetworkRequest {
                    subnet: Some(subnet("10.223.1.0/24")),
                    ..NetworkRequest::default()
                },
            )
            .unwrap();
        let labels = BTreeMap::from([("team".to_owned(), "db".to_owned())]);
        let third = store
            .create(
                "db",
                NetworkRequest {
                    labels: labels.clone(),
                    internal: true,
                    ..NetworkRequest::default()
                },
            )
            .unwrap();
        assert_eq!(third.subnet, subnet("10.223.2.0/24"));

        let record: serde_json::Value = serde_json::from_slice(
            &fs::read(data_root.path().join("networks/db/network.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(record["Subnet"], "10.223.2.0/24");
        assert_eq!(record["Gateway"], "10.223.2.1");
        assert_eq!(record["Interface"], third.interface);
        assert_eq!(record["Labels"]["team"], "db");
        assert_eq!(record["Internal"], true);

        let names: Vec<String> = store.list().unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["bridge", "db", "pinned", "web"]);
    }

    #[test]
    fn create_refuses_bad_names_duplicates_overlaps_and_stray_gateways() {
        let (_root, store) = store();
        store.ensure_default(DEFAULT_SUBNET).unwrap();
        store.create("web", NetworkRequest::default()).unwrap();
        let refused = |name: &str, request: NetworkRequest| {
            store.create(name, request).unwrap_err().to_string()
        };
        let with = |subnet_text: Option<&str>, gateway: Option<&str>| NetworkRequest {
            subnet: subnet_text.map(subnet),
            gateway: gateway.map(|g| g.parse().unwrap()),
            ..NetworkRequest::default()
        };
        let table = [
            (
                "../x",
                with(None, None),
                r#"invalid network name "../x": only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed"#,
            ),
            (
                "host",
                with(None, None),
                "host is a pre-defined network and cannot be created or removed",
            ),
            (
                "bridge",
                with(None, None),
                "bridge is a pre-defined network and cannot be created or removed",
            ),
            (
                "web",
                with(None, None),
                "network with name web already exists",
            ),
            (
                "a",
                with(Some("10.223.0.128/25"), None),
                "network a: subnet 10.223.0.128/25 overlaps network web's 10.223.0.0/24",
            ),
            (
                "b",
                with(Some("10.0.0.0/8"), None),
                "network b: subnet 10.0.0.0/8 overlaps network bridge's 10.222.0.0/16",
            ),
            (
                "c",
                with(None, Some("10.1.0.1")),
                "cannot create network c: --gateway needs --subnet",
            ),
            (
                "d",
                with(Some("10.1.0.0/24"), Some("10.1.1.1")),
                "cannot create network d: gateway 10.1.1.1 is not a host address of 10.1.0.0/24",
            ),
            (
                "e",
                with(Some("10.1.0.0/24"), Some("10.1.0.255")),
                "cannot create network e: gateway 10.1.0.255 is not a host address of 10.1.0.0/24",
            ),
        ];
        for (name, request, message) in table {
            assert_eq!(refused(name, request), message);
        }
        let custom = store
            .create("f", with(Some("10.1.0.0/24"), Some("10.1.0.254")))
            .unwrap();
        assert_eq!(custom.gateway, "10.1.0.254".parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            store
                .ensure_default(subnet("10.1.0.0/16"))
                .unwrap_err()
                .to_string(),
            "network bridge: subnet 10.1.0.0/16 overlaps network f's 10.1.0.0/24"
        );
    }

    #[test]
    fn the_pool_runs_out_precisely() {
        let taken: Vec<Subnet> = USER_POOL.split(USER_PREFIX).collect();
        assert_eq!(pick_subnet(USER_POOL, USER_PREFIX, &taken), None);
        assert_eq!(
            pick_subnet(USER_POOL, USER_PREFIX, &taken[..255]),
            Some(subnet("10.223.255.0/24"))
        );
        assert_eq!(
            pick_subnet(USER_POOL, USER_PREFIX, &[subnet("10.223.0.0/20")]),
            Some(subnet("10.223.16.0/24"))
        );
    }

    #[test]
    fn networks_are_found_by_name_id_or_unique_prefix() {
        let (_root, store) = store();
        let web = store.create("web", NetworkRequest::default()).unwrap();
        let db = store.create("db", NetworkRequest::default()).unwrap();
        assert_eq!(store.get("web").unwrap(), web);
        assert_eq!(store.get(&web.id).unwrap(), web);
        assert_eq!(store.get(&db.id[..12]).unwrap(), db);
        assert_eq!(
            store.get("nope").unwrap_err().to_string(),
            "network nope not found"
        );
        assert_eq!(store.get("").unwrap_err().to_string(), "network  not found");
        // Two IDs sharing a prefix.
        let twin = |network: &Network, digit: char| Network {
            id: format!("abc{digit}{}", &network.id[4..]),
            ..network.clone()
        };
        store.write(&twin(&web, '1')).unwrap();
        store.write(&twin(&db, '2')).unwrap();
        assert_eq!(
            store.get("abc").unwrap_err().to_string(),
            "network abc is ambiguous (2 matches found based on ID prefix)"
        );
        assert_eq!(store.get("abc2").unwrap().name, "db");
    }

    #[test]
    fn remove_refuses_a_network_in_use_and_frees_its_subnet() {
        let (data_root, store) = store();
        let web = store.create("web", NetworkRequest::default()).unwrap();
        store.ipam(&web).allocate("c1").unwrap();
        let users = |name: &str| vec![format!("{name}-app"), "cache".to_owned()];
        assert_eq!(
            store.remove("web", &users).unwrap_err().to_string(),
            "network web has active endpoints: web-app, cache"
        );
        assert!(store.get("web").is_ok());
        let removed = store.remove(&web.id[..8], &nobody).unwrap();
        assert_eq!(removed, web);
        assert_eq!(
            fs::read_dir(data_root.path().join("networks"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect::<Vec<_>>(),
            [".lock"]
        );
        let again = store.create("web2", NetworkRequest::default()).unwrap();
        assert_eq!(again.subnet, web.subnet);
        assert!(store.ipam(&again).allocations().unwrap().is_empty());
    }
}
