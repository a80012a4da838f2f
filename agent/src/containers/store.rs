//! The containers' state on disk, one directory per container under `<data-root>/containers/`:
//!
//! ```text
//! lock                 flock: exclusive around claiming, renaming and releasing names
//! names/NAME           the ID that holds NAME (created with O_EXCL while `lock` is held)
//! ID/container.json    the record (engine::container::Container), replaced atomically
//! ID/config.json       the OCI runtime configuration (a standard bundle's config)
//! ID/record.lock       flock: exclusive around each read-modify-write of container.json
//! ID/supervisor.lock   flock: held exclusive by the supervisor for as long as it lives
//! ID/rootfs            the mount point of the container's root (mounted in its own namespace)
//! ID/upper, ID/work    overlayfs's writable layer and work directory
//! ```
//!
//! Invariants: a name file exists only while its container's directory holds a complete
//! record (both are made under `lock`, the record first); a record says running or restarting
//! only while its supervisor lives, and a reader that finds `supervisor.lock` free reports the
//! container as exited (the supervisor or the host crashed). Removal renames the directory to a
//! `.removing-` name before deleting it, so a half-deleted container is never listed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use image::store::fsutil::{fsync_dir, unique_name, write_atomic, write_atomic_volatile};
use image::store::lock::FileLock;
use oci_spec::runtime::Spec;

use super::supervisor_lock;
use crate::engine::container::{Container, RECORD_VERSION};
use crate::engine::options::is_object_name as valid_name;

/// The record's file in a container's directory.
pub const RECORD_FILE: &str = "container.json";

/// Why the container store failed; each names the container or file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("container name {0:?} is ambiguous: it is a prefix of the IDs {1}")]
    Ambiguous(String, String),
    #[error("the container name \"/{name}\" is already in use by container {id}: remove or rename that container to be able to reuse that name")]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed")]
    InvalidName(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a container record of version {RECORD_VERSION}: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: invalid OCI runtime configuration: {source}")]
    Spec {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
}

/// A `Result` whose error is [`StoreError`].
pub type Result<T> = std::result::Result<T, StoreError>;

trait At<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> At<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes one of a container's files atomically; durably unless the container is removed when
/// it exits (`--rm`: after a crash of the host it would be removed anyway, and the syncs are
/// most of its start-up time).
fn save(record: &Container, path: &Path, bytes: &[u8]) -> Result<()> {
    if record.options.remove {
        write_atomic_volatile(path, bytes).at(path)
    } else {
        write_atomic(path, bytes).at(path)
    }
}

/// The containers under one data root.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    root: PathBuf,
}

impl ContainerStore {
    /// Opens (and makes, the first time) `<data_root>/containers`.
    pub fn open(data_root: &Path) -> Result<ContainerStore> {
        let root = data_root.join("containers");
        fs::create_dir_all(root.join("names")).at(&root)?;
        Ok(ContainerStore { root })
    }

    /// The container's directory.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Takes the store-wide lock held while names are claimed or released.
    pub fn lock(&self) -> Result<FileLock> {
        let path = self.root.join("lock");
        FileLock::exclusive(&path).at(&path)
    }

    /// The lock a container's supervisor holds while it lives.
    pub fn supervisor_lock_path(&self, id: &str) -> PathBuf {
        self.dir(id).join("supervisor.lock")
    }

    /// Whether a supervisor owns the container now.
    pub fn supervisor_alive(&self, id: &str) -> Result<bool> {
        let path = self.supervisor_lock_path(id);
        supervisor_lock::is_held(&path).at(&path)
    }

    /// The ID of the container called `name`, if any.
    pub fn resolve_name(&self, name: &str) -> Result<Option<String>> {
        if !valid_name(name) {
            return Ok(None);
        }
        let path = self.root.join("names").join(name);
        match fs::read_to_string(&path) {
            Ok(id) => Ok(Some(id.trim().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }

    /// The IDs of every container.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.root).at(&self.root)? {
            let entry = entry.at(&self.root)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 64
                && name.bytes().all(|b| b.is_ascii_hexdigit())
                && entry.path().join(RECORD_FILE).exists()
            {
                ids.push(name);
            }
        }
        Ok(ids)
    }

    /// The ID a user means: a name, a full ID or an unambiguous ID prefix (docker's order).
    pub fn resolve(&self, name_or_id: &str) -> Result<String> {
        let wanted = name_or_id.trim_start_matches('/');
        if let Some(id) = self.resolve_name(wanted)? {
            return Ok(id);
        }
        if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NotFound(name_or_id.to_owned()));
        }
        let matches: Vec<String> = self
            .ids()?
            .into_iter()
            .filter(|id| id.starts_with(wanted))
            .collect();
        match matches.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(StoreError::NotFound(name_or_id.to_owned())),
            many => Err(StoreError::Ambiguous(
                name_or_id.to_owned(),
                many.iter()
                    .map(|id| &id[..12])
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    /// Makes a container: its directory, `config.json`, the record, and only then its name.
    /// The caller holds [`ContainerStore::lock`].
    pub fn create(&self, _lock: &FileLock, record: &Container, spec: &Spec) -> Result<()> {
        if !valid_name(&record.name) {
            return Err(StoreError::InvalidName(record.name.clone()));
        }
        if let Some(id) = self.resolve_name(&record.name)? {
            return Err(StoreError::NameInUse {
                name: record.name.clone(),
                id: id[..12.min(id.len())].to_owned(),
            });
        }
        let dir = self.dir(&record.id);
        for sub in ["rootfs", "upper", "work"] {
            fs::create_dir_all(dir.join(sub)).at(&dir)?;
        }
        let config = dir.join("config.json");
        let json = serde_json::to_vec_pretty(spec).map_err(|source| StoreError::Record {
            path: config.clone(),
            source,
        })?;
        save(record, &config, &json)?;
        self.write(record)?;
        let name = self.root.join("names").join(&record.name);
        save(record, &name, record.id.as_bytes())
    }

    /// Reads a container's record as it is on disk.
    pub fn read_raw(&self, id: &str) -> Result<Container> {
        let path = self.dir(id).join(RECORD_FILE);
        let bytes = match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id.to_owned()))
            }
            other => other.at(&path)?,
        };
        serde_json::from_slice::<Container>(&bytes)
            .and_then(|record| {
                if record.version == RECORD_VERSION {
                    Ok(record)
                } else {
                    Err(serde::de::Error::custom(format!(
                        "version {}",
                        record.version
                    )))
                }
            })
            .map_err(|source| StoreError::Record { path, source })
    }

    /// Reads a container's record as users should see it: running only while its supervisor
    /// lives.
    pub fn read(&self, id: &str) -> Result<Container> {
        let record = self.read_raw(id)?;
        let alive = record.is_active() && self.supervisor_alive(id)?;
        Ok(record.reconciled(alive, SystemTime::now()))
    }

    /// Every container, oldest first.
    pub fn list(&self) -> Result<Vec<Container>> {
        let mut all = Vec::new();
        for id in self.ids()? {
            match self.read(&id) {
                Ok(record) => all.push(record),
                // Removed between the listing and the read.
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        all.sort_by_key(|c| c.created);
        Ok(all)
    }

    /// The OCI runtime configuration of a container.
    pub fn spec(&self, id: &str) -> Result<Spec> {
        let path = self.dir(id).join("config.json");
        Spec::load(&path).map_err(|source| StoreError::Spec { path, source })
    }

    /// Replaces a container's record atomically.
    fn write(&self, record: &Container) -> Result<()> {
        let path = self.dir(&record.id).join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(record).map_err(|source| StoreError::Record {
            path: path.clone(),
            source,
        })?;
        save(record, &path, &json)
    }

    /// Changes a container's record under its record lock: reads it fresh as it is on disk,
    /// applies `change` and writes it back.
    pub fn update<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Container) -> T,
    ) -> Result<(Container, T)> {
        if !self.dir(id).is_dir() {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        let lock = self.record_lock(id)?;
        self.update_locked(&lock, id, change)
    }

    /// [`ContainerStore::update`] for a caller that already holds the record lock.
    pub fn update_locked<T>(
        &self,
        _lock: &FileLock,
        id: &str,
        change: impl FnOnce(&mut Container) -> T,
    ) -> Result<(Container, T)> {
        let mut record = self.read_raw(id)?;
        let value = change(&mut record);
        self.write(&record)?;
        Ok((record, value))
    }

    /// Holds a container's record lock (for a decision that must not race a state change).
    pub fn record_lock(&self, id: &str) -> Result<FileLock> {
        let path = self.dir(id).join("record.lock");
        FileLock::exclusive(&path).at(&path)
    }

    /// Removes a container's directory and name. The caller holds [`ContainerStore::lock`]
    /// and has made sure nothing runs.
    pub fn remove(&self, _lock: &FileLock, record: &Container) -> Result<()> {
        let name = self.root.join("names").join(&record.name);
        if self.resolve_name(&record.name)?.as_deref() == Some(&record.id) {
            fs::remove_file(&name).at(&name)?;
        }
        let dir = self.dir(&record.id);
        let doomed = self.root.join(unique_name(".removing"));
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).at(&dir),
        }
        if !record.options.remove {
            fsync_dir(&self.root).at(&self.root)?;
        }
        fs::remove_dir_all(&doomed).at(&doomed)
    }

    /// Deletes what interrupted removals left (`.removing-*`).
    pub fn sweep(&self) -> Result<()> {
        for entry in fs::read_dir(&self.root).at(&self.root)? {
            let entry = entry.at(&self.root)?;
            if entry.file_name().to_string_lossy().starts_with(".removing") {
                let path = entry.path();
                fs::remove_dir_all(&path).at(&path)?;
            }
        }
        Ok(())
    }
}
