//! A container's root file system as the container sees it at `/`, without its mounts
//! (volumes, `/proc`, `/dev` …), for reading from outside: what `flotilla export` writes.
//!
//! The image's layers and the container's writable layer are stacked read-only in one overlay
//! (its upper directory as the top-most lower one, so its whiteouts hide what the container
//! deleted) and mounted on the container's `rootfs/` directory in a mount namespace of its own,
//! made by one thread that unshares it and makes `/` private first: the host's mount table never
//! shows the mount, and it vanishes with the thread's namespace, however the reader ends. The
//! container may be running or stopped: a read-only overlay takes no lock on its directories.

use std::path::{Path, PathBuf};
use std::thread;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::store::ContainerStore;
use super::{launch, ContainersError};

/// Why a container's root file system could not be mounted for reading; each names the step.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(
        "cannot unshare a mount namespace to mount the root file system of container {id}: {errno}"
    )]
    Unshare { id: String, errno: Errno },
    #[error("cannot make \"/\" private in the mount namespace reading container {id}: {errno}")]
    Private { id: String, errno: Errno },
    #[error("overlay directory {} of container {id}: a ',', ':' or non-UTF-8 path", dir.display())]
    Directory { id: String, dir: PathBuf },
    #[error("cannot mount the root file system of container {id} on {}: {errno}", target.display())]
    Mount {
        id: String,
        target: PathBuf,
        errno: Errno,
    },
}

/// Runs `read` on the root file system of container `id`, mounted read-only at a path only
/// `read` sees (it runs on a thread of its own); `read`'s result comes back.
///
/// ```no_run
/// use agent::containers::{rootfs_view, store::ContainerStore};
///
/// let data_root = std::path::Path::new("/var/lib/flotilla");
/// let store = ContainerStore::open(data_root)?;
/// let id = store.resolve("web")?;
/// let names = rootfs_view::read(data_root, &store, &id, |root| std::fs::read_dir(root).map(|d| d.count()))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read<T: Send>(
    data_root: &Path,
    store: &ContainerStore,
    id: &str,
    read: impl FnOnce(&Path) -> T + Send,
) -> Result<T, ContainersError> {
    let prepared = launch::prepare(data_root, store, id)?;
    let layers: Vec<&Path> = std::iter::once(prepared.upper.as_path())
        .chain(prepared.lower.iter().map(PathBuf::as_path))
        .collect();
    let data = overlay_data(id, &layers)?;
    let target = store.dir(id).join("rootfs");
    thread::scope(|scope| {
        let reader = scope.spawn(|| mount_private(id, &data, &target).map(|()| read(&target)));
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
    .map_err(ContainersError::from)
}

/// In a new mount namespace of the calling thread: `/` private, then the overlay at `target`.
fn mount_private(id: &str, data: &str, target: &Path) -> Result<(), ViewError> {
    const NONE: Option<&str> = None;
    let id = id.to_owned();
    unshare(CloneFlags::CLONE_NEWNS).map_err(|errno| ViewError::Unshare {
        id: id.clone(),
        errno,
    })?;
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE).map_err(|errno| {
        ViewError::Private {
            id: id.clone(),
            errno,
        }
    })?;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(data),
    )
    .map_err(|errno| ViewError::Mount {
        id,
        target: target.to_owned(),
        errno,
    })
}

/// A read-only overlay's mount data: `lowerdir=TOP:…:BOTTOM`. overlayfs has no escaping, so a
/// directory whose path holds `,` or `:` is refused.
fn overlay_data(id: &str, layers: &[&Path]) -> Result<String, ViewError> {
    let dirs = layers
        .iter()
        .map(|dir| {
            dir.to_str()
                .filter(|text| !text.contains([',', ':']))
                .ok_or_else(|| ViewError::Directory {
                    id: id.to_owned(),
                    dir: dir.to_path_buf(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!("lowerdir={}", dirs.join(":")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writable_layer_goes_on_top_of_the_image() {
        let layers = [
            Path::new("/data/containers/abc/upper"),
            Path::new("/data/image/layers/2/diff"),
            Path::new("/data/image/layers/1/diff"),
        ];
        assert_eq!(
            overlay_data("abc", &layers).unwrap(),
            "lowerdir=/data/containers/abc/upper:/data/image/layers/2/diff:/data/image/layers/1/diff"
        );
        assert_eq!(
            overlay_data("abc", &[Path::new("/odd:dir/upper")])
                .unwrap_err()
                .to_string(),
            "overlay directory /odd:dir/upper of container abc: a ',', ':' or non-UTF-8 path"
        );
    }
}
