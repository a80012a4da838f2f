//! The container process's namespaces and cgroups: which namespaces clone creates, which are
//! joined by path (`--network container:X`, `docker exec`), and joining the cgroups first.
//!
//! Descriptors of namespaces to join are opened by the parent, before clone, so a bad path is
//! reported as such; the child only calls setns. The cgroup namespace is unshared by the child
//! after it joined its cgroups, so that the container's cgroup is the namespace's root.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::{io_errno, rustix_errno, CgroupMembership, Result, RuntimeError, Step, StepError};

/// What the container process does about namespaces.
#[derive(Debug)]
pub struct Namespaces {
    /// Created by clone.
    pub clone_flags: CloneFlags,
    /// The pid namespace to create the process in, instead of a new one or the caller's.
    pub pid: Option<OwnedFd>,
    /// Joined by the child with setns, in this order.
    pub join: Vec<(CloneFlags, OwnedFd)>,
    /// A new cgroup namespace, unshared after joining the cgroups.
    pub new_cgroup: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            clone_flags: CloneFlags::empty(),
            pid: None,
            join: Vec::new(),
            new_cgroup: false,
        }
    }
}

/// The namespaces of the spec's `linux.namespaces`.
pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<Namespaces> {
    let mut plan = Namespaces::default();
    for namespace in namespaces {
        let flag = flag(namespace.typ())?;
        match (namespace.path(), namespace.typ()) {
            (Some(path), LinuxNamespaceType::Pid) => plan.pid = Some(open(path)?),
            (Some(path), _) => plan.join.push((flag, open(path)?)),
            (None, LinuxNamespaceType::Cgroup) => plan.new_cgroup = true,
            (None, _) => plan.clone_flags |= flag,
        }
    }
    Ok(plan)
}

/// The namespaces of the running process `pid` (for `docker exec`), skipping those the caller
/// already shares; the mount namespace is joined last.
pub fn of_process(pid: Pid) -> Result<Namespaces> {
    let mut plan = Namespaces::default();
    let kinds = [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    for (name, flag) in kinds {
        let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let theirs = open(&path)?;
        let ours = open(Path::new(&format!("/proc/self/ns/{name}")))?;
        if same_file(&theirs, &ours, &path)? {
            continue;
        }
        if flag == CloneFlags::CLONE_NEWPID {
            plan.pid = Some(theirs);
        } else {
            plan.join.push((flag, theirs));
        }
    }
    Ok(plan)
}

fn flag(typ: LinuxNamespaceType) -> Result<CloneFlags> {
    Ok(match typ {
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        other => return Err(RuntimeError::UnsupportedNamespace(format!("{other:?}"))),
    })
}

fn open(path: &Path) -> Result<OwnedFd> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| RuntimeError::Namespace {
            path: path.to_owned(),
            errno: io_errno(&e),
        })
}

fn same_file(a: &OwnedFd, b: &OwnedFd, path: &Path) -> Result<bool> {
    let stat = |fd: &OwnedFd| {
        rustix::fs::fstat(fd).map_err(|errno| RuntimeError::Namespace {
            path: path.to_owned(),
            errno: rustix_errno(errno),
        })
    };
    let (a, b) = (stat(a)?, stat(b)?);
    Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
}

/// In the child: joins the cgroups (writes "0" to each directory's `cgroup.procs`), then the
/// namespaces to join, then unshares the new cgroup namespace.
pub fn enter(
    namespaces: &Namespaces,
    cgroups: &CgroupMembership,
) -> std::result::Result<(), StepError> {
    for dir in cgroups.dirs() {
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, "0").step(|| format!("join cgroup {:?}", dir))?;
    }
    for (flag, fd) in &namespaces.join {
        setns(fd.as_fd(), *flag).step(|| format!("join namespace {}", name(*flag)))?;
    }
    if namespaces.new_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).step(|| "unshare the cgroup namespace".to_owned())?;
    }
    Ok(())
}

fn name(flag: CloneFlags) -> &'static str {
    [
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWNET, "net"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWNS, "mnt"),
    ]
    .into_iter()
    .find(|(f, _)| *f == flag)
    .map_or("unknown", |(_, name)| name)
}

/// Whether the container process gets or joins a namespace of kind `flag`.
pub fn has(namespaces: &Namespaces, flag: CloneFlags) -> bool {
    namespaces.clone_flags.contains(flag) || namespaces.join.iter().any(|(f, _)| *f == flag)
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxNamespaceBuilder;

    use super::*;

    #[test]
    fn new_namespaces_are_cloned_and_the_cgroup_one_unshared_later() {
        let spec: Vec<_> = [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Cgroup,
        ]
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build().unwrap())
        .collect();
        let plan = from_spec(&spec).unwrap();
        assert_eq!(
            plan.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNET
        );
        assert!(plan.new_cgroup);
        assert!(plan.join.is_empty() && plan.pid.is_none());
    }

    #[test]
    fn a_namespace_path_that_does_not_exist_is_named() {
        let spec = [LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Network)
            .path("/proc/nonexistent/ns/net")
            .build()
            .unwrap()];
        let error = from_spec(&spec).unwrap_err();
        assert_eq!(
            error.to_string(),
            "open namespace \"/proc/nonexistent/ns/net\": no such file or directory"
        );
    }
}
