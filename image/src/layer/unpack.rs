//! Unpacking one layer tarball (gzip, zstd or plain tar) into a directory, refusing every entry
//! that would land outside it.
//!
//! # Path safety
//!
//! Every entry path is first cleaned lexically, as docker does: a leading `/` and `.` components
//! are dropped and `a/..` pairs cancel; a `..` that would climb above the target is refused
//! ([`UnpackError::Escapes`]). The cleaned path then never holds `..`, but it may still cross
//! symlinks that earlier entries created.
//!
//! Such paths are resolved by the kernel, not by us: the parent directory of each entry is opened
//! with `openat2(target_fd, parent, O_PATH | O_DIRECTORY, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! and the entry is then created relative to that fd with a single-component name (`openat` with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`, `mkdirat`, `symlinkat`, `mknodat`, `linkat`, and the
//! `AT_SYMLINK_NOFOLLOW` forms of `fchownat`/`utimensat`). `RESOLVE_BENEATH` rather than
//! `RESOLVE_IN_ROOT` because a symlink that leaves the target (`link -> /etc`, `link -> ../..`)
//! must make `link/passwd` an error, not be silently reinterpreted inside the target; symlinks
//! that stay inside still work. The kernel check is race-free (CVE-2018-15664, CVE-2019-14271),
//! and a component-by-component walk is only used to name the offending symlink in the error
//! after the kernel said `EXDEV`. An existing path is never written through: a non-directory (or
//! a directory that is not replaced by a directory) is removed first, as docker does, so the
//! final component is always created fresh.
//!
//! Symlink entries may point anywhere: they are created, never followed. A hard link's target
//! must resolve inside the target with the same `openat2` rules, following a final symlink too,
//! so `h -> s` with `s -> /etc/shadow` is refused as well.
//!
//! Directory modes, owners and mtimes are applied after the last entry (children first), so that
//! creating their contents neither fails on a read-only directory nor bumps their mtime.
//! Ownership and device nodes need root; without it owners are left alone and devices are
//! skipped and counted in [`UnpackStats::skipped_devices`]. `trusted.overlay.*` xattrs in the
//! tarball are dropped: only whiteout conversion may set them.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use tar::EntryType;

use crate::compression::{self, sniff};
use crate::digest::{Digest, Sha256Digester};

use super::whiteout::{self, Whiteout, WhiteoutMode};

/// Errors of [`unpack`]; each names the entry it is about.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The entry path climbs above the target with `..`.
    #[error("entry {entry:?} escapes the target directory")]
    Escapes {
        /// The entry path as written in the tarball.
        entry: PathBuf,
    },
    /// The entry's parent path crosses a symlink that resolves outside the target.
    #[error("entry {entry:?} goes through symlink {symlink:?} that leaves the target")]
    ThroughSymlink {
        /// The entry path as written in the tarball.
        entry: PathBuf,
        /// The symlink, relative to the target.
        symlink: PathBuf,
    },
    /// A hard link whose target is (or resolves) outside the target directory.
    #[error("hard link {entry:?} points outside the target: {target:?}")]
    HardLinkOutside {
        /// The hard link entry path.
        entry: PathBuf,
        /// The link target as written in the tarball.
        target: PathBuf,
    },
    /// A whiteout that names no file (`.wh.`, `.wh..`, `.wh...`).
    #[error("whiteout {entry:?} does not name a file in its directory")]
    BadWhiteout {
        /// The whiteout entry path.
        entry: PathBuf,
    },
    /// The layer uses a compression this crate does not read.
    #[error("layer is compressed with {0}, which is not supported (only gzip and zstd)")]
    UnsupportedCompression(&'static str),
    /// The stream is not a valid (compressed) tarball.
    #[error("corrupt tar: {0}")]
    CorruptTar(#[source] io::Error),
    /// A filesystem operation failed.
    #[error("io error at {path:?}: {source}")]
    Io {
        /// The entry path (or the target directory).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Result of this module.
pub type Result<T, E = UnpackError> = std::result::Result<T, E>;

/// How to unpack a layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackOptions {
    /// What whiteout entries become.
    pub whiteouts: WhiteoutMode,
}

/// What [`unpack`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// The sha256 digest of the uncompressed tar stream, trailing padding included: the
    /// layer's diff ID, which the image config lists in `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// Tar entries read, whiteouts and skipped ones included.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Character and block devices skipped because we are not root.
    pub skipped_devices: u64,
    /// Extended attributes the filesystem refused (`ENOTSUP`, or `EPERM` when not root).
    pub xattrs_unsupported: u64,
}

/// Unpacks one layer tarball from `reader` into the existing directory `target`.
///
/// The compression (gzip, zstd or none) is detected from the first bytes; the layer is streamed,
/// never held in memory. Entries that would land outside `target` are refused (see the module
/// documentation); on error, entries before the failing one stay unpacked.
///
/// ```no_run
/// use std::fs::File;
/// use std::path::Path;
/// use image::layer::{unpack, UnpackOptions};
///
/// let layer = File::open("layer.tar.gz")?;
/// let stats = unpack(layer, Path::new("/var/lib/flotilla/layers/abc"), &UnpackOptions::default())?;
/// println!("{} entries, {} bytes", stats.entries, stats.bytes);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn unpack(reader: impl Read, target: &Path, options: &UnpackOptions) -> Result<UnpackStats> {
    let root = rfs::open(
        target,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(target, e))?;
    let mut tar_stream = DigestingReader {
        inner: decompress(reader)?,
        digester: Sha256Digester::default(),
    };
    let mut unpacker = Unpacker {
        root,
        mode: options.whiteouts,
        is_root: rustix::process::geteuid().is_root(),
        counts: Counts::default(),
        dirs: Vec::new(),
        seen: HashSet::new(),
    };
    for entry in tar::Archive::new(&mut tar_stream)
        .entries()
        .map_err(UnpackError::CorruptTar)?
    {
        let mut entry = entry.map_err(UnpackError::CorruptTar)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish()?;
    // The diff ID covers the whole stream: the end-of-archive blocks and any padding after them.
    io::copy(&mut tar_stream, &mut io::sink()).map_err(UnpackError::CorruptTar)?;
    let Counts {
        entries,
        bytes,
        skipped_devices,
        xattrs_unsupported,
    } = unpacker.counts;
    Ok(UnpackStats {
        diff_id: tar_stream.digester.finish(),
        entries,
        bytes,
        skipped_devices,
        xattrs_unsupported,
    })
}

/// The counters of [`UnpackStats`], kept while unpacking.
#[derive(Debug, Default)]
struct Counts {
    entries: u64,
    bytes: u64,
    skipped_devices: u64,
    xattrs_unsupported: u64,
}

/// Hashes everything read through it.
struct DigestingReader<R> {
    inner: R,
    digester: Sha256Digester,
}

impl<R: Read> Read for DigestingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
}

/// Wraps `reader` in the decompressor its magic bytes call for.
fn decompress<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let (compression, stream) = sniff(reader).map_err(UnpackError::CorruptTar)?;
    if let Some(name) = compression::unsupported(stream.get_ref().0.get_ref()) {
        return Err(UnpackError::UnsupportedCompression(name));
    }
    compression.decoder(stream).map_err(UnpackError::CorruptTar)
}

/// Cleans an entry path lexically: drops `/` and `.`, cancels `a/..`; `None` if a `..` climbs
/// above the root.
pub(crate) fn clean(raw: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(name) => out.push(name),
        }
    }
    Some(out)
}

/// Metadata of a directory entry, applied once every entry is unpacked.
struct DirMeta {
    rel: PathBuf,
    entry: PathBuf,
    mode: u32,
    owner: Option<(Uid, Gid)>,
    mtime: i64,
}

/// State of one [`unpack`] call.
struct Unpacker {
    root: OwnedFd,
    mode: WhiteoutMode,
    is_root: bool,
    counts: Counts,
    dirs: Vec<DirMeta>,
    /// Paths this layer created (for opaque whiteouts in [`WhiteoutMode::Apply`]).
    seen: HashSet<PathBuf>,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

fn io_err(path: &Path, errno: Errno) -> UnpackError {
    UnpackError::Io {
        path: path.to_path_buf(),
        source: errno.into(),
    }
}

/// `openat2` below the target, retrying the `EAGAIN` the kernel returns on concurrent renames.
fn open_beneath(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let mut tries = 0;
    loop {
        match rfs::openat2(root, rel, flags | OFlags::CLOEXEC, Mode::empty(), RESOLVE) {
            Err(Errno::AGAIN) if tries < 8 => tries += 1,
            other => return other,
        }
    }
}

/// Removes `name` in `dir` and everything under it, never following symlinks.
fn remove_all(dir: BorrowedFd<'_>, name: &OsStr) -> rustix::io::Result<()> {
    let stat = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return rfs::unlinkat(dir, name, AtFlags::empty());
    }
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for child in children(fd.as_fd())? {
        remove_all(fd.as_fd(), &child)?;
    }
    rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// The names in a directory, without `.` and `..`.
fn children(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for child in rfs::Dir::read_from(dir)? {
        let child = child?;
        let name = child.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

fn timestamps(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Unpacker {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        self.counts.entries += 1;
        let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
        let rel = clean(&raw).ok_or_else(|| UnpackError::Escapes { entry: raw.clone() })?;
        let kind = entry.header().entry_type();

        let Some(name) = rel.file_name().map(OsStr::to_owned) else {
            // The target directory itself ("./"): only its metadata can change.
            if kind == EntryType::Directory {
                let pax = pax_records(entry)?;
                let header = entry.header();
                let meta = DirMeta {
                    rel: PathBuf::new(),
                    entry: raw.clone(),
                    mode: header.mode().map_err(UnpackError::CorruptTar)? & 0o7777,
                    owner: self.owner(header, &pax)?,
                    mtime: mtime(header, &pax)?,
                };
                let fd = open_beneath(self.root.as_fd(), Path::new(""), OFlags::RDONLY)
                    .map_err(|e| io_err(&raw, e))?;
                self.set_xattrs_fd(fd.as_fd(), &raw, &pax.xattrs)?;
                self.dirs.push(meta);
            }
            return Ok(());
        };

        match whiteout::classify(&name) {
            Whiteout::None => {}
            Whiteout::Meta => return Ok(()),
            Whiteout::Invalid => return Err(UnpackError::BadWhiteout { entry: raw }),
            Whiteout::Opaque => return self.opaque(&raw, &rel),
            Whiteout::Remove(victim) => return self.remove(&raw, &rel, victim),
        }

        let pax = pax_records(entry)?;
        let parent = self.open_parent(&raw, &rel, true)?;
        let parent = parent.as_fd();
        if self.mode == WhiteoutMode::Apply {
            // Implicit parents are this layer's too: an opaque marker must not remove them.
            for ancestor in rel.ancestors().filter(|a| !a.as_os_str().is_empty()) {
                if !self.seen.insert(ancestor.to_path_buf()) {
                    break;
                }
            }
        }
        let header = entry.header();
        let mode = header.mode().map_err(UnpackError::CorruptTar)? & 0o7777;
        let mtime = mtime(header, &pax)?;
        let owner = self.owner(header, &pax)?;
        let xattrs = pax.xattrs;
        let at = |e: Errno| io_err(&raw, e);

        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let create = || {
                    rfs::openat(
                        parent,
                        &name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                };
                // Most entries are new: create first, and only on EEXIST replace what is there.
                let fd = match create() {
                    Err(Errno::EXIST) => {
                        self.replace(parent, &name, &raw, false)?;
                        create()
                    }
                    created => created,
                }
                .map_err(at)?;
                let mut file = File::from(fd);
                self.counts.bytes += copy(entry, &mut file, &raw)?;
                if let Some((uid, gid)) = owner {
                    rfs::fchown(&file, Some(uid), Some(gid)).map_err(at)?;
                }
                rfs::fchmod(&file, Mode::from_raw_mode(mode)).map_err(at)?;
                self.set_xattrs_fd(file.as_fd(), &raw, &xattrs)?;
                rfs::futimens(&file, &timestamps(mtime)).map_err(at)?;
            }
            EntryType::Directory => {
                let mkdir = || rfs::mkdirat(parent, &name, Mode::from_raw_mode(0o700));
                match mkdir() {
                    Err(Errno::EXIST) if !self.replace(parent, &name, &raw, true)? => {
                        mkdir().map_err(at)?;
                    }
                    Err(Errno::EXIST) | Ok(()) => {}
                    Err(e) => return Err(at(e)),
                }
                let fd = rfs::openat(
                    parent,
                    &name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(at)?;
                self.set_xattrs_fd(fd.as_fd(), &raw, &xattrs)?;
                self.dirs.push(DirMeta {
                    rel,
                    entry: raw,
                    mode,
                    owner,
                    mtime,
                });
            }
            EntryType::Symlink => {
                let link = entry.link_name_bytes().unwrap_or_default();
                self.replace(parent, &name, &raw, false)?;
                rfs::symlinkat(OsStr::from_bytes(&link), parent, &name).map_err(at)?;
                self.finish_node(parent, &name, &raw, owner, None, mtime, &xattrs)?;
            }
            EntryType::Link => {
                let link = entry.link_name_bytes().unwrap_or_default();
                let link = PathBuf::from(OsStr::from_bytes(&link));
                self.hard_link(parent, &name, &raw, &link)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                if file_type != FileType::Fifo && !self.is_root {
                    self.counts.skipped_devices += 1;
                    return Ok(());
                }
                // A FIFO has no device numbers, and some writers leave the fields empty.
                let dev = if file_type == FileType::Fifo {
                    rfs::makedev(0, 0)
                } else {
                    let major = header.device_major().map_err(UnpackError::CorruptTar)?;
                    let minor = header.device_minor().map_err(UnpackError::CorruptTar)?;
                    rfs::makedev(major.unwrap_or(0), minor.unwrap_or(0))
                };
                self.replace(parent, &name, &raw, false)?;
                rfs::mknodat(parent, &name, file_type, Mode::from_raw_mode(0o600), dev)
                    .map_err(at)?;
                self.finish_node(parent, &name, &raw, owner, Some(mode), mtime, &xattrs)?;
            }
            // PAX global headers and other metadata-only or unknown types carry no file.
            _ => {}
        }
        Ok(())
    }

    /// Owner to set from the header (or its PAX `uid`/`gid` records), when we may (root) at all.
    fn owner(&self, header: &tar::Header, pax: &Pax) -> Result<Option<(Uid, Gid)>> {
        if !self.is_root {
            return Ok(None);
        }
        let id = |v: u64| {
            u32::try_from(v)
                .ok()
                .filter(|&v| v != u32::MAX)
                .ok_or_else(|| {
                    UnpackError::CorruptTar(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("id {v} out of range"),
                    ))
                })
        };
        let uid = match pax.uid {
            Some(uid) => uid,
            None => header.uid().map_err(UnpackError::CorruptTar)?,
        };
        let gid = match pax.gid {
            Some(gid) => gid,
            None => header.gid().map_err(UnpackError::CorruptTar)?,
        };
        let (uid, gid) = (id(uid)?, id(gid)?);
        Ok(Some((Uid::from_raw(uid), Gid::from_raw(gid))))
    }

    /// Owner, mode, xattrs and mtime of a symlink, device or FIFO just created as `name`.
    #[allow(clippy::too_many_arguments)]
    fn finish_node(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        raw: &Path,
        owner: Option<(Uid, Gid)>,
        mode: Option<u32>,
        mtime: i64,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let at = |e: Errno| io_err(raw, e);
        if let Some((uid, gid)) = owner {
            rfs::chownat(
                parent,
                name,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(at)?;
        }
        if let Some(mode) = mode {
            // `name` is the node created a moment ago (not a symlink), so following is moot.
            rfs::chmodat(parent, name, Mode::from_raw_mode(mode), AtFlags::empty()).map_err(at)?;
        }
        if !xattrs.is_empty() {
            // The parent is pinned by its fd; `l*xattr` does not follow the last component.
            let path = Path::new("/proc/self/fd")
                .join(format!("{}", std::os::fd::AsRawFd::as_raw_fd(&parent)))
                .join(name);
            for (key, value) in xattrs {
                let result = rfs::lsetxattr(&path, key.as_str(), value, rfs::XattrFlags::empty());
                // The kernel allows `user.*` only on regular files and directories (EPERM).
                let result = match result {
                    Err(Errno::PERM) => Err(Errno::NOTSUP),
                    other => other,
                };
                self.xattr_result(result, raw)?;
            }
        }
        rfs::utimensat(parent, name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW).map_err(at)
    }

    fn set_xattrs_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        raw: &Path,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<()> {
        for (key, value) in xattrs {
            let result = rfs::fsetxattr(fd, key.as_str(), value, rfs::XattrFlags::empty());
            self.xattr_result(result, raw)?;
        }
        Ok(())
    }

    fn xattr_result(&mut self, result: rustix::io::Result<()>, raw: &Path) -> Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(Errno::NOTSUP) => {
                self.counts.xattrs_unsupported += 1;
                Ok(())
            }
            Err(Errno::PERM) if !self.is_root => {
                self.counts.xattrs_unsupported += 1;
                Ok(())
            }
            Err(e) => Err(io_err(raw, e)),
        }
    }

    /// Makes room for an entry called `name`: keeps an existing directory when `keep_dir` (and
    /// returns `true`), otherwise removes whatever is there.
    fn replace(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        raw: &Path,
        keep_dir: bool,
    ) -> Result<bool> {
        match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io_err(raw, e)),
            Ok(stat) => {
                if keep_dir && FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                    return Ok(true);
                }
                remove_all(parent, name).map_err(|e| io_err(raw, e))?;
                Ok(false)
            }
        }
    }

    /// Opens the parent directory of `rel` below the target, creating missing directories
    /// (mode 0755) when `create`.
    fn open_parent(&self, raw: &Path, rel: &Path, create: bool) -> Result<OwnedFd> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        self.open_dir(raw, parent, create)
    }

    fn open_dir(&self, raw: &Path, dir: &Path, create: bool) -> Result<OwnedFd> {
        let flags = OFlags::PATH | OFlags::DIRECTORY;
        match open_beneath(self.root.as_fd(), dir, flags) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {}
            Err(e) => return Err(self.resolve_error(raw, dir, e)),
        }
        let mut fd =
            open_beneath(self.root.as_fd(), Path::new(""), flags).map_err(|e| io_err(raw, e))?;
        let mut prefix = PathBuf::new();
        for component in dir.components() {
            prefix.push(component);
            let next = match open_beneath(self.root.as_fd(), &prefix, flags) {
                Err(Errno::NOENT) => {
                    match rfs::mkdirat(&fd, component.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err(raw, e)),
                    }
                    open_beneath(self.root.as_fd(), &prefix, flags)
                }
                other => other,
            };
            fd = next.map_err(|e| self.resolve_error(raw, &prefix, e))?;
        }
        Ok(fd)
    }

    /// Turns a failed resolution of `dir` (for entry `raw`) into an error that names the
    /// symlink that leaves the target, if that was the cause.
    fn resolve_error(&self, raw: &Path, dir: &Path, errno: Errno) -> UnpackError {
        if errno != Errno::XDEV {
            return io_err(raw, errno);
        }
        let mut prefix = PathBuf::new();
        for component in dir.components() {
            prefix.push(component);
            if self.escaping_symlink(&prefix) {
                return UnpackError::ThroughSymlink {
                    entry: raw.to_path_buf(),
                    symlink: prefix,
                };
            }
        }
        UnpackError::Escapes {
            entry: raw.to_path_buf(),
        }
    }

    /// Whether `rel` is itself a symlink whose target resolves outside the target.
    fn escaping_symlink(&self, rel: &Path) -> bool {
        let root = self.root.as_fd();
        let Ok(fd) = open_beneath(root, rel, OFlags::PATH | OFlags::NOFOLLOW) else {
            return false;
        };
        let is_link = rfs::fstat(&fd)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
        is_link && matches!(open_beneath(root, rel, OFlags::PATH), Err(Errno::XDEV))
    }

    fn hard_link(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        raw: &Path,
        link: &Path,
    ) -> Result<()> {
        let outside = || UnpackError::HardLinkOutside {
            entry: raw.to_path_buf(),
            target: link.to_path_buf(),
        };
        let target = clean(link).ok_or_else(outside)?;
        let Some(target_name) = target.file_name() else {
            return Err(outside());
        };
        // Following a final symlink too: linking to a symlink that escapes is refused.
        match open_beneath(self.root.as_fd(), &target, OFlags::PATH) {
            Ok(_) | Err(Errno::NOENT) => {}
            Err(Errno::XDEV) => return Err(outside()),
            Err(e) => return Err(io_err(raw, e)),
        }
        let target_parent = match self.open_parent(raw, &target, false) {
            Err(UnpackError::ThroughSymlink { .. } | UnpackError::Escapes { .. }) => {
                return Err(outside())
            }
            other => other?,
        };
        self.replace(parent, name, raw, false)?;
        // Flags 0: a final symlink is linked itself (it was checked above), never followed.
        rfs::linkat(&target_parent, target_name, parent, name, AtFlags::empty())
            .map_err(|e| io_err(raw, e))
    }

    /// `.wh..wh..opq` in directory `rel.parent()`.
    fn opaque(&mut self, raw: &Path, rel: &Path) -> Result<()> {
        let dir = rel.parent().unwrap_or(Path::new(""));
        match self.mode {
            WhiteoutMode::Overlay => {
                let path_fd = self.open_dir(raw, dir, true)?;
                let fd = rfs::openat(
                    &path_fd,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err(raw, e))?;
                rfs::fsetxattr(
                    &fd,
                    "trusted.overlay.opaque",
                    b"y",
                    rfs::XattrFlags::empty(),
                )
                .map_err(|e| io_err(raw, e))
            }
            WhiteoutMode::Apply => {
                let fd = match self.open_dir(raw, dir, false) {
                    Err(UnpackError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        return Ok(())
                    }
                    other => other?,
                };
                let fd = rfs::openat(
                    &fd,
                    ".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_err(raw, e))?;
                self.clear_lower(fd.as_fd(), dir, raw)
            }
        }
    }

    /// Removes everything under `dir` (open as `fd`) that this layer did not create.
    fn clear_lower(&self, fd: BorrowedFd<'_>, dir: &Path, raw: &Path) -> Result<()> {
        for child in children(fd).map_err(|e| io_err(raw, e))? {
            let rel = dir.join(&child);
            if !self.seen.contains(&rel) {
                remove_all(fd, &child).map_err(|e| io_err(raw, e))?;
                continue;
            }
            let sub = rfs::openat(
                fd,
                &child,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            );
            match sub {
                Ok(sub) => self.clear_lower(sub.as_fd(), &rel, raw)?,
                Err(Errno::NOTDIR | Errno::LOOP) => {}
                Err(e) => return Err(io_err(raw, e)),
            }
        }
        Ok(())
    }

    /// `.wh.NAME`: `victim` in `rel.parent()` is deleted.
    fn remove(&mut self, raw: &Path, rel: &Path, victim: &OsStr) -> Result<()> {
        match self.mode {
            WhiteoutMode::Overlay => {
                let parent = self.open_parent(raw, rel, true)?;
                self.replace(parent.as_fd(), victim, raw, false)?;
                rfs::mknodat(
                    &parent,
                    victim,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rfs::makedev(0, 0),
                )
                .map_err(|e| io_err(raw, e))
            }
            WhiteoutMode::Apply => {
                let parent = match self.open_parent(raw, rel, false) {
                    Err(UnpackError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        return Ok(())
                    }
                    other => other?,
                };
                self.replace(parent.as_fd(), victim, raw, false)?;
                Ok(())
            }
        }
    }

    /// Applies directory metadata, children before parents; of repeated entries for one
    /// directory the last wins.
    fn finish(&mut self) -> Result<()> {
        let mut done = HashSet::new();
        for dir in self.dirs.iter().rev() {
            if !done.insert(&dir.rel) {
                continue;
            }
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW;
            let fd = match open_beneath(self.root.as_fd(), &dir.rel, flags) {
                Ok(fd) => fd,
                // Replaced or whited out by a later entry: nothing to apply.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => continue,
                Err(e) => return Err(io_err(&dir.entry, e)),
            };
            let at = |e: Errno| io_err(&dir.entry, e);
            if let Some((uid, gid)) = dir.owner {
                rfs::fchown(&fd, Some(uid), Some(gid)).map_err(at)?;
            }
            rfs::fchmod(&fd, Mode::from_raw_mode(dir.mode)).map_err(at)?;
            rfs::futimens(&fd, &timestamps(dir.mtime)).map_err(at)?;
        }
        Ok(())
    }
}

/// What an entry's PAX records say beyond its header: xattrs, and owner and mtime values that
/// the ustar header cannot hold (ids over 2097151, fractional or pre-1970 times).
#[derive(Debug, Default)]
struct Pax {
    /// `SCHILY.xattr.*`, minus `trusted.overlay.*`.
    xattrs: Vec<(String, Vec<u8>)>,
    uid: Option<u64>,
    gid: Option<u64>,
    /// Whole seconds of `mtime` (the fraction is dropped, as docker does).
    mtime: Option<i64>,
}

/// Reads the PAX records of an entry; a malformed `uid`, `gid` or `mtime` is a corrupt tarball.
fn pax_records<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Pax> {
    let mut pax = Pax::default();
    let Some(extensions) = entry.pax_extensions().map_err(UnpackError::CorruptTar)? else {
        return Ok(pax);
    };
    for extension in extensions {
        let extension = extension.map_err(UnpackError::CorruptTar)?;
        let Ok(key) = extension.key() else { continue };
        let value = || {
            extension.value().map_err(|_| {
                UnpackError::CorruptTar(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("PAX record {key} is not UTF-8"),
                ))
            })
        };
        let malformed = |value: &str| {
            UnpackError::CorruptTar(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("PAX record {key}={value:?} is not a number"),
            ))
        };
        match key {
            "uid" | "gid" => {
                let text = value()?;
                let id = text.parse::<u64>().map_err(|_| malformed(text))?;
                if key == "uid" {
                    pax.uid = Some(id);
                } else {
                    pax.gid = Some(id);
                }
            }
            "mtime" => {
                let text = value()?;
                let seconds = text.split('.').next().unwrap_or_default();
                pax.mtime = Some(seconds.parse::<i64>().map_err(|_| malformed(text))?);
            }
            _ => {
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if !name.starts_with("trusted.overlay.") {
                        pax.xattrs
                            .push((name.to_owned(), extension.value_bytes().to_vec()));
                    }
                }
            }
        }
    }
    Ok(pax)
}

/// The entry's mtime: its PAX record, else the header's.
fn mtime(header: &tar::Header, pax: &Pax) -> Result<i64> {
    match pax.mtime {
        Some(mtime) => Ok(mtime),
        None => {
            Ok(i64::try_from(header.mtime().map_err(UnpackError::CorruptTar)?).unwrap_or(i64::MAX))
        }
    }
}

/// Streams an entry's content into `file`; read errors are the tarball's, write errors ours.
fn copy(entry: &mut impl Read, file: &mut File, raw: &Path) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnpackError::CorruptTar(e)),
        };
        file.write_all(&buf[..n])
            .map_err(|source| UnpackError::Io {
                path: raw.to_path_buf(),
                source,
            })?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_follows_docker() {
        let cases: &[(&str, Option<&str>)] = &[
            ("a/b", Some("a/b")),
            ("./a/./b/", Some("a/b")),
            ("/etc/x", Some("etc/x")),
            ("a/../b", Some("b")),
            ("a//b", Some("a/b")),
            ("./", Some("")),
            ("../x", None),
            ("a/../../x", None),
            ("/../x", None),
        ];
        for (raw, want) in cases {
            assert_eq!(clean(Path::new(raw)), want.map(PathBuf::from), "{raw}");
        }
    }
}
