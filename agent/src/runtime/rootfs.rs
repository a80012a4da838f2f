//! The container's root file system as a whole: its mount (a bind of a directory or an
//! overlay), the propagation of the new mount namespace, pivot_root, and what is done to paths
//! once inside (masked paths, read-only paths, a read-only root).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, pivot_root};
use rustix::fs::{Mode, OFlags};

use super::mounts::propagation;
use super::{RootFs, Step, StepError};

const NONE: Option<&str> = None;

/// Makes the new mount namespace's propagation `rootfs_propagation` (private by default, so
/// nothing mounted here reaches the host), mounts the root file system at `path` and opens it.
pub fn prepare(
    path: &Path,
    rootfs: RootFs<'_>,
    rootfs_propagation: Option<&str>,
) -> Result<OwnedFd, StepError> {
    let flags = rootfs_propagation
        .and_then(propagation)
        .unwrap_or(MsFlags::MS_PRIVATE | MsFlags::MS_REC);
    mount(NONE, "/", NONE, flags, NONE).step(|| "set the propagation of \"/\"".to_owned())?;
    match rootfs {
        RootFs::Directory => mount(
            Some(path),
            path,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .step(|| format!("bind {path:?} onto itself"))?,
        RootFs::Overlay { lower, upper, work } => {
            let data = overlay_data(lower, upper, work)?;
            mount(
                Some("overlay"),
                path,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .step(|| format!("mount \"overlay\" on {path:?}"))?;
        }
    }
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .step(|| format!("open the root file system {path:?}"))
}

/// overlayfs's mount data: `lowerdir=A:B,upperdir=U,workdir=W`, lower dirs top-most first.
/// overlayfs has no escaping: a directory whose path holds `,` or `:` is refused.
pub fn overlay_data(lower: &[PathBuf], upper: &Path, work: &Path) -> Result<String, StepError> {
    let text = |dir: &Path| {
        dir.to_str()
            .filter(|text| !text.contains([',', ':']))
            .map(str::to_owned)
            .ok_or_else(|| StepError {
                step: format!("overlay directory {dir:?} (a ',', ':' or non-UTF-8 path)"),
                errno: Errno::EINVAL,
            })
    };
    let lower = lower
        .iter()
        .map(|dir| text(dir))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        text(upper)?,
        text(work)?
    ))
}

/// Makes `path` the process's root and detaches the old one.
pub fn pivot(path: &Path) -> Result<(), StepError> {
    chdir(path).step(|| format!("change directory to {path:?}"))?;
    pivot_root(".", ".").step(|| format!("pivot_root to {path:?}"))?;
    umount2(".", MntFlags::MNT_DETACH).step(|| "detach the old root".to_owned())?;
    chdir("/").step(|| "change directory to \"/\"".to_owned())
}

/// Hides each of `paths` that exists: a directory under an empty read-only tmpfs, a file under
/// `/dev/null`.
pub fn mask(paths: &[String]) -> Result<(), StepError> {
    for path in paths.iter().map(Path::new) {
        let Ok(metadata) = std::fs::metadata(path) else {
            continue;
        };
        if metadata.is_dir() {
            mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, NONE)
        } else {
            mount(Some("/dev/null"), path, NONE, MsFlags::MS_BIND, NONE)
        }
        .step(|| format!("mask {path:?}"))?;
    }
    Ok(())
}

/// Makes each of `paths` that exists read-only.
pub fn make_read_only(paths: &[String]) -> Result<(), StepError> {
    for path in paths.iter().map(Path::new).filter(|path| path.exists()) {
        mount(
            Some(path),
            path,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .step(|| format!("bind {path:?} onto itself"))?;
        let read_only = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC;
        mount(NONE, path, NONE, read_only, NONE).step(|| format!("make {path:?} read-only"))?;
    }
    Ok(())
}

/// Makes the container's `/` read-only (`--read-only`).
pub fn make_root_read_only() -> Result<(), StepError> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    mount(NONE, "/", NONE, flags, NONE).step(|| "make \"/\" read-only".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_data_lists_lower_dirs_top_most_first() {
        let lower = [PathBuf::from("/l/top"), PathBuf::from("/l/base")];
        let data = overlay_data(&lower, Path::new("/u"), Path::new("/w")).unwrap();
        assert_eq!(data, "lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w");
    }

    #[test]
    fn an_overlay_dir_with_a_separator_is_refused() {
        let lower = [PathBuf::from("/l/a,b")];
        let error = overlay_data(&lower, Path::new("/u"), Path::new("/w")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "overlay directory \"/l/a,b\" (a ',', ':' or non-UTF-8 path): invalid argument"
        );
    }
}
