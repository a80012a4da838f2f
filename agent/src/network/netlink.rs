//! Netlink plumbing shared by [`super::bridge`] and [`super::veth`]: rtnetlink requests run to
//! completion on a private current-thread tokio runtime, so the engine's synchronous callers can
//! use them, and a few lookups both need.
//!
//! A connection belongs to the network namespace its socket was opened in, that is the namespace
//! of the thread that called [`Netlink::connect`]; it keeps talking to that namespace whichever
//! thread drives it later. That is what lets [`super::veth`] hold one connection to the host and
//! one to a container at once. Not for use from inside a tokio runtime (`block_on` would panic).
//!
//! MAC addresses are derived here too ([`mac_for`]): the bridge's from its gateway address, a
//! container's from its own.

use std::future::Future;
use std::io;

use futures_util::TryStreamExt;
use nix::errno::Errno;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::Handle;
use tokio::runtime::{Builder, Runtime};

/// The longest interface name the kernel takes (`IFNAMSIZ` - 1).
const IFNAME_MAX: usize = 15;

/// Why a netlink session could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The runtime that drives the requests could not be built.
    #[error("cannot start the runtime for netlink requests: {0}")]
    Runtime(io::Error),
    /// The rtnetlink socket could not be opened.
    #[error("cannot open a netlink socket: {0}")]
    Socket(io::Error),
    /// An interface name the kernel would refuse.
    #[error("invalid interface name {name:?}: {reason}")]
    InterfaceName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A runtime to run netlink requests on, and connections opened through it.
#[derive(Debug)]
pub(crate) struct Netlink {
    runtime: Runtime,
}

impl Netlink {
    /// A runtime for this thread's requests.
    pub(crate) fn new() -> Result<Self, NetlinkError> {
        let runtime = Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(NetlinkError::Runtime)?;
        Ok(Self { runtime })
    }

    /// A connection to the network namespace of the calling thread.
    pub(crate) fn connect(&self) -> Result<Handle, NetlinkError> {
        let _context = self.runtime.enter();
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        self.runtime.spawn(connection);
        Ok(handle)
    }

    /// Runs `requests` to completion.
    pub(crate) fn block_on<F: Future>(&self, requests: F) -> F::Output {
        self.runtime.block_on(requests)
    }
}

/// Checks `name` the way the kernel will, to say precisely what is wrong with it.
pub(crate) fn check_interface_name(name: &str) -> Result<(), NetlinkError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > IFNAME_MAX {
        "longer than 15 bytes"
    } else if name == "." || name == ".." {
        "reserved"
    } else if name.contains(['/', ':']) || name.contains(char::is_whitespace) {
        "contains '/', ':' or white space"
    } else {
        return Ok(());
    };
    Err(NetlinkError::InterfaceName {
        name: name.to_owned(),
        reason,
    })
}

/// The errno a failed request carries, if the kernel refused it.
pub(crate) fn errno(error: &rtnetlink::Error) -> Option<Errno> {
    match error {
        rtnetlink::Error::NetlinkError(message) => message
            .to_io()
            .raw_os_error()
            .map(Errno::from_raw)
            .filter(|errno| *errno != Errno::UnknownErrno),
        _ => None,
    }
}

/// The link called `name`, if there is one.
pub(crate) async fn link_by_name(
    handle: &Handle,
    name: &str,
) -> Result<Option<LinkMessage>, rtnetlink::Error> {
    let mut links = handle.link().get().match_name(name).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(error) if errno(&error) == Some(Errno::ENODEV) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The kind of a link (bridge, veth…) as its info attribute says, if it has one.
pub(crate) fn link_kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
                LinkInfo::Kind(kind) => Some(kind),
                _ => None,
            }),
            _ => None,
        })
}

/// The locally administered MAC address flotilla derives from an IPv4 address: `02:42` and the
/// address's four bytes, docker's classic scheme. An address reused by another container keeps its
/// MAC, so neighbours' ARP caches stay right.
pub fn mac_for(address: std::net::Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x02, 0x42, a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_the_kernel_refuses_are_refused_with_the_reason() {
        for (name, reason) in [
            ("", "empty"),
            ("sixteen-chars-xx", "longer than 15 bytes"),
            ("..", "reserved"),
            ("a/b", "contains '/', ':' or white space"),
            ("a b", "contains '/', ':' or white space"),
        ] {
            let error = check_interface_name(name).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("invalid interface name {name:?}: {reason}")
            );
        }
        check_interface_name("flotilla0").unwrap();
        check_interface_name("fifteen-chars-x").unwrap();
    }

    #[test]
    fn macs_are_locally_administered_and_carry_the_address() {
        assert_eq!(
            mac_for("10.222.0.5".parse().unwrap()),
            [0x02, 0x42, 10, 222, 0, 5]
        );
    }
}
