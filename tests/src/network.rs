//! A test cluster's network on the host: a /24 of `10.213.0.0/16` reserved for this process, a
//! bridge of ours holding the host address `.1`, and the firewall check of DESIGN §5.
//!
//! # Reservation
//! Subnet `10.213.X.0/24` belongs to whoever holds an exclusive `flock` on
//! `/run/flotilla-tests/subnet-X.lock` (the file says the owner's pid, for people). The lock dies
//! with its process, so concurrent test processes never share a subnet, and a subnet whose lock
//! nobody holds has no owner: its bridge `fltX-br` is a leftover (`flotilla-cluster clean`). A
//! subnet the host already uses (an address in it, or a left-over bridge) is skipped.
//!
//! Everything else is named after X: bridge `fltX-br`, the host end of node n's veth `fltX-vn`,
//! node n's address `10.213.X.(10+n)`. Nodes get no default route and nothing here touches NAT or
//! `ip_forward`: traffic flows only between the nodes and the bridge.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::HarnessError;
use crate::node::{host_cmd, link_exists};

/// Where the subnet locks live.
pub const LOCK_DIR: &str = "/run/flotilla-tests";
/// Prefix length of every cluster's subnet.
pub const PREFIX_LEN: u8 = 24;
/// The first two octets of the range reserved for our namespaces.
const RANGE: [u8; 2] = [10, 213];
/// Node n's address is `.(NODE_OFFSET + n)`.
const NODE_OFFSET: usize = 10;
/// The highest node number with an address below the broadcast address.
pub const MAX_NODES: usize = 244;

/// Why the network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A subnet lock file could not be created, opened or locked.
    #[error("cannot {what} subnet lock {}: {source}", path.display())]
    Lock {
        /// What was being done.
        what: &'static str,
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Every /24 of the range is taken.
    #[error("no free /24 in 10.213.0.0/16: all are locked under {LOCK_DIR} or in use on the host")]
    Exhausted,
    /// An `ip` command failed.
    #[error(transparent)]
    Command(#[from] HarnessError),
    /// The host's firewall would drop the traffic between nodes.
    #[error(
        "the host firewall drops forwarded traffic, so nodes on a bridge cannot reach each other: \
         {reason}; allow it (e.g. `iptables -I FORWARD -i flt+ -o flt+ -j ACCEPT`) or set \
         net.bridge.bridge-nf-call-iptables=0"
    )]
    ForwardDrop {
        /// Which chain drops.
        reason: String,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, NetworkError>;

/// A reserved `10.213.X.0/24`: held until dropped, then its lock file is removed.
#[derive(Debug)]
pub struct Subnet {
    index: u8,
    lock_path: PathBuf,
    lock: Flock<File>,
}

impl Subnet {
    /// Reserves a free /24 for which `usable(X)` holds (e.g. ports derived from X are free),
    /// trying them in an order that starts at this process's pid so that concurrent test
    /// processes rarely contend.
    ///
    /// # Errors
    /// [`NetworkError::Exhausted`] when none is free, [`NetworkError::Lock`] when the lock
    /// directory cannot be written.
    ///
    /// ```no_run
    /// let subnet = flotilla_tests::network::Subnet::reserve(|_| true).unwrap();
    /// println!("{} on {}", subnet.cidr(), subnet.bridge_name());
    /// ```
    pub fn reserve(usable: impl Fn(u8) -> bool) -> Result<Subnet> {
        let used = host_addresses();
        let start = std::process::id() as usize;
        for offset in 0..256 {
            let index = ((start + offset) % 256) as u8;
            let prefix = format!("{}.{}.{index}.", RANGE[0], RANGE[1]);
            if used.iter().any(|a| a.starts_with(&prefix))
                || link_exists(&bridge_name(index))
                || !usable(index)
            {
                continue;
            }
            if let Some(lock) = try_lock(index)? {
                let mut subnet = Subnet {
                    index,
                    lock_path: lock_path(index),
                    lock,
                };
                subnet.write_owner()?;
                return Ok(subnet);
            }
        }
        Err(NetworkError::Exhausted)
    }

    /// X of `10.213.X.0/24`.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// `10.213.X.0/24`.
    pub fn cidr(&self) -> String {
        format!("{}/{PREFIX_LEN}", self.address(0))
    }

    /// The host's address on the bridge, `.1`.
    pub fn host_address(&self) -> Ipv4Addr {
        self.address(1)
    }

    /// Node n's address, `.(10+n)`, for n in `1..=MAX_NODES`.
    pub fn node_address(&self, n: usize) -> Ipv4Addr {
        self.address(u8::try_from(NODE_OFFSET + n).unwrap_or(u8::MAX))
    }

    /// The bridge, `fltX-br`.
    pub fn bridge_name(&self) -> String {
        bridge_name(self.index)
    }

    /// The host end of node n's veth, `fltX-vn`.
    pub fn host_veth(&self, n: usize) -> String {
        format!("flt{}-v{n}", self.index)
    }

    /// The lock file held while this subnet is reserved.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    fn address(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(RANGE[0], RANGE[1], self.index, last)
    }

    fn write_owner(&mut self) -> Result<()> {
        let file: &mut File = &mut self.lock;
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(|source| NetworkError::Lock {
                what: "write",
                path: self.lock_path.clone(),
                source,
            })
    }
}

impl Drop for Subnet {
    fn drop(&mut self) {
        // Removed while still locked: whoever opened the old file and locks it after us sees that
        // it is no longer the file at the path (see `try_lock`) and tries again.
        let _ = fs::remove_file(&self.lock_path);
        let _ = fs::remove_dir(LOCK_DIR);
    }
}

/// The lock file of `10.213.X.0/24`.
pub fn lock_path(index: u8) -> PathBuf {
    Path::new(LOCK_DIR).join(format!("subnet-{index}.lock"))
}

/// The bridge of `10.213.X.0/24`.
pub fn bridge_name(index: u8) -> String {
    format!("flt{index}-br")
}

/// X of a bridge name `fltX-br`, if it is one of ours.
pub fn bridge_index(name: &str) -> Option<u8> {
    name.strip_prefix("flt")?.strip_suffix("-br")?.parse().ok()
}

/// Takes the lock of subnet `index` if nobody holds it; `None` if somebody does.
///
/// # Errors
/// [`NetworkError::Lock`] when the lock file cannot be created or opened.
pub fn try_lock(index: u8) -> Result<Option<Flock<File>>> {
    let path = lock_path(index);
    let err = |what, source| NetworkError::Lock {
        what,
        path: path.clone(),
        source,
    };
    loop {
        // Another process may remove the directory when it releases the last subnet.
        fs::create_dir_all(LOCK_DIR).map_err(|e| err("create directory of", e))?;
        let file = match OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err("open", e)),
        };
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, e)) => return Err(err("lock", e.into())),
        };
        // The owner removes the file before it unlocks: a lock on a file no longer at the path
        // reserves nothing.
        let ours = lock.metadata().map_err(|e| err("inspect", e))?;
        match fs::metadata(&path) {
            Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => return Ok(Some(lock)),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(err("inspect", e)),
        }
    }
}

/// Whether somebody holds subnet `index`'s lock (without creating the lock file).
pub fn subnet_held(index: u8) -> bool {
    let Ok(file) = File::open(lock_path(index)) else {
        return false;
    };
    matches!(
        Flock::lock(file, FlockArg::LockExclusiveNonblock),
        Err((_, Errno::EWOULDBLOCK))
    )
}

/// The host's links of subnet `index` (its bridge and veth host ends), named as this module
/// names them.
pub fn subnet_links(index: u8) -> Vec<String> {
    let veth_prefix = format!("flt{index}-v");
    let mut links: Vec<String> = fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| *name == bridge_name(index) || name.starts_with(&veth_prefix))
        .collect();
    links.sort();
    links
}

/// Removes what is left of subnet `index` if nobody holds it: its links and its lock file.
/// Returns `false` (and removes nothing) if somebody holds it.
///
/// # Errors
/// [`NetworkError::Lock`] or the failing `ip link del`.
pub fn release_stale(index: u8) -> Result<bool> {
    let Some(lock) = try_lock(index)? else {
        return Ok(false);
    };
    for link in subnet_links(index) {
        if link_exists(&link) {
            host_cmd(&["ip", "link", "del", &link])?;
        }
    }
    // Removed while locked, as `Subnet` does.
    let _ = fs::remove_file(lock_path(index));
    let _ = fs::remove_dir(LOCK_DIR);
    drop(lock);
    Ok(true)
}

/// Our bridge: created with the host address, removed on drop.
#[derive(Debug)]
pub struct Bridge {
    name: String,
}

impl Bridge {
    /// Creates the subnet's bridge with the host address `.1/24` and brings it up.
    ///
    /// # Errors
    /// [`NetworkError::Command`] naming the `ip` command that failed; what was created is
    /// removed.
    pub fn create(subnet: &Subnet) -> Result<Bridge> {
        let name = subnet.bridge_name();
        host_cmd(&["ip", "link", "add", "name", &name, "type", "bridge"])?;
        let bridge = Bridge { name };
        let cidr = format!("{}/{PREFIX_LEN}", subnet.host_address());
        host_cmd(&["ip", "addr", "add", &cidr, "dev", &bridge.name])?;
        host_cmd(&["ip", "link", "set", &bridge.name, "up"])?;
        Ok(bridge)
    }

    /// The bridge's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(left) = delete_link(&self.name) {
            eprintln!("{left}");
        }
    }
}

/// Deletes the host's link `name` if it exists; returns the error if it could not.
pub fn delete_link(name: &str) -> Option<String> {
    if !link_exists(name) {
        return None;
    }
    host_cmd(&["ip", "link", "del", name])
        .err()
        .map(|e| e.to_string())
}

/// Sets the host's link `name` up or down.
///
/// # Errors
/// [`NetworkError::Command`] naming the `ip` command.
pub fn set_link(name: &str, up: bool) -> Result<()> {
    let state = if up { "up" } else { "down" };
    Ok(host_cmd(&["ip", "link", "set", name, state])?)
}

/// Fails if the host's firewall drops forwarded traffic that our bridge's traffic passes through.
///
/// # Errors
/// [`NetworkError::ForwardDrop`] saying which chain drops.
pub fn check_forwarding() -> Result<()> {
    let nft = command_stdout(&["nft", "list", "ruleset"]);
    let legacy = command_stdout(&["iptables-legacy", "-S", "FORWARD"]);
    let calls_iptables = fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .is_ok_and(|v| v.trim() == "1");
    match forward_drop_reason(&nft, &legacy, calls_iptables) {
        Some(reason) => Err(NetworkError::ForwardDrop { reason }),
        None => Ok(()),
    }
}

/// Why bridged traffic would be dropped, given `nft list ruleset`, `iptables-legacy -S FORWARD`
/// and whether br_netfilter hands bridged IPv4 to iptables (`bridge-nf-call-iptables`).
///
/// A `bridge`-family chain on the forward hook always sees bridged frames; `ip`/`inet` chains
/// (which is where iptables-nft puts `FORWARD`) and legacy iptables only when br_netfilter calls
/// them.
fn forward_drop_reason(
    nft_ruleset: &str,
    legacy_forward: &str,
    calls_iptables: bool,
) -> Option<String> {
    let mut family = "";
    let mut table = "";
    let mut chain = "";
    for line in nft_ruleset.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["table", f, t, ..] => (family, table) = (f, t),
            ["chain", c, ..] => chain = c,
            _ if line.contains("hook forward") && line.contains("policy drop") => {
                let filtered = family == "bridge" || (calls_iptables && family != "netdev");
                if filtered {
                    return Some(format!(
                        "nft chain {family} {table} {chain} has policy drop on the forward hook"
                    ));
                }
            }
            _ => {}
        }
    }
    (calls_iptables
        && legacy_forward
            .lines()
            .any(|l| l.trim() == "-P FORWARD DROP"))
    .then(|| "iptables-legacy FORWARD policy is DROP (bridge-nf-call-iptables=1)".to_owned())
}

/// The host's IPv4 addresses.
fn host_addresses() -> Vec<String> {
    let json = command_stdout(&["ip", "-j", "-4", "addr", "show"]);
    let links: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    links
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| link["addr_info"].as_array())
        .flatten()
        .filter_map(|a| a["local"].as_str().map(str::to_owned))
        .collect()
}

/// A host command's stdout, empty if it is not installed or fails (optional tools).
fn command_stdout(argv: &[&str]) -> String {
    Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPTABLES_NFT_DROP: &str = "table ip filter {\n\
        \tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n\
        \tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\n";

    #[test]
    fn iptables_forward_drop_matters_only_when_bridges_call_iptables() {
        let reason = forward_drop_reason(IPTABLES_NFT_DROP, "", true).unwrap();
        assert_eq!(
            reason,
            "nft chain ip filter FORWARD has policy drop on the forward hook"
        );
        assert_eq!(forward_drop_reason(IPTABLES_NFT_DROP, "", false), None);
        let legacy = "-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n";
        assert!(forward_drop_reason("", legacy, true).is_some());
        assert_eq!(forward_drop_reason("", legacy, false), None);
        assert_eq!(forward_drop_reason("", "-P FORWARD ACCEPT\n", true), None);
    }

    #[test]
    fn bridge_family_drop_always_matters() {
        let ruleset = "table bridge filter {\n\tchain fwd {\n\t\t\
            type filter hook forward priority 0; policy drop;\n\t}\n}\n";
        assert_eq!(
            forward_drop_reason(ruleset, "", false).as_deref(),
            Some("nft chain bridge filter fwd has policy drop on the forward hook")
        );
        let accept = IPTABLES_NFT_DROP.replace("policy drop", "policy accept");
        assert_eq!(forward_drop_reason(&accept, "", true), None);
    }

    #[test]
    fn bridge_names_round_trip() {
        assert_eq!(bridge_name(7), "flt7-br");
        assert_eq!(bridge_index("flt7-br"), Some(7));
        assert_eq!(bridge_index("flt255-br"), Some(255));
        assert_eq!(bridge_index("flt256-br"), None);
        assert_eq!(bridge_index("flt7-v1"), None);
        assert_eq!(bridge_index("docker0"), None);
        assert!(bridge_name(255).len() <= 15);
    }
}
