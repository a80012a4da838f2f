//! The content-addressed image store under `<data-root>/image/`.
//!
//! ```text
//! image/
//!   lock              flock: shared by every ingest (pull, load, import), exclusive for GC
//!   index.lock        flock: exclusive around each read-modify-write of index.json
//!   index.json        images (ID → manifest, repo digests) and tags (reference → ID)
//!   blobs/sha256/HEX  manifests, configs and layer blobs, exactly as fetched or loaded
//!   layers/HEX/       one unpacked layer, named by its chain ID:
//!     diff/             the layer's files with overlayfs whiteouts (an overlay lower dir)
//!     layer.json        its diff ID, parent chain ID and unpacked size
//!   tmp/              staging of ingests in progress; emptied by GC
//! ```
//!
//! # Invariants
//!
//! - A file under `blobs/` holds exactly the bytes its name is the digest of: every byte is
//!   verified while it is staged in `tmp/`, and the file is then renamed into place.
//! - A directory under `layers/` is a complete, verified unpacking: its diff ID matched the
//!   image config before the staged directory was renamed into place, and GC renames it back
//!   into `tmp/` before deleting it, so a partly deleted layer is never visible.
//! - Everything `index.json` references exists: an ingest makes its content durable
//!   (`syncfs`), renames it into place, and only then updates the index.
//! - Nothing is reference-counted on disk: GC marks what the index reaches and sweeps the
//!   rest under the exclusive lock, so a crash at any point leaves at worst unreferenced
//!   content (and staging in `tmp/`) that the next GC removes.

pub mod fsutil;
mod gc;
mod index;
mod ingest;
pub mod lock;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, DigestError};
use crate::layer::UnpackError;
use crate::manifest::{self, ManifestError};

pub use gc::{Removal, Swept};
pub use index::{ImageEntry, ResolveError, Resolved};
pub use ingest::{BlobCheck, Ingest, NewImage, StoredLayer};

use fsutil::write_atomic;
use index::{Index, INDEX_VERSION};
use lock::FileLock;

/// Errors of the store; each names the file, digest or image it is about.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the kernel said.
        source: io::Error,
    },
    /// A name did not resolve to an image.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// `index.json` does not parse.
    #[error("image index {} is corrupt: {reason}", path.display())]
    CorruptIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Content did not match its digest.
    #[error("{what}: {source}")]
    Digest {
        /// What the content is (`layer blob sha256:…`, `config`, …).
        what: String,
        /// The mismatch.
        source: DigestError,
    },
    /// Content was longer or shorter than its descriptor says.
    #[error("{what} {digest} is {got} bytes, its descriptor says {expected}")]
    Size {
        /// What the content is.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
        /// What arrived.
        got: u64,
    },
    /// Content went on past the size its descriptor gives.
    #[error("{what} {digest} is longer than the {expected} bytes its descriptor says")]
    TooLong {
        /// What the content is.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
    },
    /// A layer's uncompressed content does not hash to the diff ID the config lists.
    #[error("layer {layer}: uncompressed content is {got}, the image config says {expected}")]
    DiffId {
        /// The layer (blob digest or archive path).
        layer: String,
        /// The config's diff ID.
        expected: Digest,
        /// The digest of what was unpacked.
        got: Digest,
    },
    /// A layer could not be unpacked.
    #[error("layer {layer}: {source}")]
    Unpack {
        /// The layer (blob digest or archive path).
        layer: String,
        /// Why.
        source: UnpackError,
    },
    /// A manifest or config is malformed.
    #[error("{what} {digest}: {source}")]
    Manifest {
        /// `manifest` or `config`.
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// Why.
        source: ManifestError,
    },
    /// An image references content that is neither in the store nor in the ingest.
    #[error("{what} {digest} is missing from the store")]
    Missing {
        /// `config`, `layer blob`, `layer`, `manifest`.
        what: &'static str,
        /// Its digest (a chain ID for layers).
        digest: Digest,
    },
    /// Deleting needs `--force`.
    #[error("unable to delete {image} (must be forced): {reason}")]
    Conflict {
        /// The image's short ID.
        image: String,
        /// Why.
        reason: String,
    },
}

/// A `Result` whose error is [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches the path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// An image as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The image ID: the digest of its config.
    pub id: Digest,
    /// Its manifest and repo digests.
    pub entry: ImageEntry,
    /// Full tagged references pointing at it, sorted.
    pub tags: Vec<String>,
}

impl Image {
    /// The 12-hex-digit short ID docker prints.
    pub fn short_id(&self) -> &str {
        &self.id.hex()[..12.min(self.id.hex().len())]
    }
}

/// One layer of an image, base first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    /// The manifest's descriptor of the layer blob.
    pub blob: manifest::Descriptor,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The chain ID naming the unpacked layer.
    pub chain_id: Digest,
    /// The unpacked directory, usable as an overlayfs lower directory.
    pub dir: PathBuf,
}

/// What the store holds of one image, read once: for listing, inspecting and saving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageContents {
    /// The manifest, byte for byte.
    pub manifest_bytes: Vec<u8>,
    /// The manifest, parsed.
    pub manifest: manifest::Manifest,
    /// The image config, byte for byte.
    pub config: Vec<u8>,
    /// The layers, base first.
    pub layers: Vec<ImageLayer>,
}

/// What `layer.json` records of an unpacked layer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LayerMeta {
    pub(crate) diff_id: Digest,
    pub(crate) parent: Option<Digest>,
    /// Bytes of regular-file content.
    pub(crate) size: u64,
}

/// A shared hold on the store: GC waits until it is dropped. See [`Store::read_lock`].
#[derive(Debug)]
pub struct ReadLock {
    _lock: FileLock,
}

/// The image store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store under `data_root/image`. When no other process is
    /// using the store, staging left behind by a killed process is removed.
    pub fn open(data_root: &Path) -> Result<Store> {
        let root = data_root.join("image");
        let store = Store { root };
        for dir in [store.blob_dir(), store.layers_dir(), store.tmp_dir()] {
            fs::create_dir_all(&dir).at(&dir)?;
        }
        if let Some(_alone) = FileLock::try_exclusive(&store.lock_path()).at(&store.lock_path())? {
            store.clear_tmp()?;
        }
        Ok(store)
    }

    /// Keeps GC from deleting anything while the returned guard lives (GC waits for it), for
    /// readers that stream many blobs, such as `save`.
    pub fn read_lock(&self) -> Result<ReadLock> {
        let lock = FileLock::shared(&self.lock_path()).at(&self.lock_path())?;
        Ok(ReadLock { _lock: lock })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob named `digest` is (or would be) kept.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    /// Whether the blob is in the store.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Reads a whole blob (manifests and configs; layers are streamed from [`Self::blob_path`]).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        fs::read(&path).at(&path)
    }

    /// The directory of the unpacked layer with this chain ID.
    pub fn layer_path(&self, chain_id: &Digest) -> PathBuf {
        self.layers_dir().join(chain_id.hex())
    }

    /// Whether the unpacked layer is in the store.
    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_path(chain_id).is_dir()
    }

    /// Bytes of regular-file content of the unpacked layer.
    pub fn layer_size(&self, chain_id: &Digest) -> Result<u64> {
        let path = self.layer_path(chain_id).join("layer.json");
        let bytes = fs::read(&path).at(&path)?;
        let meta: LayerMeta =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptIndex {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(meta.size)
    }

    /// Resolves a name as docker does: full ID, tag or repo digest, then a unique ID prefix.
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let index = self.load_index()?;
        let (id, _) = index.resolve(name)?;
        Ok(Self::image_of(&index, &id))
    }

    /// Every image, newest first by when the store got it.
    pub fn images(&self) -> Result<Vec<Image>> {
        let index = self.load_index()?;
        let mut images: Vec<Image> = index
            .images
            .keys()
            .map(|id| Self::image_of(&index, id))
            .collect();
        images.sort_by(|a, b| b.entry.added.cmp(&a.entry.added).then(a.id.cmp(&b.id)));
        Ok(images)
    }

    fn image_of(index: &Index, id: &Digest) -> Image {
        Image {
            id: id.clone(),
            entry: index.images[id].clone(),
            tags: index.tags_of(id),
        }
    }

    /// The image's layers, base first, with their unpacked directories (the overlay lower
    /// directories of a container's root).
    pub fn layers(&self, image: &Image) -> Result<Vec<ImageLayer>> {
        Ok(self.contents(image)?.layers)
    }

    /// The image's manifest, config and layers, each read once.
    pub fn contents(&self, image: &Image) -> Result<ImageContents> {
        self.contents_of(&image.entry.manifest)
    }

    fn contents_of(&self, manifest_digest: &Digest) -> Result<ImageContents> {
        let manifest_bytes = self.read_blob(manifest_digest)?;
        let manifest =
            manifest::Manifest::parse(&manifest_bytes).map_err(|source| StoreError::Manifest {
                what: "manifest",
                digest: manifest_digest.clone(),
                source,
            })?;
        let config = self.read_blob(&manifest.config.digest)?;
        let diff_ids =
            manifest::diff_ids(&config, &manifest).map_err(|source| StoreError::Manifest {
                what: "config",
                digest: manifest.config.digest.clone(),
                source,
            })?;
        let chain_ids = manifest::chain_ids(&diff_ids);
        let layers = manifest
            .layers
            .iter()
            .cloned()
            .zip(diff_ids)
            .zip(chain_ids)
            .map(|((blob, diff_id), chain_id)| ImageLayer {
                dir: self.layer_path(&chain_id).join("diff"),
                blob,
                diff_id,
                chain_id,
            })
            .collect();
        Ok(ImageContents {
            manifest_bytes,
            manifest,
            config,
            layers,
        })
    }

    /// Points the tag `target` at the image `source` names (`flotilla tag`).
    pub fn tag(&self, source: &str, target: &crate::reference::Reference) -> Result<Image> {
        self.update_index(|index| {
            let (id, _) = index.resolve(source)?;
            index.tags.insert(target.to_string(), id.clone());
            Ok(Self::image_of(index, &id))
        })
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Empties `tmp/`; only called while holding the exclusive lock.
    fn clear_tmp(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        for entry in fs::read_dir(&tmp).at(&tmp)? {
            let path = entry.at(&tmp)?.path();
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.at(&path)?;
        }
        Ok(())
    }

    fn load_index(&self) -> Result<Index> {
        let path = self.index_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Index::default()),
            Err(e) => return Err(e).at(&path),
        };
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptIndex {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if index.version != INDEX_VERSION {
            return Err(StoreError::CorruptIndex {
                path,
                reason: format!(
                    "format version {} (this flotilla reads {INDEX_VERSION})",
                    index.version
                ),
            });
        }
        Ok(index)
    }

    /// Runs `change` on the index under the index lock and saves the result atomically; when
    /// `change` fails nothing is written.
    fn update_index<T>(&self, change: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let lock_path = self.root.join("index.lock");
        let _lock = FileLock::exclusive(&lock_path).at(&lock_path)?;
        let mut index = self.load_index()?;
        let result = change(&mut index)?;
        let path = self.index_path();
        let bytes = serde_json::to_vec_pretty(&index).map_err(|e| StoreError::CorruptIndex {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &bytes).at(&path)?;
        Ok(result)
    }
}
