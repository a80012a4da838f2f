//! The engine's IP address management: IPv4 subnets ([`Subnet`]) and, per network, which
//! container holds which address ([`Ipam`]).
//!
//! A network's addresses live in one small file, `<network dir>/ipam.json`
//! (`{"addresses": {"10.222.0.2": "<container id>", …}}`), not one file per address: a
//! network holds at most a few hundred, one read shows them all (what `reclaim` and `inspect`
//! want), and one atomic replacement (`write_atomic`: temporary file, fsync, rename, fsync of
//! the directory) changes them, so a crash leaves the old map or the new one, never half.
//! Every read-modify-write holds an exclusive `flock` on `ipam.lock` beside it, so two
//! `flotilla run` processes never hand out one address twice, and a killed process drops its
//! lock with its descriptors.
//!
//! An address is owned by a container ID: [`Ipam::allocate`] gives the lowest free host
//! address (neither the network address, nor the gateway, nor the broadcast address) and
//! gives an owner its address again if it has one; [`Ipam::release`] frees an owner's address
//! at `rm`. An address whose owner no longer exists (a supervisor killed with -9 and its
//! container removed by hand, or a crash between allocating and recording) is freed by
//! [`Ipam::reclaim`], which asks the caller which owners are alive. Allocate only once the
//! container's record exists, so that a concurrent `reclaim` finds the owner alive.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use image::store::lock::FileLock;
use serde::{Deserialize, Serialize};

use crate::records::{self, RecordError};

/// The addresses of one network, in its directory.
const STATE_FILE: &str = "ipam.json";
/// What [`STATE_FILE`] holds, for errors.
const STATE_WHAT: &str = "address state";
/// The lock around each change of [`STATE_FILE`].
const LOCK_FILE: &str = "ipam.lock";
/// The longest prefix that leaves room for a gateway and one container.
pub const MAX_PREFIX: u8 = 30;

/// Why a subnet was refused or an address could not be given or freed.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("invalid subnet {0:?}: expected an IPv4 network such as 10.1.2.0/24")]
    Subnet(String),
    #[error("invalid subnet {text:?}: a /{prefix} leaves no room for a gateway and a container (at most /{MAX_PREFIX})")]
    SubnetTooSmall { text: String, prefix: u8 },
    #[error("invalid subnet {text:?}: it has host bits set, the network is {network}")]
    HostBits { text: String, network: Subnet },
    #[error("no free address left in subnet {0}")]
    Exhausted(Subnet),
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// A `Result` whose error is [`IpamError`].
pub type Result<T> = std::result::Result<T, IpamError>;

/// An IPv4 network `a.b.c.d/prefix` with no host bits set and room for a gateway and at least
/// one container (prefix at most [`MAX_PREFIX`]). Written as text in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// The subnet `network/prefix`; `None` if host bits are set or the prefix is longer than
    /// [`MAX_PREFIX`].
    pub const fn new(network: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        if prefix > MAX_PREFIX || network.to_bits() & !mask(prefix) != 0 {
            return None;
        }
        Some(Subnet { network, prefix })
    }

    /// The network address.
    pub fn network(self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(self) -> u8 {
        self.prefix
    }

    /// The broadcast address, the last of the subnet.
    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.network.to_bits() | !mask(self.prefix))
    }

    /// The first host address: a network's default gateway.
    pub fn first_host(self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.network.to_bits() + 1)
    }

    /// Whether `ip` is in the subnet.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        ip.to_bits() & mask(self.prefix) == self.network.to_bits()
    }

    /// Whether `ip` is a host address of the subnet (neither its network nor its broadcast
    /// address).
    pub fn is_host(self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.network && ip != self.broadcast()
    }

    /// Whether the two share any address (one then holds the other).
    pub fn overlaps(self, other: Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The subnets of length `prefix` inside this one, lowest first (none if `prefix` is
    /// shorter than this subnet's or longer than [`MAX_PREFIX`]).
    pub fn split(self, prefix: u8) -> impl Iterator<Item = Subnet> {
        let count: u32 = if (self.prefix..=MAX_PREFIX).contains(&prefix) {
            1 << (prefix - self.prefix)
        } else {
            0
        };
        // 2^32 (for a /0, which has only the one block) does not fit: any step does then.
        let step = 1u32.checked_shl(u32::from(32 - prefix)).unwrap_or(0);
        let base = self.network.to_bits();
        (0..count).map(move |index| Subnet {
            network: Ipv4Addr::from_bits(base + index * step),
            prefix,
        })
    }
}

/// The netmask of a prefix length, as bits.
const fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;

    /// `a.b.c.d/prefix`, as `--subnet` and the agent's config give it.
    fn from_str(text: &str) -> Result<Subnet> {
        let invalid = || IpamError::Subnet(text.to_owned());
        let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let address: Ipv4Addr = address.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(invalid)?;
        if prefix > MAX_PREFIX {
            return Err(IpamError::SubnetTooSmall {
                text: text.to_owned(),
                prefix,
            });
        }
        let network = Ipv4Addr::from_bits(address.to_bits() & mask(prefix));
        Subnet::new(address, prefix).ok_or(IpamError::HostBits {
            text: text.to_owned(),
            network: Subnet { network, prefix },
        })
    }
}

impl TryFrom<String> for Subnet {
    type Error = IpamError;

    fn try_from(text: String) -> Result<Subnet> {
        text.parse()
    }
}

impl From<Subnet> for String {
    fn from(subnet: Subnet) -> String {
        subnet.to_string()
    }
}

/// What `ipam.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Address → the container ID that holds it.
    addresses: BTreeMap<Ipv4Addr, String>,
}

/// The lowest host address of `subnet` that is neither `gateway` nor in `taken`.
fn lowest_free(
    subnet: Subnet,
    gateway: Ipv4Addr,
    taken: &BTreeMap<Ipv4Addr, String>,
) -> Option<Ipv4Addr> {
    let first = subnet.network().to_bits() + 1;
    let last = subnet.broadcast().to_bits() - 1;
    (first..=last)
        .map(Ipv4Addr::from_bits)
        .find(|ip| *ip != gateway && !taken.contains_key(ip))
}

/// The addresses of one network.
#[derive(Debug, Clone)]
pub struct Ipam {
    dir: PathBuf,
    subnet: Subnet,
    gateway: Ipv4Addr,
}

impl Ipam {
    /// The addresses of the network kept in `dir` (its directory, made if missing), with its
    /// `subnet` and `gateway` (never given to a container).
    pub fn new(dir: &Path, subnet: Subnet, gateway: Ipv4Addr) -> Ipam {
        Ipam {
            dir: dir.to_owned(),
            subnet,
            gateway,
        }
    }

    /// The address `owner` holds, or else the lowest free one, now held by `owner`.
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr> {
        self.change(|state| {
            let held = state
                .addresses
                .iter()
                .find(|(ip, holder)| {
                    *holder == owner && self.subnet.is_host(**ip) && **ip != self.gateway
                })
                .map(|(ip, _)| *ip);
            if let Some(ip) = held {
                return Ok((ip, false));
            }
            let ip = lowest_free(self.subnet, self.gateway, &state.addresses)
                .ok_or(IpamError::Exhausted(self.subnet))?;
            state.addresses.insert(ip, owner.to_owned());
            Ok((ip, true))
        })
    }

    /// Frees the addresses `owner` holds (at `rm`); returns them.
    pub fn release(&self, owner: &str) -> Result<Vec<Ipv4Addr>> {
        self.remove_where(|holder| holder == owner)
    }

    /// Frees the addresses whose owner is not `live` (its container is gone); returns them.
    pub fn reclaim(&self, live: &dyn Fn(&str) -> bool) -> Result<Vec<Ipv4Addr>> {
        self.remove_where(|holder| !live(holder))
    }

    /// Every held address and its owner.
    pub fn allocations(&self) -> Result<BTreeMap<Ipv4Addr, String>> {
        let _lock = self.lock()?;
        Ok(self.read()?.addresses)
    }

    fn remove_where(&self, doomed: impl Fn(&str) -> bool) -> Result<Vec<Ipv4Addr>> {
        self.change(|state| {
            let freed: Vec<Ipv4Addr> = state
                .addresses
                .iter()
                .filter(|(_, holder)| doomed(holder))
                .map(|(ip, _)| *ip)
                .collect();
            state.addresses.retain(|ip, _| !freed.contains(ip));
            let changed = !freed.is_empty();
            Ok((freed, changed))
        })
    }

    /// Runs `edit` on the state under the lock; writes the state back if `edit` says it
    /// changed it.
    fn change<T>(&self, edit: impl FnOnce(&mut State) -> Result<(T, bool)>) -> Result<T> {
        let _lock = self.lock()?;
        let mut state = self.read()?;
        let (result, changed) = edit(&mut state)?;
        if changed {
            records::write(&self.dir.join(STATE_FILE), STATE_WHAT, &state)?;
        }
        Ok(result)
    }

    fn lock(&self) -> Result<FileLock> {
        records::create_dir(&self.dir)?;
        let path = self.dir.join(LOCK_FILE);
        FileLock::exclusive(&path).map_err(|source| IpamError::Lock { path, source })
    }

    /// The state; a network that never gave out an address has no file yet.
    fn read(&self) -> Result<State> {
        let state = records::read(&self.dir.join(STATE_FILE), STATE_WHAT)?;
        Ok(state.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::process::Command;
    use std::sync::Arc;
    use std::thread;

    use super::*;

    fn subnet(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn subnets_parse_and_compute_like_ip_tools() {
        let net = subnet("10.222.0.0/16");
        assert_eq!(net.to_string(), "10.222.0.0/16");
        assert_eq!(net.first_host(), ip("10.222.0.1"));
        assert_eq!(net.broadcast(), ip("10.222.255.255"));
        assert!(net.contains(ip("10.222.7.9")));
        assert!(!net.contains(ip("10.223.0.1")));
        assert!(net.is_host(ip("10.222.0.1")));
        assert!(!net.is_host(ip("10.222.0.0")));
        assert!(!net.is_host(ip("10.222.255.255")));
        assert!(net.overlaps(subnet("10.222.3.0/24")));
        assert!(subnet("10.0.0.0/8").overlaps(net));
        assert!(!net.overlaps(subnet("10.223.0.0/24")));
        let blocks: Vec<String> = subnet("10.223.0.0/16")
            .split(24)
            .map(|s| s.to_string())
            .collect();
        assert_eq!(blocks.len(), 256);
        assert_eq!(blocks[0], "10.223.0.0/24");
        assert_eq!(blocks[255], "10.223.255.0/24");
        assert_eq!(subnet("0.0.0.0/0").split(1).count(), 2);
        assert_eq!(net.split(8).count(), 0);
        assert_eq!(serde_json::to_string(&net).unwrap(), "\"10.222.0.0/16\"");
        assert_eq!(
            serde_json::from_str::<Subnet>("\"10.222.0.0/16\"").unwrap(),
            net
        );
    }

    #[test]
    fn bad_subnets_are_refused_precisely() {
        let table = [
            (
                "10.1.2.0",
                r#"invalid subnet "10.1.2.0": expected an IPv4 network such as 10.1.2.0/24"#,
            ),
            (
                "10.1.2.0/33",
                r#"invalid subnet "10.1.2.0/33": expected an IPv4 network such as 10.1.2.0/24"#,
            ),
            (
                "fd00::/64",
                r#"invalid subnet "fd00::/64": expected an IPv4 network such as 10.1.2.0/24"#,
            ),
            (
                "10.1.2.0/31",
                r#"invalid subnet "10.1.2.0/31": a /31 leaves no room for a gateway and a container (at most /30)"#,
            ),
            (
                "10.1.2.3/24",
                r#"invalid subnet "10.1.2.3/24": it has host bits set, the network is 10.1.2.0/24"#,
            ),
        ];
        for (text, message) in table {
            assert_eq!(text.parse::<Subnet>().unwrap_err().to_string(), message);
        }
        assert!(serde_json::from_str::<Subnet>("\"10.1.2.3/24\"").is_err());
    }

    fn ipam(dir: &Path, net: &str) -> Ipam {
        let net = subnet(net);
        Ipam::new(dir, net, net.first_host())
    }

    #[test]
    fn allocation_takes_the_lowest_free_host_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let network = dir.path().join("net");
        let pool = ipam(&network, "10.9.0.0/24");
        assert_eq!(pool.allocate("a").unwrap(), ip("10.9.0.2"));
        assert_eq!(pool.allocate("b").unwrap(), ip("10.9.0.3"));
        assert_eq!(pool.allocate("a").unwrap(), ip("10.9.0.2"));
        assert_eq!(pool.release("a").unwrap(), [ip("10.9.0.2")]);
        assert!(pool.release("a").unwrap().is_empty());
        // Another process, the same directory: the state is on disk.
        let again = ipam(&network, "10.9.0.0/24");
        assert_eq!(again.allocate("c").unwrap(), ip("10.9.0.2"));
        let on_disk: serde_json::Value =
            serde_json::from_slice(&fs::read(network.join("ipam.json")).unwrap()).unwrap();
        assert_eq!(
            on_disk,
            serde_json::json!({"addresses": {"10.9.0.2": "c", "10.9.0.3": "b"}})
        );
    }

    #[test]
    fn a_gateway_elsewhere_is_skipped_and_exhaustion_names_the_subnet() {
        let dir = tempfile::tempdir().unwrap();
        let net = subnet("10.9.0.0/29");
        let pool = Ipam::new(dir.path(), net, ip("10.9.0.3"));
        let given: Vec<Ipv4Addr> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|owner| pool.allocate(owner).unwrap())
            .collect();
        let expected: Vec<Ipv4Addr> = [1, 2, 4, 5, 6]
            .iter()
            .map(|last| Ipv4Addr::new(10, 9, 0, *last))
            .collect();
        assert_eq!(given, expected);
        assert_eq!(
            pool.allocate("f").unwrap_err().to_string(),
            "no free address left in subnet 10.9.0.0/29"
        );
        let tiny = ipam(&dir.path().join("tiny"), "10.9.1.0/30");
        assert_eq!(tiny.allocate("a").unwrap(), ip("10.9.1.2"));
        assert!(matches!(tiny.allocate("b"), Err(IpamError::Exhausted(_))));
    }

    #[test]
    fn reclaim_frees_the_addresses_of_vanished_containers() {
        let dir = tempfile::tempdir().unwrap();
        let pool = ipam(dir.path(), "10.9.0.0/24");
        for owner in ["gone1", "alive", "gone2"] {
            pool.allocate(owner).unwrap();
        }
        let freed = pool.reclaim(&|owner: &str| owner == "alive").unwrap();
        assert_eq!(freed, [ip("10.9.0.2"), ip("10.9.0.4")]);
        assert_eq!(
            pool.allocations().unwrap(),
            BTreeMap::from([(ip("10.9.0.3"), "alive".to_owned())])
        );
        assert_eq!(pool.allocate("new").unwrap(), ip("10.9.0.2"));
    }

    #[test]
    fn a_damaged_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ipam.json"), "{\"addresses\": {\"10.9").unwrap();
        let error = ipam(dir.path(), "10.9.0.0/24")
            .allocate("a")
            .unwrap_err()
            .to_string();
        let prefix = format!("invalid address state {}/ipam.json: ", dir.path().display());
        assert!(error.starts_with(&prefix), "{error}");
    }

    #[test]
    fn threads_allocating_at_once_get_distinct_addresses() {
        let temporary = tempfile::tempdir().unwrap();
        let dir = Arc::new(temporary.path().to_owned());
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let dir = Arc::clone(&dir);
                thread::spawn(move || {
                    let pool = ipam(&dir, "10.9.0.0/24");
                    (0..10)
                        .map(|n| pool.allocate(&format!("w{worker}-{n}")).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut given: Vec<Ipv4Addr> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        given.sort();
        given.dedup();
        assert_eq!(given.len(), 80);
        assert_eq!(ipam(&dir, "10.9.0.0/24").allocations().unwrap().len(), 80);
    }

    /// Set in the environment of the child processes of the test below: the directory to
    /// allocate in and the owner prefix.
    const CHILD_DIR: &str = "FLOTILLA_IPAM_TEST_DIR";
    const CHILD_OWNER: &str = "FLOTILLA_IPAM_TEST_OWNER";

    #[test]
    fn processes_allocating_at_once_get_distinct_addresses() {
        if let (Ok(dir), Ok(owner)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_OWNER)) {
            let pool = ipam(Path::new(&dir), "10.9.0.0/24");
            for n in 0..20 {
                println!(
                    "allocated {}",
                    pool.allocate(&format!("{owner}-{n}")).unwrap()
                );
            }
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let test = "network::ipam::tests::processes_allocating_at_once_get_distinct_addresses";
        let children: Vec<_> = ["p", "q", "r"]
            .iter()
            .map(|owner| {
                Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", test, "--nocapture", "--test-threads=1"])
                    .env(CHILD_DIR, dir.path())
                    .env(CHILD_OWNER, owner)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut given = Vec::new();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            let stdout = String::from_utf8(output.stdout).unwrap();
            given.extend(
                stdout
                    .lines()
                    // The harness may print "test NAME ... " before the first line.
                    .filter_map(|line| line.split_once("allocated ").map(|(_, ip)| ip))
                    .map(ip),
            );
        }
        assert_eq!(given.len(), 60);
        given.sort();
        given.dedup();
        assert_eq!(given.len(), 60);
        let owners = ipam(dir.path(), "10.9.0.0/24").allocations().unwrap();
        assert_eq!(owners.len(), 60);
    }
}
