//! Reading an archive's entries by name, in place: one pass over a seekable plain tar records
//! where each entry's content is, and entries are then read with positioned reads (`pread`),
//! from several threads at once, without copying the archive.
//!
//! Entry names are only ever looked up, never used as paths on disk; a name that is absolute
//! or holds `..` makes the whole archive refused ([`ArchiveError::UnsafeName`]), as no writer
//! of docker or OCI archives produces one. Symbolic and hard links between entries (skopeo's
//! and podman's `ID/layer.tar -> ../DIFF.tar`) are followed inside the archive.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;

use tar::EntryType;

use super::{ArchiveError, Result};

/// Where an entry's content is in the archive file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    offset: u64,
    size: u64,
}

/// The entries of a tar file, by normalized name.
#[derive(Debug)]
pub struct TarIndex {
    file: File,
    entries: HashMap<String, Slot>,
}

/// The most links followed to reach an entry.
const MAX_LINK_HOPS: usize = 8;

impl TarIndex {
    /// Indexes the plain tar `file` from its current position to its end.
    pub fn build(mut file: File) -> Result<TarIndex> {
        let length = file.metadata().map_err(ArchiveError::Input)?.len();
        let start = file.stream_position().map_err(ArchiveError::Input)?;
        let mut entries = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let mut last: Option<String> = None;
        {
            let mut archive = tar::Archive::new(&file);
            let corrupt = |after: &Option<String>, source| ArchiveError::CorruptTar {
                after: after.clone().unwrap_or_else(|| "the start".to_owned()),
                source,
            };
            for entry in archive.entries_with_seek().map_err(|e| corrupt(&last, e))? {
                let entry = entry.map_err(|e| corrupt(&last, e))?;
                let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let name =
                    normalize(&raw).ok_or(ArchiveError::UnsafeName { entry: raw.clone() })?;
                let offset = start + entry.raw_file_position();
                let size = entry.size();
                if offset + size > length {
                    return Err(ArchiveError::Truncated { entry: raw });
                }
                match entry.header().entry_type() {
                    EntryType::Regular | EntryType::Continuous => {
                        entries.insert(name.clone(), Slot { offset, size });
                    }
                    kind @ (EntryType::Symlink | EntryType::Link) => {
                        let target = entry
                            .link_name_bytes()
                            .map(|t| String::from_utf8_lossy(&t).into_owned())
                            .unwrap_or_default();
                        let joined = if kind == EntryType::Symlink {
                            match name.rsplit_once('/') {
                                Some((dir, _)) => format!("{dir}/{target}"),
                                None => target,
                            }
                        } else {
                            target
                        };
                        // A link leading out of the archive is a name that is never found.
                        if let Some(target) = normalize(&joined) {
                            links.push((name.clone(), target));
                        }
                    }
                    _ => {}
                }
                last = Some(raw);
            }
        }
        for _ in 0..MAX_LINK_HOPS {
            links.retain(|(name, target)| match entries.get(target) {
                Some(slot) => {
                    entries.insert(name.clone(), *slot);
                    false
                }
                None => true,
            });
        }
        Ok(TarIndex { file, entries })
    }

    /// Whether the archive has a (regular, or link to a regular) entry `name`.
    pub fn contains(&self, name: &str) -> bool {
        normalize(name).is_some_and(|n| self.entries.contains_key(&n))
    }

    /// The size of entry `name`, which `by` (a manifest, an index) names.
    pub fn size(&self, name: &str, by: &str) -> Result<u64> {
        Ok(self.slot(name, by)?.size)
    }

    /// A reader of entry `name`'s content.
    pub fn reader(&self, name: &str, by: &str) -> Result<EntryReader<'_>> {
        let slot = self.slot(name, by)?;
        Ok(EntryReader {
            file: &self.file,
            position: slot.offset,
            end: slot.offset + slot.size,
        })
    }

    /// Reads a whole small entry (a manifest, an index, a config), refusing one over `limit`
    /// bytes before reading it.
    pub fn read_small(&self, name: &str, by: &str, limit: u64) -> Result<Vec<u8>> {
        let slot = self.slot(name, by)?;
        if slot.size > limit {
            return Err(ArchiveError::TooLarge {
                entry: name.to_owned(),
                size: slot.size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(slot.size as usize);
        self.reader(name, by)?
            .read_to_end(&mut bytes)
            .map_err(ArchiveError::Input)?;
        Ok(bytes)
    }

    fn slot(&self, name: &str, by: &str) -> Result<Slot> {
        normalize(name)
            .and_then(|n| self.entries.get(&n).copied())
            .ok_or_else(|| ArchiveError::Missing {
                entry: name.to_owned(),
                by: by.to_owned(),
            })
    }
}

/// Reads one entry's content with positioned reads, so readers of different entries (or of the
/// same one) can run in parallel.
#[derive(Debug)]
pub struct EntryReader<'a> {
    file: &'a File,
    position: u64,
    end: u64,
}

impl Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.position;
        let wanted = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if wanted == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..wanted], self.position)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.position += n as u64;
        Ok(n)
    }
}

/// An entry name cleaned lexically (`./a//b` → `a/b`, `a/../b` → `b`); `None` when it is
/// absolute or climbs above the archive's root.
pub(crate) fn normalize(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_escapes_refused() {
        assert_eq!(
            normalize("./manifest.json").as_deref(),
            Some("manifest.json")
        );
        assert_eq!(normalize("a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize("a/../b.tar").as_deref(), Some("b.tar"));
        assert_eq!(normalize("../x"), None);
        assert_eq!(normalize("/etc/passwd"), None);
        assert_eq!(normalize("a/../../x"), None);
    }

    fn tar_of(entries: &[(&str, &[u8])], link: Option<(&str, &str)>) -> File {
        let mut builder = tar::Builder::new(tempfile::tempfile().unwrap());
        for (name, data) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        if let Some((name, target)) = link {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, name, target).unwrap();
        }
        let mut file = builder.into_inner().unwrap();
        file.rewind().unwrap();
        file
    }

    #[test]
    fn entries_are_read_by_name_through_links() {
        let index = TarIndex::build(tar_of(
            &[("./a.tar", b"layer"), ("manifest.json", b"[]")],
            Some(("id/layer.tar", "../a.tar")),
        ))
        .unwrap();
        let mut out = String::new();
        index
            .reader("id/layer.tar", "test")
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "layer");
        assert!(index.contains("manifest.json"));
        assert_eq!(
            index
                .read_small("a.tar", "test", 2)
                .unwrap_err()
                .to_string(),
            r#"archive entry "a.tar" is 5 bytes, more than the 2 allowed"#
        );
        assert_eq!(
            index
                .reader("b.tar", "manifest.json")
                .unwrap_err()
                .to_string(),
            r#"archive entry "b.tar" named by manifest.json is missing"#
        );
    }
}
