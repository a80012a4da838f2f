//! The container's `/dev`: the devices every container gets (null, zero, full, random, urandom,
//! tty) and `linux.devices`, made by mknod or, where mknod is refused, bind-mounted from the
//! host; then the usual symlinks (`fd`, `stdin`, `stdout`, `stderr`, `ptmx`).

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::{chmodat, chownat, makedev, mknodat, symlinkat, AtFlags, FileType, Mode};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use super::resolve::{self, fd_path, Kind};
use super::{Step, StepError};
use std::os::fd::BorrowedFd;

/// A device node to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: PathBuf,
    pub typ: FileType,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The character devices every container gets, read-write for everyone (runc's defaults).
const DEFAULTS: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The links every container's `/dev` holds.
const SYMLINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// The nodes to make: the defaults, except those `devices` redefines, then `devices`.
pub fn nodes(devices: &[LinuxDevice]) -> Vec<Node> {
    let defaults = DEFAULTS
        .iter()
        .filter(|(path, ..)| !devices.iter().any(|d| d.path() == Path::new(path)))
        .map(|&(path, major, minor)| Node {
            path: PathBuf::from(path),
            typ: FileType::CharacterDevice,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        });
    let given = devices.iter().filter_map(|device| {
        let typ = match device.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
            LinuxDeviceType::B => FileType::BlockDevice,
            LinuxDeviceType::P => FileType::Fifo,
            LinuxDeviceType::A => return None,
        };
        Some(Node {
            path: device.path().clone(),
            typ,
            major: u32::try_from(device.major()).unwrap_or(0),
            minor: u32::try_from(device.minor()).unwrap_or(0),
            mode: device.file_mode().unwrap_or(0o666) & 0o7777,
            uid: device.uid().unwrap_or(0),
            gid: device.gid().unwrap_or(0),
        })
    });
    defaults.chain(given).collect()
}

/// Makes `nodes` and the `/dev` symlinks inside `root`.
pub fn create(root: BorrowedFd<'_>, nodes: &[Node]) -> Result<(), StepError> {
    for node in nodes {
        make(root, node)?;
    }
    let dev = resolve::open_or_create(root, Path::new("/dev"), Kind::Directory)
        .step(|| "create \"/dev\"".to_owned())?;
    for (name, target) in SYMLINKS {
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => return Err(errno).step(|| format!("link \"/dev/{name}\" to {target:?}")),
        }
    }
    Ok(())
}

fn make(root: BorrowedFd<'_>, node: &Node) -> Result<(), StepError> {
    let path = &node.path;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Errno::INVAL).step(|| format!("make device {path:?}"));
    };
    let dir = resolve::open_or_create(root, parent, Kind::Directory)
        .step(|| format!("create {parent:?}"))?;
    let mode = Mode::from_raw_mode(node.mode);
    match mknodat(&dir, name, node.typ, mode, makedev(node.major, node.minor)) {
        Ok(()) | Err(Errno::EXIST) => {}
        // Without CAP_MKNOD (a user namespace, a restricted host): the host's node instead.
        Err(Errno::PERM) => return bind_from_host(root, path),
        Err(errno) => return Err(errno).step(|| format!("make device {path:?}")),
    }
    chmodat(&dir, name, mode, AtFlags::SYMLINK_NOFOLLOW)
        .or_else(|errno| match errno {
            // chmod of a symlink is not supported; the node was just made, so this is a race.
            Errno::OPNOTSUPP => Ok(()),
            errno => Err(errno),
        })
        .step(|| format!("change the mode of {path:?}"))?;
    chownat(
        &dir,
        name,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .step(|| format!("change the owner of {path:?}"))
}

fn bind_from_host(root: BorrowedFd<'_>, path: &Path) -> Result<(), StepError> {
    let target =
        resolve::open_or_create(root, path, Kind::File).step(|| format!("create {path:?}"))?;
    mount(
        Some(path),
        &fd_path(&target),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .step(|| format!("bind device {path:?} from the host"))
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::LinuxDeviceBuilder;

    use super::*;

    #[test]
    fn a_device_of_the_spec_replaces_the_default_of_the_same_path() {
        let fuse = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .build()
            .unwrap();
        let null = LinuxDeviceBuilder::default()
            .path("/dev/null")
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .file_mode(0o600u32)
            .build()
            .unwrap();
        let nodes = nodes(&[fuse, null]);
        let paths: Vec<_> = nodes.iter().map(|n| n.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty",
                "/dev/fuse",
                "/dev/null"
            ]
        );
        assert_eq!(nodes[6].mode, 0o600);
    }
}
