//! Finding and removing what test processes that died without tearing down left on the host
//! (`flotilla-cluster clean`).
//!
//! Everything the harness creates names its owner: node state dirs `/tmp/flotilla-tests/<pid>-<n>`,
//! cluster state dirs `cluster-<pid>-<n>` (etcd's data dirs are inside, so an etcd member is found
//! by its `--data-dir`), cgroups `flotilla-tests/<pid>-<n>` of the cgroup2 hierarchy, network
//! namespaces `flotilla-<pid>-<n>`; a subnet's bridge and veths belong to whoever holds its lock
//! ([`crate::network`]). A leftover is one whose owner is gone (no process, or a zombie) or, for a
//! subnet, whose lock nobody holds. Leftovers of live test processes are never touched.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::HarnessError;
use crate::etcd;
use crate::network::{self, NetworkError};
use crate::node::{
    alive, host_cmd, mounts_under, remove_cgroup_tree, CgroupProbe, CGROUP_PARENT, NETNS_PREFIX,
    STATE_ROOT,
};

/// How long processes of a killed cgroup may take to go.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why looking for or removing leftovers failed.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// A directory or file could not be read or removed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Processes of a cgroup survived `cgroup.kill`.
    #[error("processes of cgroup {} still run {KILL_TIMEOUT:?} after cgroup.kill", path.display())]
    Survivors {
        /// The cgroup, relative to the cgroup2 root.
        path: PathBuf,
    },
    /// A host command or mount failed.
    #[error(transparent)]
    Host(#[from] HarnessError),
    /// A subnet could not be released.
    #[error(transparent)]
    Network(#[from] NetworkError),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, CleanError>;

/// One thing a dead test process left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// An etcd member of a cluster whose test process is gone.
    Etcd {
        /// Its host pid.
        pid: u32,
        /// Its data dir.
        data_dir: PathBuf,
    },
    /// A node's cgroup, relative to the cgroup2 root, with the processes still in it (the node's
    /// systemd and everything it runs, `unshare`).
    NodeCgroup {
        /// `flotilla-tests/<pid>-<n>`.
        path: PathBuf,
        /// How many processes are in it.
        processes: usize,
    },
    /// A node's network namespace (in `/run/netns`).
    Netns(String),
    /// A subnet nobody holds, with its links (bridge, veth host ends) and lock file.
    Subnet {
        /// X of `10.213.X.0/24`.
        index: u8,
        /// Its links still on the host.
        links: Vec<String>,
    },
    /// A node's or cluster's state directory, with the mounts still under it.
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Mount points under it.
        mounts: Vec<String>,
    },
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leftover::Etcd { pid, data_dir } => {
                write!(f, "etcd process {pid} (data {})", data_dir.display())
            }
            Leftover::NodeCgroup { path, processes } => {
                write!(f, "node cgroup {} ({processes} processes)", path.display())
            }
            Leftover::Netns(name) => write!(f, "netns {name}"),
            Leftover::Subnet { index, links } if links.is_empty() => {
                write!(f, "subnet 10.213.{index}.0/24 (lock file only)")
            }
            Leftover::Subnet { index, links } => {
                write!(f, "subnet 10.213.{index}.0/24 (links {})", links.join(", "))
            }
            Leftover::StateDir { path, mounts } if mounts.is_empty() => {
                write!(f, "state dir {}", path.display())
            }
            Leftover::StateDir { path, mounts } => {
                write!(
                    f,
                    "state dir {} (mounts {})",
                    path.display(),
                    mounts.join(", ")
                )
            }
        }
    }
}

/// Every leftover of dead test processes, in the order [`remove`] must take them: processes,
/// then namespaces and links, then directories.
///
/// # Errors
/// [`CleanError`] if the cgroup2 hierarchy cannot be mounted to look into it.
pub fn find() -> Result<Vec<Leftover>> {
    let mut found = etcd_members();
    found.extend(node_cgroups(&CgroupProbe::mount()?));
    found.extend(
        owned_entries(Path::new("/run/netns"), NETNS_PREFIX)
            .into_iter()
            .map(Leftover::Netns),
    );
    found.extend(stale_subnets());
    found.extend(
        owned_entries(Path::new(STATE_ROOT), "")
            .into_iter()
            .map(|name| {
                let path = Path::new(STATE_ROOT).join(name);
                let mounts = mounts_under(&path);
                Leftover::StateDir { path, mounts }
            }),
    );
    Ok(found)
}

/// Removes one leftover found by [`find`].
///
/// # Errors
/// [`CleanError`] naming what could not be removed.
pub fn remove(leftover: &Leftover) -> Result<()> {
    match leftover {
        Leftover::Etcd { pid, .. } => {
            let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
            Ok(())
        }
        Leftover::NodeCgroup { path, .. } => kill_cgroup(path),
        Leftover::Netns(name) => Ok(host_cmd(&["ip", "netns", "del", name])?),
        Leftover::Subnet { index, .. } => {
            network::release_stale(*index)?;
            Ok(())
        }
        Leftover::StateDir { path, mounts } => {
            // Deepest first; a lazy unmount cannot fail on a busy mount.
            for mount in mounts.iter().rev() {
                let _ = umount2(mount.as_str(), MntFlags::MNT_DETACH);
            }
            fs::remove_dir_all(path).map_err(|source| CleanError::Io {
                what: "remove",
                path: path.clone(),
                source,
            })?;
            let _ = fs::remove_dir(STATE_ROOT);
            Ok(())
        }
    }
}

/// The pid of the test process that created an entry called `name`: `<pid>-<n>`,
/// `cluster-<pid>-<n>`, `probe-<pid>-<n>` (and `flotilla-<pid>-<n>` after the netns prefix is
/// stripped).
fn owner(name: &str) -> Option<u32> {
    let rest = ["cluster-", "probe-"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    rest.split('-').next()?.parse().ok()
}

/// Names of the entries of `dir` that start with `prefix` and whose owner is gone.
fn owned_entries(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix(prefix)
                .and_then(owner)
                .is_some_and(|pid| !alive(pid))
        })
        .collect();
    names.sort();
    names
}

/// etcd processes whose data dir is in the state dir of a cluster whose owner is gone.
fn etcd_members() -> Vec<Leftover> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_etcd = cmdline
            .first()
            .is_some_and(|argv0| Path::new(argv0).file_name().is_some_and(|n| n == "etcd"));
        let Some(data_dir) = etcd::data_dir(&cmdline).filter(|_| is_etcd) else {
            continue;
        };
        let cluster = data_dir
            .strip_prefix(STATE_ROOT)
            .ok()
            .and_then(|rest| rest.components().next())
            .and_then(|c| match c {
                Component::Normal(name) => name.to_str(),
                _ => None,
            });
        let gone = cluster
            .filter(|c| c.starts_with("cluster-"))
            .and_then(owner)
            .is_some_and(|owner| !alive(owner));
        if gone && alive(pid) {
            found.push(Leftover::Etcd {
                pid,
                data_dir: data_dir.to_path_buf(),
            });
        }
    }
    found
}

/// Subnets with links or a lock file that nobody holds.
fn stale_subnets() -> Vec<Leftover> {
    let mut indexes: Vec<u8> = fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| network::bridge_index(&name))
        .chain((0..=u8::MAX).filter(|i| network::lock_path(*i).exists()))
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    indexes
        .into_iter()
        .filter(|i| !network::subnet_held(*i))
        .map(|index| Leftover::Subnet {
            index,
            links: network::subnet_links(index),
        })
        .collect()
}

/// The cgroups of dead owners' nodes, looked into through `probe`.
fn node_cgroups(probe: &CgroupProbe) -> Vec<Leftover> {
    owned_entries(&probe.root().join(CGROUP_PARENT), "")
        .into_iter()
        .map(|name| {
            let path = Path::new(CGROUP_PARENT).join(name);
            let processes = processes(&probe.root().join(&path));
            Leftover::NodeCgroup { path, processes }
        })
        .collect()
}

/// Number of processes in the cgroup directory `dir` and below.
fn processes(dir: &Path) -> usize {
    let mut count = 0;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        count += fs::read_to_string(dir.join("cgroup.procs"))
            .map(|procs| procs.lines().count())
            .unwrap_or(0);
        dirs.extend(
            fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    count
}

/// Kills every process of the cgroup `rel` (`cgroup.kill`), waits until they are gone and
/// removes the cgroup tree.
fn kill_cgroup(rel: &Path) -> Result<()> {
    let probe = CgroupProbe::mount()?;
    let dir = probe.root().join(rel);
    let kill_file = dir.join("cgroup.kill");
    fs::write(&kill_file, "1").map_err(|source| CleanError::Io {
        what: "write",
        path: kill_file,
        source,
    })?;
    let deadline = Instant::now() + KILL_TIMEOUT;
    while processes(&dir) > 0 {
        if Instant::now() > deadline {
            return Err(CleanError::Survivors {
                path: rel.to_path_buf(),
            });
        }
        sleep(Duration::from_millis(20));
    }
    remove_cgroup_tree(&dir).map_err(|source| CleanError::Io {
        what: "remove cgroup",
        path: dir,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_names() {
        assert_eq!(owner("1234-0"), Some(1234));
        assert_eq!(owner("cluster-1234-2"), Some(1234));
        assert_eq!(owner("probe-99-3"), Some(99));
        assert_eq!(owner("lost+found"), None);
        assert_eq!(owner("cluster-"), None);
        assert_eq!(
            "flotilla-77-1".strip_prefix(NETNS_PREFIX).and_then(owner),
            Some(77)
        );
    }

    #[test]
    fn leftovers_say_what_they_are() {
        let subnet = Leftover::Subnet {
            index: 7,
            links: vec!["flt7-br".into(), "flt7-v1".into()],
        };
        assert_eq!(
            subnet.to_string(),
            "subnet 10.213.7.0/24 (links flt7-br, flt7-v1)"
        );
        let dir = Leftover::StateDir {
            path: "/tmp/flotilla-tests/5-0".into(),
            mounts: vec!["/tmp/flotilla-tests/5-0/cgroup2".into()],
        };
        assert_eq!(
            dir.to_string(),
            "state dir /tmp/flotilla-tests/5-0 (mounts /tmp/flotilla-tests/5-0/cgroup2)"
        );
    }
}
