//! Adding content to the store: verified blobs, unpacked layers, and the image that ties them
//! together, committed in an order that keeps the store consistent across a crash.
//!
//! An [`Ingest`] holds the store's lock shared, so GC waits for it, and stages everything in
//! its own directory under `tmp/`. [`Ingest::commit`] checks that the image is complete,
//! flushes the file system once, renames the staged blobs and layers into place and only then
//! records the image in the index. Dropping an ingest removes its staging, so a failed or
//! interrupted ingest leaves nothing visible behind. Layers can be added from several threads
//! at once.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::io::Errno;

use crate::digest::{Digest, Sha256Digester, Verifier};
use crate::layer::{unpack, UnpackOptions, WhiteoutMode};
use crate::manifest::{self, Manifest};
use crate::reference::Reference;

use super::fsutil::{fsync_dir, syncfs, unique_name};
use super::index::ImageEntry;
use super::{FileLock, IoContext, LayerMeta, Result, Store, StoreError};

/// What is known in advance about a blob being added.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlobCheck<'a> {
    /// Its digest, when a manifest named it; the content must hash to it.
    pub digest: Option<&'a Digest>,
    /// Its size, when a manifest named it; the content must be exactly that long.
    pub size: Option<u64>,
}

/// A layer the ingest has (staged, or already in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLayer {
    /// The digest of the layer blob as stored.
    pub blob: Digest,
    /// The blob's size.
    pub blob_size: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The chain ID naming the unpacked layer.
    pub chain_id: Digest,
}

/// An image to record once its content is in.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    /// The manifest, byte for byte (its digest is computed).
    pub manifest: &'a [u8],
    /// Tags to point at the image.
    pub tags: &'a [Reference],
    /// `name@digest` repo digests to record.
    pub repo_digests: &'a [String],
}

/// Staged content, by digest (blobs) or chain ID (layers).
#[derive(Debug, Default)]
struct Staged {
    blobs: HashMap<Digest, PathBuf>,
    layers: HashMap<Digest, PathBuf>,
}

/// An ingest in progress; see the module documentation.
#[derive(Debug)]
pub struct Ingest<'s> {
    store: &'s Store,
    dir: PathBuf,
    staged: Mutex<Staged>,
    _lock: FileLock,
}

impl Store {
    /// Starts adding content; waits while a GC runs.
    pub fn ingest(&self) -> Result<Ingest<'_>> {
        let lock = FileLock::shared(&self.lock_path()).at(&self.lock_path())?;
        let dir = self.tmp_dir().join(unique_name("ingest"));
        fs::create_dir(&dir).at(&dir)?;
        Ok(Ingest {
            store: self,
            dir,
            staged: Mutex::new(Staged::default()),
            _lock: lock,
        })
    }
}

impl Drop for Ingest<'_> {
    fn drop(&mut self) {
        // Best effort: whatever is left is removed by the next GC.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Ingest<'_> {
    /// The store this ingest adds to.
    pub fn store(&self) -> &Store {
        self.store
    }

    /// Whether the blob is in the store or staged.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.staged().blobs.contains_key(digest) || self.store.has_blob(digest)
    }

    /// Whether the unpacked layer is in the store or staged.
    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.staged().layers.contains_key(chain_id) || self.store.has_layer(chain_id)
    }

    /// Reads a whole blob, staged or stored.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let staged = self.staged().blobs.get(digest).cloned();
        match staged {
            Some(path) => fs::read(&path).at(&path),
            None => self.store.read_blob(digest),
        }
    }

    /// Adds a small blob held in memory (a manifest, a config) and returns its digest.
    pub fn put_blob(&self, bytes: &[u8], check: BlobCheck<'_>) -> Result<Digest> {
        self.write_blob(bytes, check, "blob")
    }

    /// Streams a blob into the store, verifying every byte; returns its digest.
    pub fn write_blob(
        &self,
        reader: impl Read,
        check: BlobCheck<'_>,
        what: &'static str,
    ) -> Result<Digest> {
        let mut staging = BlobStaging::create(self, check, what)?;
        let mut reader = reader;
        copy_into(&mut reader, &mut staging)?;
        let (digest, _) = staging.finish(self)?;
        Ok(digest)
    }

    /// Adds a layer: streams the blob from `reader` into the store while unpacking it,
    /// verifies the blob against `check` and the uncompressed content against `diff_id`, and
    /// stages the unpacked layer under the chain ID it makes on top of `parent` (a chain ID).
    /// When that layer is already there, only the blob is stored.
    pub fn add_layer(
        &self,
        reader: impl Read,
        check: BlobCheck<'_>,
        diff_id: Option<&Digest>,
        parent: Option<&Digest>,
        label: &str,
    ) -> Result<StoredLayer> {
        let mut staging = BlobStaging::create(self, check, "layer blob")?;
        let mut reader = reader;
        if let Some(diff_id) = diff_id {
            let chain_id = manifest::chain_id(parent, diff_id);
            if self.has_layer(&chain_id) {
                copy_into(&mut reader, &mut staging)?;
                let (blob, blob_size) = staging.finish(self)?;
                return Ok(StoredLayer {
                    blob,
                    blob_size,
                    diff_id: diff_id.clone(),
                    chain_id,
                });
            }
        }

        let layer_dir = self.dir.join(unique_name("layer"));
        let diff_dir = layer_dir.join("diff");
        fs::create_dir_all(&diff_dir).at(&diff_dir)?;
        let mut tee = Tee {
            reader: &mut reader,
            staging: &mut staging,
            write_error: None,
        };
        let options = UnpackOptions {
            whiteouts: WhiteoutMode::Overlay,
        };
        let unpacked = unpack(&mut tee, &diff_dir, &options);
        // The blob must be stored whole even if the tar ended before the stream did.
        let drained = unpacked
            .as_ref()
            .ok()
            .map(|_| io::copy(&mut tee, &mut io::sink()));
        if let Some(source) = tee.write_error.take() {
            return Err(staging.error(source));
        }
        let stats = unpacked.map_err(|source| StoreError::Unpack {
            layer: label.to_owned(),
            source,
        })?;
        if let Some(Err(source)) = drained {
            return Err(StoreError::Unpack {
                layer: label.to_owned(),
                source: crate::layer::UnpackError::CorruptTar(source),
            });
        }
        let (blob, blob_size) = staging.finish(self)?;
        if let Some(expected) = diff_id {
            if *expected != stats.diff_id {
                return Err(StoreError::DiffId {
                    layer: label.to_owned(),
                    expected: expected.clone(),
                    got: stats.diff_id,
                });
            }
        }
        let chain_id = manifest::chain_id(parent, &stats.diff_id);
        let meta = LayerMeta {
            diff_id: stats.diff_id.clone(),
            parent: parent.cloned(),
            size: stats.bytes,
        };
        let meta_path = layer_dir.join("layer.json");
        let meta_json = serde_json::to_vec_pretty(&meta).map_err(io::Error::other);
        fs::write(&meta_path, meta_json.at(&meta_path)?).at(&meta_path)?;
        self.staged().layers.insert(chain_id.clone(), layer_dir);
        Ok(StoredLayer {
            blob,
            blob_size,
            diff_id: stats.diff_id,
            chain_id,
        })
    }

    /// Records an image whose config and layers this ingest (or the store) has: checks it is
    /// complete, makes the staged content durable and visible, then updates the index.
    /// Returns the image ID.
    pub fn commit(&self, image: &NewImage<'_>) -> Result<Digest> {
        let manifest_digest = Digest::sha256_of(image.manifest);
        let manifest = Manifest::parse(image.manifest).map_err(|source| StoreError::Manifest {
            what: "manifest",
            digest: manifest_digest.clone(),
            source,
        })?;
        let config_digest = manifest.config.digest.clone();
        let config = self
            .read_blob(&config_digest)
            .map_err(|_| StoreError::Missing {
                what: "config",
                digest: config_digest.clone(),
            })?;
        let diff_ids =
            manifest::diff_ids(&config, &manifest).map_err(|source| StoreError::Manifest {
                what: "config",
                digest: config_digest.clone(),
                source,
            })?;
        for layer in &manifest.layers {
            if !self.has_blob(&layer.digest) {
                return Err(StoreError::Missing {
                    what: "layer blob",
                    digest: layer.digest.clone(),
                });
            }
        }
        for chain_id in manifest::chain_ids(&diff_ids) {
            if !self.has_layer(&chain_id) {
                return Err(StoreError::Missing {
                    what: "layer",
                    digest: chain_id,
                });
            }
        }
        self.put_blob(image.manifest, BlobCheck::default())?;
        self.publish()?;

        let entry = ImageEntry {
            manifest: manifest_digest,
            repo_digests: image.repo_digests.iter().cloned().collect::<BTreeSet<_>>(),
            added: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        self.store.update_index(|index| {
            index.add(&config_digest, entry, image.tags);
            Ok(())
        })?;
        Ok(config_digest)
    }

    /// Flushes the staged content to disk and renames it into the store.
    fn publish(&self) -> Result<()> {
        let staged = std::mem::take(&mut *self.staged());
        syncfs(&self.dir).at(&self.dir)?;
        for (digest, path) in &staged.blobs {
            let target = self.store.blob_path(digest);
            fs::rename(path, &target).at(&target)?;
        }
        for (chain_id, path) in &staged.layers {
            let target = self.store.layer_path(chain_id);
            match fs::rename(path, &target) {
                Ok(()) => {}
                // Another ingest published the same layer first; ours is dropped with staging.
                Err(e) if is_already_there(&e) => {}
                Err(e) => return Err(e).at(&target),
            }
        }
        let blob_dir = self.store.blob_dir();
        fsync_dir(&blob_dir).at(&blob_dir)?;
        let layers_dir = self.store.layers_dir();
        fsync_dir(&layers_dir).at(&layers_dir)?;
        Ok(())
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, Staged> {
        // A panic while holding the lock leaves the maps consistent (single inserts/takes).
        self.staged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a rename of a directory failed because the target directory exists.
fn is_already_there(e: &io::Error) -> bool {
    [Errno::NOTEMPTY, Errno::EXIST]
        .iter()
        .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

/// How a staged blob's content is checked.
#[derive(Debug)]
enum Check {
    Verify(Verifier, Digest),
    Compute(Sha256Digester),
}

/// A blob being written into the ingest's staging directory, hashed as it goes. When the store
/// already has the blob, the bytes are only hashed.
#[derive(Debug)]
struct BlobStaging {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    check: Check,
    expected_size: Option<u64>,
    size: u64,
    what: &'static str,
}

impl BlobStaging {
    fn create(
        ingest: &Ingest<'_>,
        check: BlobCheck<'_>,
        what: &'static str,
    ) -> Result<BlobStaging> {
        let path = ingest.dir.join(unique_name("blob"));
        let known = check.digest.is_some_and(|d| ingest.has_blob(d));
        let file = if known {
            None
        } else {
            Some(BufWriter::with_capacity(
                1 << 20,
                File::create(&path).at(&path)?,
            ))
        };
        let check_kind = match check.digest {
            Some(digest) => Check::Verify(
                Verifier::new(digest).map_err(|source| StoreError::Digest {
                    what: what.to_owned(),
                    source,
                })?,
                digest.clone(),
            ),
            None => Check::Compute(Sha256Digester::default()),
        };
        Ok(BlobStaging {
            path,
            file,
            check: check_kind,
            expected_size: check.size,
            size: 0,
            what,
        })
    }

    /// The store's error for a failed read or write of this blob.
    fn error(&self, source: io::Error) -> StoreError {
        match (self.expected_size, &self.check) {
            (Some(expected), Check::Verify(_, digest)) if self.size > expected => {
                StoreError::TooLong {
                    what: self.what,
                    digest: digest.clone(),
                    expected,
                }
            }
            _ => StoreError::Io {
                path: self.path.clone(),
                source,
            },
        }
    }

    /// Checks the digest and size and stages the file under its digest.
    fn finish(self, ingest: &Ingest<'_>) -> Result<(Digest, u64)> {
        let digest = match self.check {
            Check::Verify(verifier, digest) => {
                verifier.finish().map_err(|source| StoreError::Digest {
                    what: format!("{} {digest}", self.what),
                    source,
                })?;
                digest
            }
            Check::Compute(digester) => digester.finish(),
        };
        if let Some(expected) = self.expected_size {
            if expected != self.size {
                return Err(StoreError::Size {
                    what: self.what,
                    digest,
                    expected,
                    got: self.size,
                });
            }
        }
        if let Some(file) = self.file {
            let file = file.into_inner().map_err(io::IntoInnerError::into_error);
            drop(file.at(&self.path)?);
            if ingest.has_blob(&digest) {
                fs::remove_file(&self.path).at(&self.path)?;
            } else {
                ingest.staged().blobs.insert(digest.clone(), self.path);
            }
        }
        Ok((digest, self.size))
    }
}

impl Write for BlobStaging {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.size += bytes.len() as u64;
        if let Some(expected) = self.expected_size {
            if self.size > expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is longer than the {expected} bytes its descriptor says",
                        self.what
                    ),
                ));
            }
        }
        match &mut self.check {
            Check::Verify(verifier, _) => verifier.update(bytes),
            Check::Compute(digester) => digester.update(bytes),
        }
        if let Some(file) = &mut self.file {
            file.write_all(bytes)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

/// Copies `reader` into a staged blob, naming the blob's file on write errors.
fn copy_into(reader: &mut impl Read, staging: &mut BlobStaging) -> Result<()> {
    match io::copy(reader, staging) {
        Ok(_) => Ok(()),
        Err(source) => Err(staging.error(source)),
    }
}

/// Reads from `reader`, writing everything read into `staging`; a write error is kept aside so
/// that it is reported as the store's (disk full) and not as a corrupt tar.
struct Tee<'a, R> {
    reader: &'a mut R,
    staging: &'a mut BlobStaging,
    write_error: Option<io::Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        if let Err(e) = self.staging.write_all(&buf[..n]) {
            let message = e.to_string();
            self.write_error = Some(e);
            return Err(io::Error::other(message));
        }
        Ok(n)
    }
}
