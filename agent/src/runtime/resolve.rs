//! Paths inside the container's root file system, resolved without ever leaving it.
//!
//! An image may hold symlinks such as `/data -> /../../etc`: followed from the host, a mount on
//! `/data` would land on the host's `/etc` (runc CVE-2021-30465). Every lookup here goes through
//! openat2 with `RESOLVE_IN_ROOT`, so symlinks and `..` resolve as if the root file system were
//! `/`; missing components are created beside the descriptor of their resolved parent, and a
//! dangling symlink has its target created inside the root. Mounts then go onto the returned
//! descriptor through `/proc/self/fd/N`.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{mkdirat, openat, openat2, readlinkat, Mode, OFlags, ResolveFlags};
use rustix::io::{Errno, Result};

/// Symlinks and components followed before giving up with `ELOOP`.
const MAX_STEPS: usize = 255;

/// What to create for a missing last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File,
}

/// Opens `path` inside `root` (`O_PATH`), symlinks resolving inside the root.
pub fn open(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd> {
    open_with(root, path, OFlags::empty())
}

fn open_with(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> Result<OwnedFd> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    openat2(
        root,
        relative,
        OFlags::PATH | OFlags::CLOEXEC | flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens `path` inside `root` like [`open`], first creating what is missing: directories on
/// the way and the last component as `kind`.
pub fn open_or_create(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> Result<OwnedFd> {
    let mut pending: VecDeque<OsString> = components(path).collect();
    let mut done = PathBuf::from("/");
    let mut steps = 0;
    while let Some(name) = pending.pop_front() {
        steps += 1;
        if steps > MAX_STEPS {
            return Err(Errno::LOOP);
        }
        let candidate = done.join(&name);
        match open(root, &candidate) {
            Ok(_) => {
                done = candidate;
                continue;
            }
            Err(Errno::NOENT) => {}
            Err(errno) => return Err(errno),
        }
        let parent = open_with(root, &done, OFlags::DIRECTORY)?;
        match readlinkat(&parent, &name, Vec::new()) {
            Ok(target) => {
                // A dangling symlink: go on with its target, created inside the root.
                let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                if target.is_absolute() {
                    done = PathBuf::from("/");
                }
                for component in components(&target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(component);
                }
                continue;
            }
            Err(Errno::INVAL | Errno::NOENT) => {}
            Err(errno) => return Err(errno),
        }
        let created = if pending.is_empty() && kind == Kind::File {
            openat(
                &parent,
                &name,
                OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o644),
            )
            .map(drop)
        } else {
            mkdirat(&parent, &name, Mode::from_raw_mode(0o755))
        };
        match created {
            Ok(()) | Err(Errno::EXIST) => done = candidate,
            Err(errno) => return Err(errno),
        }
    }
    open(root, &done)
}

/// The components of `path` that name something: `..` is kept (it resolves inside the root),
/// `/` and `.` are dropped.
fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|component| match component {
        Component::Normal(name) => Some(name.to_owned()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// The magic link through which the kernel reaches what `fd` refers to, for mount(2).
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::fd::AsFd;

    use super::*;

    fn root_fd(dir: &Path) -> OwnedFd {
        rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn a_symlink_escaping_the_root_is_created_inside_it() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let escape = outside.path().join("escape");
        std::os::unix::fs::symlink(
            Path::new("/../../..").join(escape.strip_prefix("/").unwrap()),
            root.path().join("link"),
        )
        .unwrap();
        let fd = open_or_create(
            root_fd(root.path()).as_fd(),
            Path::new("/link/sub"),
            Kind::File,
        )
        .unwrap();
        assert!(!escape.exists(), "created on the host: {escape:?}");
        let inside = root
            .path()
            .join(escape.strip_prefix("/").unwrap())
            .join("sub");
        assert!(inside.is_file(), "{inside:?} missing");
        assert_eq!(fs::read_link(fd_path(&fd)).unwrap(), inside);
    }

    #[test]
    fn existing_directories_are_opened_and_missing_ones_created() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("etc")).unwrap();
        let fd = open_or_create(
            root_fd(root.path()).as_fd(),
            Path::new("/etc/a/b"),
            Kind::Directory,
        )
        .unwrap();
        assert!(root.path().join("etc/a/b").is_dir());
        assert_eq!(
            fs::read_link(fd_path(&fd)).unwrap(),
            root.path().join("etc/a/b")
        );
    }
}
