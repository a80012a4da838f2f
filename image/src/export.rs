//! Writing a root file system directory as a tarball (`flotilla export`), faithfully and
//! deterministically: regular files, directories, symlinks, hard links (as links to the first
//! path of the inode), character and block devices and fifos, with modes (setuid, setgid and
//! sticky bits included), numeric owners, mtimes and extended attributes (as `SCHILY.xattr.*`
//! PAX records, as GNU tar writes them). Entries come in byte order of their names, parents
//! before children, so the same tree always gives the same tarball. Sockets cannot be put in a
//! tar and are skipped.
//!
//! Nothing is followed: every entry is read with `lstat`, and symlinks are written as symlinks.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

/// Why an export failed; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the tree failed.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// Writing the tarball failed.
    #[error("cannot write the tarball at {}: {source}", path.display())]
    Write {
        /// The entry being written.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// A `Result` whose error is [`ExportError`].
pub type Result<T, E = ExportError> = std::result::Result<T, E>;

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    /// Entries written.
    pub entries: u64,
    /// Sockets skipped.
    pub skipped_sockets: u64,
}

/// Writes the tree under `root` (not `root` itself) as a tar stream to `out`.
///
/// ```no_run
/// let out = std::fs::File::create("rootfs.tar").unwrap();
/// image::export::export(std::path::Path::new("/srv/rootfs"), out).unwrap();
/// ```
pub fn export(root: &Path, out: impl Write) -> Result<Exported> {
    let mut writer = Writer {
        builder: tar::Builder::new(io::BufWriter::with_capacity(1 << 20, out)),
        inodes: HashMap::new(),
        exported: Exported::default(),
    };
    writer.directory(root, Path::new(""))?;
    let inner = writer
        .builder
        .into_inner()
        .map_err(|source| ExportError::Write {
            path: root.to_owned(),
            source,
        })?;
    inner
        .into_inner()
        .map_err(io::IntoInnerError::into_error)
        .and_then(|mut w| w.flush())
        .map_err(|source| ExportError::Write {
            path: root.to_owned(),
            source,
        })?;
    Ok(writer.exported)
}

struct Writer<W: Write> {
    builder: tar::Builder<W>,
    /// First path written for each multiply linked inode, by (device, inode).
    inodes: HashMap<(u64, u64), PathBuf>,
    exported: Exported,
}

impl<W: Write> Writer<W> {
    /// Writes the children of `dir` (named `name` in the tarball), sorted, recursively.
    fn directory(&mut self, dir: &Path, name: &Path) -> Result<()> {
        let read = |source| ExportError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut children: Vec<_> = fs::read_dir(dir)
            .map_err(read)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(read)?;
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for child in children {
            let path = dir.join(&child);
            let entry_name = name.join(&child);
            if self.entry(&path, &entry_name)? {
                self.directory(&path, &entry_name)?;
            }
        }
        Ok(())
    }

    /// Writes one entry; returns whether it is a directory to descend into.
    fn entry(&mut self, path: &Path, name: &Path) -> Result<bool> {
        let read = |source| ExportError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = fs::symlink_metadata(path).map_err(read)?;
        let kind = meta.file_type();
        if kind.is_socket() {
            self.exported.skipped_sockets += 1;
            return Ok(false);
        }
        let mut header = Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        header.set_size(0);
        let xattrs = xattrs(path).map_err(read)?;
        if !xattrs.is_empty() {
            let records = xattrs
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_slice()));
            self.builder
                .append_pax_extensions(records)
                .map_err(|source| self.write_error(name, source))?;
        }
        self.exported.entries += 1;
        let link_key = (meta.dev(), meta.ino());
        let written = if !kind.is_dir() && meta.nlink() > 1 && self.inodes.contains_key(&link_key) {
            header.set_entry_type(EntryType::Link);
            let target = self.inodes[&link_key].clone();
            self.builder.append_link(&mut header, name, target)
        } else if kind.is_dir() {
            header.set_entry_type(EntryType::Directory);
            // GNU tar's and docker's spelling of a directory entry: `bin/`.
            let name = format!("{}/", name.display());
            self.builder.append_data(&mut header, name, io::empty())
        } else if kind.is_symlink() {
            header.set_entry_type(EntryType::Symlink);
            let target = fs::read_link(path).map_err(read)?;
            self.builder.append_link(&mut header, name, target)
        } else if kind.is_file() {
            if meta.nlink() > 1 {
                self.inodes.insert(link_key, name.to_owned());
            }
            header.set_entry_type(EntryType::Regular);
            header.set_size(meta.len());
            // Exactly the size the header announces, even if the file grows meanwhile.
            let file = File::open(path).map_err(read)?.take(meta.len());
            self.builder.append_data(&mut header, name, file)
        } else {
            let entry_type = if kind.is_char_device() {
                EntryType::Char
            } else if kind.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            };
            header.set_entry_type(entry_type);
            if entry_type != EntryType::Fifo {
                header
                    .set_device_major(rustix::fs::major(meta.rdev()))
                    .and_then(|()| header.set_device_minor(rustix::fs::minor(meta.rdev())))
                    .map_err(|source| self.write_error(name, source))?;
            }
            self.builder.append_data(&mut header, name, io::empty())
        };
        written.map_err(|source| self.write_error(name, source))?;
        Ok(kind.is_dir())
    }

    fn write_error(&self, name: &Path, source: io::Error) -> ExportError {
        ExportError::Write {
            path: name.to_owned(),
            source,
        }
    }
}

/// The extended attributes of `path` (not followed) as PAX records, sorted by name.
fn xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let size = match rustix::fs::llistxattr_query(path) {
        Ok(size) => size,
        Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; size];
    let len = rustix::fs::llistxattr(path, &mut names[..])?;
    let mut records = Vec::new();
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let value_size = rustix::fs::lgetxattr_query(path, name.as_str())?;
        let mut value = vec![0u8; value_size];
        let value_len = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..])?;
        value.truncate(value_len);
        records.push((format!("SCHILY.xattr.{name}"), value));
    }
    records.sort();
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn tree_is_written_in_order_with_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("b")).unwrap();
        fs::write(root.join("b/file"), b"data").unwrap();
        fs::hard_link(root.join("b/file"), root.join("a-link")).unwrap();
        std::os::unix::fs::symlink("b/file", root.join("c")).unwrap();
        fs::set_permissions(root.join("b"), fs::Permissions::from_mode(0o1777)).unwrap();
        let mut out = Vec::new();
        let exported = export(root, &mut out).unwrap();
        assert_eq!(exported.entries, 4);
        let mut archive = tar::Archive::new(&out[..]);
        let listing: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                format!(
                    "{:?} {} {:o} {}",
                    h.entry_type(),
                    String::from_utf8_lossy(&e.path_bytes()),
                    h.mode().unwrap(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.display().to_string())
                        .unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(
            listing,
            [
                "Regular a-link 644 ",
                "Directory b/ 1777 ",
                "Link b/file 644 a-link",
                "Symlink c 777 b/file"
            ]
        );
    }
}
