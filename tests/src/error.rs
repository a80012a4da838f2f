//! Errors of the harness: each names the node, command or path it is about, so a failed test says
//! what went wrong without a debugger (lower-case, no trailing period).

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong while booting, driving or tearing down a node.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Booting a node needs root (namespaces, mounts, cgroups); there is no silent skip.
    #[error("booting a test node needs root (euid is {euid}); run the tests as root")]
    NotRoot {
        /// The effective uid the tests run with.
        euid: u32,
    },
    /// A binary the tests drive was not built.
    #[error("binary {name} not found at {}: run 'cargo build --workspace --bins' first", path.display())]
    BinaryNotFound {
        /// File name of the binary.
        name: String,
        /// Where it was expected.
        path: PathBuf,
    },
    /// The host image the nodes boot was not built.
    #[error(
        "the host image's root filesystem {} is missing: build it with \
         'FLOTILLA_BIN_DIR=target/debug os/build.sh' (tests/test.sh does)",
        rootfs.display()
    )]
    OsRootfsMissing {
        /// Where it was expected.
        rootfs: PathBuf,
    },
    /// A file-system operation on the host failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done (`create`, `copy to`, ...).
        what: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Mounting or unmounting on the host failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Mount {
        /// `mount cgroup2 on` or `unmount`.
        what: &'static str,
        /// The mount point.
        path: PathBuf,
        /// The underlying error.
        source: nix::Error,
    },
    /// A command could not be started at all (missing binary, ...).
    #[error("cannot run `{cmd}` on {place}: {source}")]
    Spawn {
        /// `host` or `node NAME`.
        place: String,
        /// The command line.
        cmd: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A command ran and exited unsuccessfully.
    #[error("`{cmd}` failed on {place} ({status}): {stderr}")]
    CommandFailed {
        /// `host` or `node NAME`.
        place: String,
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// `unshare` never forked the node's PID 1, or it died during boot.
    #[error("node {node}: {what}; console log tail:\n{console}")]
    NodeDied {
        /// The node's hostname.
        node: String,
        /// What was observed.
        what: String,
        /// The last lines of the node's console log.
        console: String,
    },
    /// systemd did not reach `running` or `degraded` in time.
    #[error(
        "node {node} did not boot within {timeout:?}: systemd stuck in state '{state}'; \
         console log tail:\n{console}\njournal tail:\n{journal}"
    )]
    BootTimeout {
        /// The node's hostname.
        node: String,
        /// The boot timeout.
        timeout: Duration,
        /// The last answer of `systemctl is-system-running` (or why there was none).
        state: String,
        /// The last lines of the node's console log.
        console: String,
        /// The last lines of the node's journal, or why it could not be read.
        journal: String,
    },
    /// Tearing a node down left something behind.
    #[error("node {node} teardown left things behind: {}", leftovers.join("; "))]
    Teardown {
        /// The node's hostname.
        node: String,
        /// What could not be removed.
        leftovers: Vec<String>,
    },
}

/// Result of the harness.
pub type Result<T> = std::result::Result<T, HarnessError>;
