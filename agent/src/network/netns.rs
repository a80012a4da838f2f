//! Persistent network namespaces: a new namespace kept alive by a bind mount of its nsfs file
//! onto a path (as `ip netns add` does), so it outlives the processes in it. A container's
//! namespace is made before its first process runs, which joins it by that path, and lives
//! until its supervisor ends; `--network container:NAME` joins the same path.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};
use rtnetlink::LinkUnspec;

use super::netlink::{self, link_by_name, NetlinkError};

/// Why a namespace could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot create the mount point {path}: {source}")]
    MountPoint {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create a network namespace: {0}")]
    Unshare(nix::errno::Errno),
    #[error("cannot bring up lo in the network namespace {path}: {reason}")]
    Loopback { path: PathBuf, reason: String },
    #[error("cannot bind the network namespace onto {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error("cannot unmount the network namespace {path}: {source}")]
    Unmount {
        path: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("the thread creating the network namespace {0} panicked")]
    Panicked(PathBuf),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, NetnsError>;

/// Whether `path` holds a network namespace now (an nsfs mount, not the empty file left by a
/// reboot or an unmount).
pub fn exists(path: &Path) -> bool {
    statfs(path).is_ok_and(|fs| fs.filesystem_type() == NSFS_MAGIC)
}

/// Makes a new network namespace with `lo` up and binds it onto `path` (a file, created if
/// missing). The calling thread stays where it is.
pub fn create(path: &Path) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| NetnsError::MountPoint {
            path: path.to_owned(),
            source,
        })?;
    std::thread::scope(|scope| scope.spawn(|| create_from_own_thread(path)).join())
        .unwrap_or_else(|_| Err(NetnsError::Panicked(path.to_owned())))
}

/// [`create`]'s work, on a thread that leaves the caller's namespace.
fn create_from_own_thread(path: &Path) -> Result<()> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
    let netlink = netlink::Netlink::new()?;
    let handle = netlink.connect()?;
    let loopback = |reason: String| NetnsError::Loopback {
        path: path.to_owned(),
        reason,
    };
    netlink.block_on(async {
        let lo = link_by_name(&handle, "lo")
            .await
            .map_err(|e| loopback(e.to_string()))?
            .ok_or_else(|| loopback("it does not exist".to_owned()))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(lo.header.index).up().build())
            .execute()
            .await
            .map_err(|e| loopback(e.to_string()))
    })?;
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| NetnsError::Bind {
        path: path.to_owned(),
        source,
    })
}

/// Unbinds the namespace at `path` (it goes once no process is in it) and removes the file;
/// nothing there is no error.
pub fn remove(path: &Path) -> Result<()> {
    while exists(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(|source| NetnsError::Unmount {
            path: path.to_owned(),
            source,
        })?;
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(NetnsError::MountPoint {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}
