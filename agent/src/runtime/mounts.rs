//! The spec's `mounts`, in order, inside the container's root file system (before pivot_root).
//!
//! Every destination is resolved inside the root ([`super::resolve`]) and created as a
//! directory, or as a file when a bind mount's source is not a directory; the mount goes onto
//! the resolved descriptor. Bind mounts take their other flags (`ro`, `nosuid` …) by a remount,
//! as mount(2) ignores them on the first call. A `cgroup` mount becomes, on v1 and hybrid hosts,
//! a read-only tmpfs holding read-only binds of the container's own v1 directories (and its
//! unified one as `unified`), and on a pure v2 host a cgroup2 mount in the container's cgroup
//! namespace.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use rustix::fs::symlinkat;

use super::resolve::{self, fd_path, Kind};
use super::{CgroupMembership, Step, StepError};

/// A mount's options, split into mount(2) flags, propagation and file system data.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub flags: MsFlags,
    pub propagation: MsFlags,
    pub data: String,
}

/// Splits OCI mount options (`ro`, `nosuid`, `rbind`, `rprivate`, `mode=755` …).
pub fn parse_options(options: &[String]) -> Options {
    let mut parsed = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: String::new(),
    };
    let mut data = Vec::new();
    for option in options {
        match flag(option) {
            Some((flag, true)) => parsed.flags |= flag,
            Some((flag, false)) => parsed.flags &= !flag,
            None => match propagation(option) {
                Some(flag) => parsed.propagation |= flag,
                None => data.push(option.as_str()),
            },
        }
    }
    parsed.data = data.join(",");
    parsed
}

/// The mount(2) flag an option sets (`true`) or clears (`false`).
fn flag(option: &str) -> Option<(MsFlags, bool)> {
    Some(match option {
        "ro" => (MsFlags::MS_RDONLY, true),
        "rw" => (MsFlags::MS_RDONLY, false),
        "nosuid" => (MsFlags::MS_NOSUID, true),
        "suid" => (MsFlags::MS_NOSUID, false),
        "nodev" => (MsFlags::MS_NODEV, true),
        "dev" => (MsFlags::MS_NODEV, false),
        "noexec" => (MsFlags::MS_NOEXEC, true),
        "exec" => (MsFlags::MS_NOEXEC, false),
        "sync" => (MsFlags::MS_SYNCHRONOUS, true),
        "async" => (MsFlags::MS_SYNCHRONOUS, false),
        "dirsync" => (MsFlags::MS_DIRSYNC, true),
        "mand" => (MsFlags::MS_MANDLOCK, true),
        "nomand" => (MsFlags::MS_MANDLOCK, false),
        "noatime" => (MsFlags::MS_NOATIME, true),
        "atime" => (MsFlags::MS_NOATIME, false),
        "nodiratime" => (MsFlags::MS_NODIRATIME, true),
        "diratime" => (MsFlags::MS_NODIRATIME, false),
        "relatime" => (MsFlags::MS_RELATIME, true),
        "norelatime" => (MsFlags::MS_RELATIME, false),
        "strictatime" => (MsFlags::MS_STRICTATIME, true),
        "nostrictatime" => (MsFlags::MS_STRICTATIME, false),
        "bind" => (MsFlags::MS_BIND, true),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, true),
        _ => return None,
    })
}

/// The propagation flags of a propagation option, `None` for anything else.
pub fn propagation(option: &str) -> Option<MsFlags> {
    Some(match option {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

const NONE: Option<&str> = None;

/// Mounts each of `mounts`, in order, inside `root`.
pub fn mount_all(
    root: BorrowedFd<'_>,
    mounts: &[Mount],
    cgroups: &CgroupMembership,
) -> Result<(), StepError> {
    mounts.iter().try_for_each(|m| mount_one(root, m, cgroups))
}

fn mount_one(root: BorrowedFd<'_>, m: &Mount, cgroups: &CgroupMembership) -> Result<(), StepError> {
    let typ = m.typ().as_deref().unwrap_or("");
    let destination = m.destination();
    let options = parse_options(m.options().as_deref().unwrap_or(&[]));
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, destination, &options, cgroups);
    }
    let bind = typ == "bind" || options.flags.contains(MsFlags::MS_BIND);
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let kind = if bind && !source.is_dir() {
        Kind::File
    } else {
        Kind::Directory
    };
    let target = resolve::open_or_create(root, destination, kind)
        .step(|| format!("create mount destination {destination:?}"))?;
    let describe = || format!("mount {source:?} on {destination:?}");
    if bind {
        let recursive = options.flags & MsFlags::MS_REC;
        mount(
            Some(&source),
            &fd_path(&target),
            NONE,
            MsFlags::MS_BIND | recursive,
            NONE,
        )
        .step(describe)?;
        let rest = options.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        if !rest.is_empty() {
            remount(root, destination, MsFlags::MS_BIND | rest)?;
        }
    } else {
        let data = Some(options.data.as_str()).filter(|d| !d.is_empty());
        mount(
            Some(&source),
            &fd_path(&target),
            Some(typ),
            options.flags,
            data,
        )
        .step(describe)?;
    }
    if !options.propagation.is_empty() {
        let mounted = resolve::open(root, destination).step(|| format!("open {destination:?}"))?;
        mount(NONE, &fd_path(&mounted), NONE, options.propagation, NONE)
            .step(|| format!("set the propagation of {destination:?}"))?;
    }
    Ok(())
}

/// Changes the flags of the mount on `destination` (reopened, so the new mount is reached).
fn remount(root: BorrowedFd<'_>, destination: &Path, flags: MsFlags) -> Result<(), StepError> {
    let mounted = resolve::open(root, destination).step(|| format!("open {destination:?}"))?;
    mount(
        NONE,
        &fd_path(&mounted),
        NONE,
        MsFlags::MS_REMOUNT | flags,
        NONE,
    )
    .step(|| format!("remount {destination:?} with {flags:?}"))
}

fn mount_cgroup(
    root: BorrowedFd<'_>,
    destination: &Path,
    options: &Options,
    cgroups: &CgroupMembership,
) -> Result<(), StepError> {
    let target = resolve::open_or_create(root, destination, Kind::Directory)
        .step(|| format!("create mount destination {destination:?}"))?;
    let locked = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if let (true, Some(_)) = (cgroups.v1.is_empty(), &cgroups.unified) {
        return mount(
            Some("cgroup2"),
            &fd_path(&target),
            Some("cgroup2"),
            options.flags | locked,
            NONE,
        )
        .step(|| format!("mount \"cgroup2\" on {destination:?}"));
    }
    mount(
        Some("tmpfs"),
        &fd_path(&target),
        Some("tmpfs"),
        locked,
        Some("mode=755"),
    )
    .step(|| format!("mount \"tmpfs\" on {destination:?}"))?;
    let unified = cgroups.unified.iter().map(|dir| ("unified", dir.as_path()));
    let v1 = cgroups
        .v1
        .iter()
        .map(|(name, dir)| (name.as_str(), dir.as_path()));
    for (name, dir) in v1.chain(unified) {
        let inside = destination.join(name);
        let sub = resolve::open_or_create(root, &inside, Kind::Directory)
            .step(|| format!("create mount destination {inside:?}"))?;
        mount(Some(dir), &fd_path(&sub), NONE, MsFlags::MS_BIND, NONE)
            .step(|| format!("mount {dir:?} on {inside:?}"))?;
        remount(
            root,
            &inside,
            MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked,
        )?;
        // `cpu,cpuacct` is also reached as `cpu` and `cpuacct`, as on the host.
        let mounted = resolve::open(root, destination).step(|| format!("open {destination:?}"))?;
        for alias in name.split(',').filter(|alias| *alias != name) {
            symlinkat(name, mounted.as_fd(), alias)
                .step(|| format!("link {alias:?} to {name:?} in {destination:?}"))?;
        }
    }
    remount(root, destination, MsFlags::MS_BIND | options.flags | locked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[&str]) -> Options {
        parse_options(&options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn a_read_only_volume_is_a_recursive_bind_made_private() {
        let options = parse(&["rbind", "rprivate", "ro"]);
        assert_eq!(
            options.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(options.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(options.data, "");
    }

    #[test]
    fn unknown_options_are_file_system_data_and_later_options_win() {
        let options = parse(&["nosuid", "ro", "mode=755", "size=65536k", "rw"]);
        assert_eq!(options.flags, MsFlags::MS_NOSUID);
        assert_eq!(options.data, "mode=755,size=65536k");
    }
}
