//! Who this machine is: its ID from `/etc/machine-id` and the address other machines reach it at
//! (fleet's rule: the first global IPv4 address of the default route's interface).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// Why the machine's identity could not be established.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The machine-id file could not be read.
    #[error("cannot read the machine ID from {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It does not hold 32 hex digits.
    #[error("{} does not hold a machine ID (32 hex digits): {content:?}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What it holds.
        content: String,
    },
    /// No address could be found.
    #[error("cannot find this machine's address: {0}; set public_ip in the configuration")]
    NoAddress(String),
}

/// Reads and checks the machine ID in `path` (normally `/etc/machine-id`).
pub fn machine_id(path: &Path) -> Result<String, IdentityError> {
    let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
        path: path.to_owned(),
        source,
    })?;
    let id = text.trim();
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(IdentityError::Invalid {
            path: path.to_owned(),
            content: id.chars().take(64).collect(),
        })
    }
}

/// The interface of the IPv4 default route in `/proc/net/route`'s text, if there is one.
pub fn default_route_interface(route_table: &str) -> Option<&str> {
    const RTF_UP: u32 = 0x1;
    route_table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (interface, destination, flags, mask) = (
            fields.first()?,
            fields.get(1)?,
            fields.get(3)?,
            fields.get(7)?,
        );
        let flags = u32::from_str_radix(flags, 16).ok()?;
        (*destination == "00000000" && *mask == "00000000" && flags & RTF_UP != 0)
            .then_some(*interface)
    })
}

fn is_global(address: Ipv4Addr) -> bool {
    !(address.is_loopback() || address.is_link_local() || address.is_unspecified())
}

/// The machine's public address: the first global IPv4 address of the default route's interface;
/// without a default route (an isolated cluster), the first global IPv4 address of any interface.
pub fn public_ip() -> Result<IpAddr, IdentityError> {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let preferred = default_route_interface(&routes).map(str::to_owned);
    let addresses: Vec<(String, Ipv4Addr)> = nix::ifaddrs::getifaddrs()
        .map_err(|e| IdentityError::NoAddress(format!("getifaddrs: {e}")))?
        .filter_map(|interface| {
            let address = interface.address?.as_sockaddr_in()?.ip();
            is_global(address).then_some((interface.interface_name, address))
        })
        .collect();
    let pick = |wanted: Option<&str>| {
        addresses
            .iter()
            .find(|(name, _)| wanted.is_none_or(|wanted| wanted == name))
            .map(|(_, address)| IpAddr::V4(*address))
    };
    pick(preferred.as_deref())
        .or_else(|| pick(None))
        .ok_or_else(|| IdentityError::NoAddress("no interface has a global IPv4 address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_route_names_its_interface() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(table), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    #[test]
    fn machine_ids_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("machine-id");
        std::fs::write(&path, "0123456789ABCDEF0123456789abcdef\n").unwrap();
        assert_eq!(
            machine_id(&path).unwrap(),
            "0123456789abcdef0123456789abcdef"
        );
        std::fs::write(&path, "uninitialized\n").unwrap();
        assert_eq!(
            machine_id(&path).unwrap_err().to_string(),
            format!(
                "{} does not hold a machine ID (32 hex digits): \"uninitialized\"",
                path.display()
            )
        );
    }

    #[test]
    fn this_machine_has_an_address_or_says_how_to_set_one() {
        match public_ip() {
            Ok(address) => assert!(!address.is_loopback()),
            Err(e) => assert!(e.to_string().contains("set public_ip"), "{e}"),
        }
    }
}
