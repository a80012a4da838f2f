//! The engine's small state files: JSON records read whole and replaced atomically
//! ([`read`], [`write`]), and directories of named entries, one subdirectory each with its
//! record ([`Entries`]): how volumes (`volumes/NAME/volume.json`) and networks
//! (`networks/NAME/network.json`) are kept under the data root.
//!
//! A write goes through `write_atomic` (temporary file, fsync, rename, fsync of the directory),
//! so a crash leaves the old record or the new one. An entry is removed by renaming its
//! directory out of the way first (`.removing-*`, not a valid name, so never listed), so a
//! crash midway leaves no half-removed entry behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image::store::fsutil::{fsync_dir, unique_name, write_atomic};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::engine::options::is_object_name;

/// Why a record or an entry could not be read, written or removed; each names the path.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot create {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
    /// `what` says what the file holds (`volume metadata`, `address state`…).
    #[error("invalid {what} {path}: {source}")]
    Invalid {
        what: &'static str,
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// A `Result` whose error is [`RecordError`].
pub type Result<T> = std::result::Result<T, RecordError>;

/// The record at `path` (holding `what`, for errors); `None` when there is no such file.
pub fn read<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RecordError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| RecordError::Invalid {
            what,
            path: path.to_owned(),
            source,
        })
}

/// Replaces the record at `path` with `value`, atomically.
pub fn write<T: Serialize>(path: &Path, what: &'static str, value: &T) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|source| RecordError::Invalid {
        what,
        path: path.to_owned(),
        source,
    })?;
    write_atomic(path, &json).map_err(|source| RecordError::Write {
        path: path.to_owned(),
        source,
    })
}

/// A directory of named entries, each a subdirectory holding one record file. Names follow
/// docker's rule for object names; the caller checks them before asking for an entry.
#[derive(Debug, Clone)]
pub struct Entries {
    root: PathBuf,
    record: &'static str,
    what: &'static str,
}

impl Entries {
    /// The entries under `root` (made if missing), each with its record in the file `record`,
    /// which holds `what` (for errors).
    pub fn open(root: PathBuf, record: &'static str, what: &'static str) -> Result<Entries> {
        create_dir(&root)?;
        Ok(Entries { root, record, what })
    }

    /// The directory of entries.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of the entry `name`.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The names of the subdirectories that may be entries, sorted; whether each is one is
    /// for [`Entries::read`] to say.
    pub fn names(&self) -> Result<Vec<String>> {
        let read_error = |source| RecordError::Read {
            path: self.root.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(read_error)? {
            let name = entry.map_err(read_error)?.file_name();
            if let Some(name) = name.to_str().filter(|n| is_object_name(n)) {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The record of `name`; `None` when there is none (no such entry, or a directory this
    /// store did not make).
    pub fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        read(&self.dir(name).join(self.record), self.what)
    }

    /// Writes the record of `name`, making its directory if missing.
    pub fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let dir = self.dir(name);
        create_dir(&dir)?;
        write(&dir.join(self.record), self.what, value)
    }

    /// Removes the entry `name` and everything in its directory.
    pub fn remove(&self, name: &str) -> Result<()> {
        let dir = self.dir(name);
        let doomed = self.root.join(unique_name(&format!(".removing-{name}")));
        fs::rename(&dir, &doomed).map_err(|source| RecordError::Remove {
            path: dir.clone(),
            source,
        })?;
        fsync_dir(&self.root).map_err(|source| RecordError::Write {
            path: self.root.clone(),
            source,
        })?;
        fs::remove_dir_all(&doomed).map_err(|source| RecordError::Remove {
            path: doomed,
            source,
        })
    }
}

/// Makes `dir` and its parents.
pub fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|source| RecordError::Create {
        path: dir.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        assert_eq!(read::<Vec<u8>>(&path, "test record").unwrap(), None);
        write(&path, "test record", &vec![1u8, 2]).unwrap();
        assert_eq!(
            read::<Vec<u8>>(&path, "test record").unwrap(),
            Some(vec![1, 2])
        );
        fs::write(&path, "[1,").unwrap();
        let error = read::<Vec<u8>>(&path, "test record")
            .unwrap_err()
            .to_string();
        let prefix = format!("invalid test record {}: ", path.display());
        assert!(error.starts_with(&prefix), "{error}");
    }

    #[test]
    fn entries_list_only_valid_names_and_removal_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let entries = Entries::open(dir.path().join("things"), "thing.json", "thing").unwrap();
        entries.write("b", &1u32).unwrap();
        entries.write("a", &2u32).unwrap();
        fs::create_dir(entries.root().join(".removing-x")).unwrap();
        assert_eq!(entries.names().unwrap(), ["a", "b"]);
        assert_eq!(entries.read::<u32>("a").unwrap(), Some(2));
        entries.remove("a").unwrap();
        assert_eq!(entries.read::<u32>("a").unwrap(), None);
        assert!(!entries.dir("a").exists());
        assert!(entries.remove("a").is_err());
    }
}
