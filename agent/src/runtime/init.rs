//! Starting a container: what the container's init does between clone and execve, in runc's
//! order.
//!
//! Cgroups are joined before the cgroup namespace is unshared; the hostname is set; the root
//! file system and the spec's mounts are set up in the new mount namespace, then `/dev`;
//! pivot_root; the terminal, if asked for, comes from the container's own devpts; sysctls, then
//! read-only and masked paths (the sysctls write under `/proc/sys`, which becomes read-only); a
//! read-only root; the working directory is created if missing (as docker does for WORKDIR);
//! the rest is [`super::exec::finish`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::sethostname;
use oci_spec::runtime::{Linux, Process, Root, Spec};

use super::devices::{self, Node};
use super::namespaces::{self, Namespaces};
use super::terminal::{self, Channel};
use super::{
    exec, mounts, process, rootfs, Launch, Result, RuntimeError, Started, Step, StepError,
};

/// What the child needs, prepared by the parent before clone.
struct Plan<'a> {
    launch: &'a Launch<'a>,
    process: &'a Process,
    root: &'a Root,
    linux: &'a Linux,
    namespaces: Namespaces,
    nodes: Vec<Node>,
    terminal: Option<Channel>,
}

/// Starts the container's init; see [`super::spawn`].
pub fn start(launch: Launch<'_>) -> Result<Started> {
    let spec: &Spec = launch.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or(RuntimeError::MissingField("process"))?;
    let root = spec
        .root()
        .as_ref()
        .ok_or(RuntimeError::MissingField("root"))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or(RuntimeError::MissingField("linux"))?;
    let namespaces = namespaces::from_spec(linux.namespaces().as_deref().unwrap_or(&[]))?;
    if !namespaces::has(&namespaces, CloneFlags::CLONE_NEWNS) {
        return Err(RuntimeError::MissingField("mount namespace"));
    }
    let plan = Plan {
        launch: &launch,
        process,
        root,
        linux,
        nodes: devices::nodes(linux.devices().as_deref().unwrap_or(&[])),
        terminal: terminal::channel_if_wanted(process)?,
        namespaces,
    };
    let pid = process::start(
        plan.namespaces.clone_flags,
        plan.namespaces.pid.as_ref().map(AsFd::as_fd),
        || child(&plan),
    )?;
    Ok(Started {
        pid,
        terminal: plan.terminal.map(terminal::receive).transpose()?,
    })
}

fn child(plan: &Plan<'_>) -> std::result::Result<Infallible, StepError> {
    let launch = plan.launch;
    let spec = launch.spec;
    terminal::attach(&launch.stdio)?;
    namespaces::enter(&plan.namespaces, launch.cgroups)?;
    if let Some(hostname) = spec.hostname() {
        if !namespaces::has(&plan.namespaces, CloneFlags::CLONE_NEWUTS) {
            return Err(StepError {
                step: format!("set hostname {hostname:?} without a uts namespace"),
                errno: Errno::EINVAL,
            });
        }
        sethostname(hostname).step(|| format!("set hostname {hostname:?}"))?;
    }
    let path = plan.root.path();
    let root = rootfs::prepare(
        path,
        launch.rootfs,
        plan.linux.rootfs_propagation().as_deref(),
    )?;
    let spec_mounts = spec.mounts().as_deref().unwrap_or(&[]);
    mounts::mount_all(root.as_fd(), spec_mounts, launch.cgroups)?;
    devices::create(root.as_fd(), &plan.nodes)?;
    drop(root);
    rootfs::pivot(path)?;
    if let Some(channel) = &plan.terminal {
        terminal::create(channel, true)?;
    }
    if let Some(sysctls) = plan.linux.sysctl() {
        write_sysctls(sysctls)?;
    }
    rootfs::make_read_only(plan.linux.readonly_paths().as_deref().unwrap_or(&[]))?;
    rootfs::mask(plan.linux.masked_paths().as_deref().unwrap_or(&[]))?;
    if plan.root.readonly().unwrap_or(false) {
        rootfs::make_root_read_only()?;
    }
    let cwd = plan.process.cwd();
    std::fs::create_dir_all(cwd).step(|| format!("create working directory {cwd:?}"))?;
    exec::finish(plan.process)
}

/// The file under `/proc/sys` of a sysctl key (`net.ipv4.ping_group_range`).
fn sysctl_path(key: &str) -> Option<PathBuf> {
    let valid = !key.is_empty()
        && key
            .split('.')
            .all(|part| !part.is_empty() && part != ".." && !part.contains('/'));
    valid.then(|| PathBuf::from("/proc/sys").join(key.replace('.', "/")))
}

fn write_sysctls(sysctls: &HashMap<String, String>) -> std::result::Result<(), StepError> {
    for (key, value) in sysctls {
        let path = sysctl_path(key).ok_or_else(|| StepError {
            step: format!("sysctl {key:?}"),
            errno: Errno::EINVAL,
        })?;
        std::fs::write(&path, value).step(|| format!("set sysctl {key} to {value:?}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sysctl_key_names_a_file_under_proc_sys() {
        assert_eq!(
            sysctl_path("net.ipv4.ping_group_range"),
            Some(PathBuf::from("/proc/sys/net/ipv4/ping_group_range"))
        );
    }

    #[test]
    fn a_sysctl_key_cannot_leave_proc_sys() {
        assert_eq!(sysctl_path("net../../etc"), None);
        assert_eq!(sysctl_path("kernel/../x"), None);
        assert_eq!(sysctl_path(""), None);
    }
}
