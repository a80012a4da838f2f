//! A container's connection to a bridge network: a veth pair whose host end is a port of the
//! bridge and whose other end is the container's `eth0` (`eth1`… for its next networks), with
//! the container's address, `lo` up and, on its first network, the default route.
//!
//! The caller's thread never changes namespace. [`attach`] does its work from a thread of its
//! own, which opens a netlink connection to the caller's namespace (the host), then `setns`es
//! into the container's and opens a second one there; both are driven by that thread's
//! runtime (see [`super::netlink`]). The container end is created directly inside the
//! container's namespace under its final name, so no temporary name ever shows on the host.
//!
//! The host end is put in hairpin mode: with `br_netfilter`, a container reaching its own
//! published port through the host is DNATed back out of the port it came in by, which the
//! bridge only does in that mode (docker does the same without its userland proxy).

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteHeader, RouteMessage, RouteType};
use rtnetlink::{
    Handle, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::netlink::{self, check_interface_name, errno, link_by_name, mac_for, NetlinkError};

/// The container's interfaces are this and a number.
const CONTAINER_IF_PREFIX: &str = "eth";

/// Why a container could not be connected or disconnected.
#[derive(Debug, thiserror::Error)]
pub enum VethError {
    /// No netlink session, or a bad interface name.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The container's namespace file could not be opened.
    #[error("cannot open network namespace {}: {source}", path.display())]
    OpenNamespace {
        /// The nsfs file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuring thread could not join the container's namespace.
    #[error("cannot enter network namespace {}: {source}", path.display())]
    EnterNamespace {
        /// The nsfs file.
        path: PathBuf,
        /// Why.
        source: Errno,
    },
    /// The bridge to attach to does not exist.
    #[error("bridge {bridge} does not exist")]
    NoBridge {
        /// The bridge.
        bridge: String,
    },
    /// The interface to detach is not the host end of a veth pair.
    #[error("interface {name} is not a veth")]
    NotAVeth {
        /// The interface.
        name: String,
    },
    /// An interface just created is gone (someone deleted it meanwhile).
    #[error("interface {name} vanished while being set up")]
    Vanished {
        /// The interface.
        name: String,
    },
    /// The kernel refused a request about an interface of the host.
    #[error("cannot {action} {interface}: {source}")]
    Host {
        /// What was being done, e.g. `turn on hairpin mode of`.
        action: String,
        /// The interface.
        interface: String,
        /// The kernel's answer.
        source: Box<rtnetlink::Error>,
    },
    /// The kernel refused a request inside the container's namespace.
    #[error("cannot {action} in network namespace {}: {source}", path.display())]
    Container {
        /// What was being done, e.g. `add address 10.222.0.2/16 to eth0`.
        action: String,
        /// The nsfs file.
        path: PathBuf,
        /// The kernel's answer.
        source: Box<rtnetlink::Error>,
    },
    /// The configuring thread panicked.
    #[error("the thread configuring network namespace {} panicked", path.display())]
    Panicked {
        /// The nsfs file.
        path: PathBuf,
    },
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, VethError>;

/// Where and how a container joins a bridge network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// The network's bridge (see [`super::bridge::ensure_bridge`]).
    pub bridge: &'a str,
    /// The name of the pair's host end, unique on the host (at most 15 bytes).
    pub host_if_name: &'a str,
    /// The container's address on the network.
    pub address: Ipv4Addr,
    /// The network's prefix length.
    pub prefix: u8,
    /// The network's gateway, the bridge's address.
    pub gateway: Ipv4Addr,
    /// The container end's MAC; `None` derives one from `address` (`02:42` and its bytes).
    pub mac: Option<[u8; 6]>,
}

/// A container's interface on a network, as [`attach`] made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The pair's host end, the bridge port; [`detach`] takes it.
    pub host_if_name: String,
    /// The interface in the container: `eth0`, or the next free `ethN`.
    pub container_if_name: String,
    /// The container interface's MAC.
    pub mac: [u8; 6],
    /// Whether the default route goes through this network (the container had none before).
    pub default_route: bool,
}

/// Connects the network namespace at `netns` (`/proc/PID/ns/net` or a bind-mounted nsfs file)
/// to `endpoint`'s bridge, which lives in the calling thread's namespace. On failure nothing is
/// left behind.
pub fn attach(netns: &Path, endpoint: &Endpoint) -> Result<Attachment> {
    check_interface_name(endpoint.bridge)?;
    check_interface_name(endpoint.host_if_name)?;
    let namespace = File::open(netns).map_err(|source| VethError::OpenNamespace {
        path: netns.to_owned(),
        source,
    })?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| attach_from_own_thread(netns, &namespace, endpoint))
            .join()
    })
    .unwrap_or_else(|_| {
        Err(VethError::Panicked {
            path: netns.to_owned(),
        })
    })
}

/// Deletes the veth pair whose host end is `host_if_name` (both ends go together); a pair that
/// is gone already, e.g. with its container's namespace, is no error.
pub fn detach(host_if_name: &str) -> Result<()> {
    check_interface_name(host_if_name)?;
    let netlink = netlink::Netlink::new()?;
    let host = netlink.connect()?;
    netlink.block_on(async {
        let link = link_by_name(&host, host_if_name)
            .await
            .map_err(|error| on_host("look up", host_if_name, error))?;
        let Some(link) = link else {
            return Ok(());
        };
        if netlink::link_kind(&link) != Some(&InfoKind::Veth) {
            return Err(VethError::NotAVeth {
                name: host_if_name.to_owned(),
            });
        }
        match host.link().del(link.header.index).execute().await {
            Err(error) if errno(&error) != Some(Errno::ENODEV) => {
                Err(on_host("delete", host_if_name, error))
            }
            _ => Ok(()),
        }
    })
}

/// [`attach`]'s work, on a thread that may change namespace.
fn attach_from_own_thread(
    path: &Path,
    namespace: &File,
    endpoint: &Endpoint,
) -> Result<Attachment> {
    let netlink = netlink::Netlink::new()?;
    let host = netlink.connect()?;
    setns(namespace.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| {
        VethError::EnterNamespace {
            path: path.to_owned(),
            source,
        }
    })?;
    let sides = Sides {
        host,
        container: netlink.connect()?,
        path,
    };
    netlink.block_on(sides.connect(namespace.as_raw_fd(), endpoint))
}

/// Connections to both namespaces.
struct Sides<'a> {
    host: Handle,
    container: Handle,
    /// The container's namespace file, for messages.
    path: &'a Path,
}

impl Sides<'_> {
    /// Creates the pair and configures both ends; deletes the pair again if configuring fails.
    async fn connect(&self, namespace: RawFd, endpoint: &Endpoint<'_>) -> Result<Attachment> {
        let bridge = host_index(&self.host, endpoint.bridge)
            .await?
            .ok_or_else(|| VethError::NoBridge {
                bridge: endpoint.bridge.to_owned(),
            })?;
        let links: Vec<LinkMessage> = self
            .container
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|error| self.inside("list the interfaces", error))?;
        let container_if_name = free_interface_name(&links);
        let default_route = !self.has_default_route().await?;
        let mac = endpoint.mac.unwrap_or_else(|| mac_for(endpoint.address));

        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(container_if_name.clone())
            .address(mac.to_vec())
            .setns_by_fd(namespace)
            .build();
        let pair = LinkVeth::new(endpoint.host_if_name, &container_if_name)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        self.host
            .link()
            .add(pair)
            .execute()
            .await
            .map_err(|error| on_host("create veth", endpoint.host_if_name, error))?;

        let attachment = Attachment {
            host_if_name: endpoint.host_if_name.to_owned(),
            container_if_name,
            mac,
            default_route,
        };
        let configured = self.configure(bridge, endpoint, &attachment).await;
        if configured.is_err() {
            // The pair is ours and useless: delete it so a retry starts clean. The configure
            // error is the one worth reporting.
            if let Ok(Some(index)) = host_index(&self.host, endpoint.host_if_name).await {
                let _ = self.host.link().del(index).execute().await;
            }
        }
        configured.map(|()| attachment)
    }

    /// Plugs the host end into the bridge and sets up the container end.
    async fn configure(
        &self,
        bridge: u32,
        endpoint: &Endpoint<'_>,
        attachment: &Attachment,
    ) -> Result<()> {
        let host_if = &attachment.host_if_name;
        let host_if_index = host_index(&self.host, host_if)
            .await?
            .ok_or_else(|| vanished(host_if))?;
        let port = LinkUnspec::new_with_index(host_if_index)
            .controller(bridge)
            .up()
            .build();
        self.host
            .link()
            .set(port)
            .execute()
            .await
            .map_err(|error| {
                on_host(
                    &format!("add to bridge {} and bring up", endpoint.bridge),
                    host_if,
                    error,
                )
            })?;
        let hairpin = LinkBridgePort::new(host_if_index).hairpin(true).build();
        self.host
            .link()
            .set_port(hairpin)
            .execute()
            .await
            .map_err(|error| on_host("turn on hairpin mode of", host_if, error))?;

        let container_if = &attachment.container_if_name;
        let index = self.container_index(container_if).await?;
        let address = format!("{}/{}", endpoint.address, endpoint.prefix);
        self.container
            .address()
            .add(index, IpAddr::V4(endpoint.address), endpoint.prefix)
            .execute()
            .await
            .map_err(|error| {
                self.inside(&format!("add address {address} to {container_if}"), error)
            })?;
        for name in [container_if.as_str(), "lo"] {
            let index = self.container_index(name).await?;
            self.container
                .link()
                .set(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(|error| self.inside(&format!("bring up {name}"), error))?;
        }
        if attachment.default_route {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(endpoint.gateway)
                .output_interface(index)
                .build();
            self.container
                .route()
                .add(route)
                .execute()
                .await
                .map_err(|error| {
                    self.inside(
                        &format!("add the default route via {}", endpoint.gateway),
                        error,
                    )
                })?;
        }
        Ok(())
    }

    /// Whether the container's main routing table has an IPv4 default route.
    async fn has_default_route(&self) -> Result<bool> {
        let routes: Vec<RouteMessage> = self
            .container
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(|error| self.inside("list the routes", error))?;
        Ok(routes.iter().any(|route| {
            route.header.destination_prefix_length == 0
                && route.header.table == RouteHeader::RT_TABLE_MAIN
                && route.header.kind == RouteType::Unicast
        }))
    }

    /// The index of the container's interface `name`.
    async fn container_index(&self, name: &str) -> Result<u32> {
        link_by_name(&self.container, name)
            .await
            .map_err(|error| self.inside(&format!("look up {name}"), error))?
            .map(|link| link.header.index)
            .ok_or_else(|| vanished(name))
    }

    fn inside(&self, action: &str, source: rtnetlink::Error) -> VethError {
        VethError::Container {
            action: action.to_owned(),
            path: self.path.to_owned(),
            source: Box::new(source),
        }
    }
}

/// The index of the host's interface `name`, if there is one.
async fn host_index(host: &Handle, name: &str) -> Result<Option<u32>> {
    let link = link_by_name(host, name)
        .await
        .map_err(|error| on_host("look up", name, error))?;
    Ok(link.map(|link| link.header.index))
}

/// The first `ethN` no interface in `links` is called.
fn free_interface_name(links: &[LinkMessage]) -> String {
    let taken: Vec<&str> = links
        .iter()
        .flat_map(|link| &link.attributes)
        .filter_map(|attribute| match attribute {
            LinkAttribute::IfName(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    (0..)
        .map(|n| format!("{CONTAINER_IF_PREFIX}{n}"))
        .find(|name| !taken.contains(&name.as_str()))
        .expect("an unbounded range has a free name")
}

fn on_host(action: &str, interface: &str, source: rtnetlink::Error) -> VethError {
    VethError::Host {
        action: action.to_owned(),
        interface: interface.to_owned(),
        source: Box::new(source),
    }
}

fn vanished(name: &str) -> VethError {
    VethError::Vanished {
        name: name.to_owned(),
    }
}
