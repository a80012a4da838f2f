//! Named volumes in docker's layout: `<data-root>/volumes/<name>/_data` is a volume's content
//! (where `engine::spec` mounts it from) and `<name>/volume.json` its metadata (creation time,
//! labels, driver, whether it is anonymous), replaced atomically.
//!
//! Volume names follow docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; an anonymous volume gets 64
//! random hex digits. Removing a volume in use is refused: the caller names its users.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::records::{self, Entries, RecordError};

/// The directory of volumes under the data root.
const VOLUMES_DIR: &str = "volumes";
/// A volume's content, inside its directory.
const DATA_DIR: &str = "_data";
/// A volume's metadata, inside its directory.
const METADATA_FILE: &str = "volume.json";
/// The only volume driver.
pub const LOCAL_DRIVER: &str = "local";

/// Why a volume operation failed; each names the volume or the path.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed")]
    InvalidName(String),
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("cannot read random bytes from /dev/urandom: {0}")]
    Random(io::Error),
}

/// A `Result` whose error is [`VolumeError`].
pub type Result<T> = std::result::Result<T, VolumeError>;

/// What `volume.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// RFC 3339, to the second, UTC.
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub driver: String,
    /// Made for one container's `-v /dest` (`rm -v` and `volume prune` remove it).
    #[serde(default)]
    pub anonymous: bool,
}

/// One volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// The directory mounted into containers (`_data`).
    pub mountpoint: PathBuf,
    pub metadata: Metadata,
}

/// Whether `name` is a volume name by docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub use crate::engine::options::is_object_name as valid_name;

/// A fresh name for an anonymous volume: 64 random hex digits.
pub fn anonymous_name() -> Result<String> {
    crate::random::hex_id().map_err(VolumeError::Random)
}

/// The volumes under one data root.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    entries: Entries,
}

impl VolumeStore {
    /// The volumes of `data_root` (`<data-root>/volumes`, made if missing).
    pub fn open(data_root: &Path) -> Result<VolumeStore> {
        let root = data_root.join(VOLUMES_DIR);
        Ok(VolumeStore {
            entries: Entries::open(root, METADATA_FILE, "volume metadata")?,
        })
    }

    /// The directory of volumes.
    pub fn root(&self) -> &Path {
        self.entries.root()
    }

    /// Creates the volume `name` with `labels`; an existing volume of that name is returned
    /// as it is (docker's `volume create` is idempotent).
    pub fn create(&self, name: &str, labels: BTreeMap<String, String>) -> Result<Volume> {
        self.get_or_make(name, labels, false)
    }

    /// The volume a container's `-v name:/dest` (or `-v /dest`, `anonymous`) mounts, made if
    /// missing.
    pub fn ensure(&self, name: &str, anonymous: bool) -> Result<Volume> {
        self.get_or_make(name, BTreeMap::new(), anonymous)
    }

    fn get_or_make(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume> {
        match self.get(name) {
            Err(VolumeError::NotFound(_)) => {}
            found => return found,
        }
        let data = self.entries.dir(name).join(DATA_DIR);
        records::create_dir(&data)?;
        let metadata = Metadata {
            created_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            labels,
            driver: LOCAL_DRIVER.to_owned(),
            anonymous,
        };
        self.entries.write(name, &metadata)?;
        Ok(Volume {
            name: name.to_owned(),
            mountpoint: data,
            metadata,
        })
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        if !valid_name(name) {
            return Err(VolumeError::InvalidName(name.to_owned()));
        }
        let metadata = self
            .entries
            .read(name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_owned()))?;
        Ok(Volume {
            name: name.to_owned(),
            mountpoint: self.entries.dir(name).join(DATA_DIR),
            metadata,
        })
    }

    /// All volumes, by name. Directories without metadata (not made by this store) are not
    /// volumes.
    pub fn list(&self) -> Result<Vec<Volume>> {
        let mut volumes = Vec::new();
        for name in self.entries.names()? {
            match self.get(&name) {
                Err(VolumeError::NotFound(_)) => {}
                found => volumes.push(found?),
            }
        }
        Ok(volumes)
    }

    /// Removes the volume `name` and its content, unless `users` (the containers that mount
    /// it) is not empty. The directory is first renamed out of the way, so a crash midway
    /// leaves no half-removed volume behind.
    pub fn remove(&self, name: &str, users: &[String]) -> Result<()> {
        self.get(name)?;
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_owned(),
                users: users.to_vec(),
            });
        }
        Ok(self.entries.remove(name)?)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn store() -> (tempfile::TempDir, VolumeStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn names_follow_docker_rule() {
        for good in ["a", "data", "my_vol.1-x", "0abc"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", ".a", "_a", "a/b", "a b", "ä", "../x"] {
            assert!(!valid_name(bad), "{bad}");
        }
        let name = anonymous_name().unwrap();
        assert_eq!(name.len(), 64);
        assert!(name.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(name, anonymous_name().unwrap());
    }

    #[test]
    fn create_lays_out_docker_directories_and_is_idempotent() {
        let (data_root, store) = store();
        let labels = BTreeMap::from([("team".to_owned(), "db".to_owned())]);
        let made = store.create("data", labels.clone()).unwrap();
        let expected = data_root.path().join("volumes/data/_data");
        assert_eq!(made.mountpoint, expected);
        assert!(expected.is_dir());
        fs::write(expected.join("kept"), "x").unwrap();
        let metadata: serde_json::Value = serde_json::from_slice(
            &fs::read(data_root.path().join("volumes/data/volume.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(metadata["Driver"], "local");
        assert_eq!(metadata["Labels"]["team"], "db");
        assert_eq!(metadata["Anonymous"], false);
        assert!(humantime::parse_rfc3339(metadata["CreatedAt"].as_str().unwrap()).is_ok());

        let again = store.create("data", BTreeMap::new()).unwrap();
        assert_eq!(again, made);
        assert!(expected.join("kept").exists());
        assert_eq!(store.get("data").unwrap(), made);
    }

    #[test]
    fn ensure_marks_anonymous_volumes_and_list_sorts() {
        let (_root, store) = store();
        let anonymous = anonymous_name().unwrap();
        store.ensure(&anonymous, true).unwrap();
        store.ensure("b", false).unwrap();
        store.ensure("a", false).unwrap();
        fs::create_dir(store.root().join("stray")).unwrap();
        let listed: Vec<(String, bool)> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|v| (v.name, v.metadata.anonymous))
            .collect();
        let mut expected = vec![
            (anonymous, true),
            ("a".to_owned(), false),
            ("b".to_owned(), false),
        ];
        expected.sort();
        assert_eq!(listed, expected);
    }

    #[test]
    fn remove_refuses_a_volume_in_use_and_a_missing_one() {
        let (_root, store) = store();
        store.create("data", BTreeMap::new()).unwrap();
        fs::write(store.root().join("data/_data/file"), "x").unwrap();
        let error = store
            .remove("data", &["0123456789ab".to_owned()])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "remove data: volume is in use - [0123456789ab]"
        );
        assert!(store.get("data").is_ok());
        store.remove("data", &[]).unwrap();
        assert!(matches!(store.get("data"), Err(VolumeError::NotFound(_))));
        assert_eq!(fs::read_dir(store.root()).unwrap().count(), 0);
        assert_eq!(
            store.remove("data", &[]).unwrap_err().to_string(),
            "get data: no such volume"
        );
        assert_eq!(
            store
                .create("../etc", BTreeMap::new())
                .unwrap_err()
                .to_string(),
            "invalid volume name \"../etc\": only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed"
        );
    }
}
