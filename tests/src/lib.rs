//! `flotilla-tests`: an out-of-process test harness that boots real systemd nodes on this machine.
//!
//! A [`Node`] is the host image's systemd 252 running as PID 1 in its own pid, mount, uts, ipc,
//! net and cgroup namespaces, on an overlay of the image's root filesystem (`os/out/rootfs`, see
//! [`os_image::os_rootfs`]) with a per-node upper directory (see [`node`] for the layout and DESIGN.md §5 for
//! why every piece is there).
//! Tests drive the *built* flotilla binaries ([`built_binary`]) by installing them into a node and
//! running them as systemd units there, the way fleet's functional tests drive a `platform.Cluster`
//! and youki's contest drives a runtime binary.
//!
//! A [`Cluster`] puts N nodes on a bridge of ours with a real etcd on the host
//! ([`cluster`]); `flotilla-cluster up|down|clean` does the same by hand and removes what killed
//! test processes left behind ([`clean`]).
//!
//! There is no silent skip: a machine that cannot boot a node (not root, no util-linux `unshare`,
//! no overlayfs, no built image) makes the test fail with the reason. Nodes clean up after themselves on drop and
//! print their journal to stderr when dropped during a panic, so a failed assertion shows what
//! happened inside.
//!
//! ```no_run
//! use flotilla_tests::{Node, NodeConfig};
//!
//! let node = Node::boot(NodeConfig::new("node1")).unwrap();
//! node.exec_ok(&["systemd-run", "--unit=hello", "--wait", "/bin/true"]).unwrap();
//! ```

pub mod bench;
pub mod clean;
pub mod cluster;
pub mod error;
pub mod etcd;
pub mod flotilla;
pub mod hostile_proxy;
pub mod libvirt;
pub mod network;
pub mod node;
pub mod os_image;
pub mod pki;
pub mod registry;
pub mod test_image;
pub mod token_server;

use std::path::PathBuf;

pub use cluster::{Cluster, ClusterConfig, ClusterFootprint};
pub use error::{HarnessError, Result};
pub use node::{Node, NodeConfig, NodeFootprint, NodeNetwork};

/// Path of a binary built by cargo into the same target directory as the running test, e.g.
/// `target/debug/flotilla` for a test at `target/debug/deps/node_boots-…`.
///
/// The tests crate cannot use `CARGO_BIN_EXE_*` of other packages, so the workspace's binaries must
/// be built first (`cargo build --workspace --bins`).
///
/// # Errors
/// [`HarnessError::BinaryNotFound`] naming the expected path if the binary is missing.
///
/// ```no_run
/// let init = flotilla_tests::locate_binary("flotilla-node-init").unwrap();
/// ```
pub fn locate_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|source| HarnessError::Io {
        what: "locate",
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    // target/<profile>/deps/<test> → target/<profile>; a binary itself lives in target/<profile>.
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::BinaryNotFound {
            name: name.to_owned(),
            path,
        })
    }
}

/// Like [`locate_binary`], but panics with the error's message: tests never skip a missing binary.
///
/// ```no_run
/// let generator = flotilla_tests::built_binary("flotilla-generator");
/// ```
#[track_caller]
pub fn built_binary(name: &str) -> PathBuf {
    match locate_binary(name) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}
