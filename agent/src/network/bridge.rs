//! The host side of a bridge network: the bridge device, which holds the network's gateway
//! address, and the two sysctls that routing through it needs.
//!
//! Everything acts on the network namespace of the calling thread (the host's, for the engine):
//! the netlink socket is opened there, and `/proc/sys/net` shows the sysctls of the namespace
//! of the thread that opens them. [`ensure_bridge`] is idempotent, so the engine calls it before
//! every attachment; the bridge gets a fixed MAC derived from its gateway address, so the
//! gateway's MAC does not change as containers come and go (a bridge without one takes the
//! lowest of its ports').

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::InfoKind;
use rtnetlink::{Handle, LinkBridge, LinkUnspec};

use super::netlink::{self, check_interface_name, errno, link_by_name, mac_for, NetlinkError};

/// `net.ipv4.ip_forward` of the current network namespace.
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Why a bridge or a sysctl could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// No netlink session, or a bad interface name.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The kernel refused a request.
    #[error("cannot {action} bridge {bridge}: {source}")]
    Request {
        /// What was being done, e.g. `add address 10.222.0.1/16 to`.
        action: String,
        /// The bridge.
        bridge: String,
        /// The kernel's answer.
        source: Box<rtnetlink::Error>,
    },
    /// An interface of that name exists and is something else.
    #[error("interface {name} exists and is not a bridge")]
    NotABridge {
        /// The interface.
        name: String,
    },
    /// The bridge was created but is gone when looked up (someone deleted it meanwhile).
    #[error("bridge {bridge} vanished while being set up")]
    Vanished {
        /// The bridge.
        bridge: String,
    },
    /// A sysctl could not be written.
    #[error("cannot write {value} to {}: {source}", path.display())]
    Sysctl {
        /// The file under /proc/sys.
        path: PathBuf,
        /// What was written.
        value: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, BridgeError>;

/// Makes sure bridge `name` exists, holds `gateway/prefix` and is up; returns its interface
/// index. Creates it when missing; an existing bridge keeps any other address it has.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<u32> {
    check_interface_name(name)?;
    let netlink = netlink::Netlink::new()?;
    let handle = netlink.connect()?;
    netlink.block_on(ensure(&handle, name, gateway, prefix))
}

/// Deletes bridge `name` (its ports are released, not deleted); a missing bridge is no error.
pub fn remove_bridge(name: &str) -> Result<()> {
    check_interface_name(name)?;
    let netlink = netlink::Netlink::new()?;
    let handle = netlink.connect()?;
    netlink.block_on(async {
        let Some(index) = existing_bridge(&handle, name).await? else {
            return Ok(());
        };
        match handle.link().del(index).execute().await {
            Err(error) if errno(&error) != Some(Errno::ENODEV) => {
                Err(request("delete", name, error))
            }
            _ => Ok(()),
        }
    })
}

/// Turns on IPv4 forwarding in the current network namespace (containers' traffic is routed
/// through the host).
pub fn enable_ip_forward() -> Result<()> {
    write_sysctl(Path::new(IP_FORWARD), "1")
}

/// Lets `bridge` carry packets with loopback addresses, which the DNAT of a published port
/// reached through 127.0.0.1 produces (docker's way without a userland proxy); the firewall
/// masquerades them to the gateway address and drops new connections to 127.0.0.0/8 coming in
/// from the bridge, which this setting would otherwise let through.
pub fn enable_route_localnet(bridge: &str) -> Result<()> {
    check_interface_name(bridge)?;
    let path = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"));
    write_sysctl(&path, "1")
}

/// The index of bridge `name`, created if missing, with `gateway/prefix` and up.
async fn ensure(handle: &Handle, name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<u32> {
    let index = match existing_bridge(handle, name).await? {
        Some(index) => index,
        None => create(handle, name, gateway).await?,
    };
    if !has_address(handle, name, index, gateway, prefix).await? {
        let added = handle
            .address()
            .add(index, IpAddr::V4(gateway), prefix)
            .execute()
            .await;
        match added {
            Err(error) if errno(&error) != Some(Errno::EEXIST) => {
                return Err(request(
                    &format!("add address {gateway}/{prefix} to"),
                    name,
                    error,
                ));
            }
            _ => {}
        }
    }
    let up = LinkUnspec::new_with_index(index).up().build();
    handle
        .link()
        .set(up)
        .execute()
        .await
        .map_err(|error| request("bring up", name, error))?;
    Ok(index)
}

/// Creates bridge `name` with the MAC derived from `gateway`; returns its index. Losing a race
/// to another creator is fine: its bridge is as good.
async fn create(handle: &Handle, name: &str, gateway: Ipv4Addr) -> Result<u32> {
    let bridge = LinkBridge::new(name)
        .address(mac_for(gateway).to_vec())
        .build();
    match handle.link().add(bridge).execute().await {
        Err(error) if errno(&error) != Some(Errno::EEXIST) => {
            return Err(request("create", name, error));
        }
        _ => {}
    }
    existing_bridge(handle, name)
        .await?
        .ok_or_else(|| BridgeError::Vanished {
            bridge: name.to_owned(),
        })
}

/// The index of bridge `name`, `None` when no interface has that name; an interface of another
/// kind is an error.
async fn existing_bridge(handle: &Handle, name: &str) -> Result<Option<u32>> {
    let link = link_by_name(handle, name)
        .await
        .map_err(|error| request("look up", name, error))?;
    match link {
        None => Ok(None),
        Some(link) if netlink::link_kind(&link) == Some(&InfoKind::Bridge) => {
            Ok(Some(link.header.index))
        }
        Some(_) => Err(BridgeError::NotABridge {
            name: name.to_owned(),
        }),
    }
}

/// Whether interface `index` holds `address/prefix`.
async fn has_address(
    handle: &Handle,
    name: &str,
    index: u32,
    address: Ipv4Addr,
    prefix: u8,
) -> Result<bool> {
    let addresses: Vec<AddressMessage> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(|error| request("list the addresses of", name, error))?;
    Ok(addresses.iter().any(|message| {
        message.header.prefix_len == prefix
            && message
                .attributes
                .contains(&AddressAttribute::Local(IpAddr::V4(address)))
    }))
}

fn request(action: &str, bridge: &str, source: rtnetlink::Error) -> BridgeError {
    BridgeError::Request {
        action: action.to_owned(),
        bridge: bridge.to_owned(),
        source: Box::new(source),
    }
}

fn write_sysctl(path: &Path, value: &'static str) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()))
        .map_err(|source| BridgeError::Sysctl {
            path: path.to_owned(),
            value,
            source,
        })
}
