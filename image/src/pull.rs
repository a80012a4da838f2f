//! Pulling an image from a registry into the store: resolve the manifest (picking the platform
//! from an index), fetch the config, then download and unpack the missing layers in parallel,
//! every byte verified, and commit the image only when all of it is in.
//!
//! Each layer is one stream: registry → blob file (hashed against the manifest's digest) →
//! decompressor → unpacker (hashed against the config's diff ID). Layers the store already has
//! are not fetched; a blob the store has but whose layer is not unpacked is unpacked from disk.

use std::fs::File;
use std::io::{self, Read};

use crate::digest::Digest;
use crate::manifest::{self, Index, Manifest, ManifestError, Platform};
use crate::media_types;
use crate::parallel;
use crate::reference::Reference;
use crate::registry::{Client, RegistryError};
use crate::store::{BlobCheck, Ingest, NewImage, Store, StoreError};

/// The most layers an image may have (overlayfs stacks at most 128 lower directories, as
/// docker's limit of 125 reflects); a manifest listing more is refused before any download.
pub const MAX_LAYERS: usize = 125;

/// The largest image config accepted (its descriptor is checked before the fetch).
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Talking to the registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store refused or could not keep the content.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manifest, index or config is malformed.
    #[error("{reference}: {source}")]
    Manifest {
        /// The image pulled.
        reference: String,
        /// Why.
        source: ManifestError,
    },
    /// The index lists no manifest for the wanted platform.
    #[error("no matching manifest for {wanted} in the manifest list entries of {reference} (it has: {available})")]
    NoPlatform {
        /// The image pulled.
        reference: String,
        /// The platform asked for.
        wanted: Platform,
        /// The platforms the index lists.
        available: String,
    },
    /// The registry answered with a media type that is not an image.
    #[error("{reference} is a {media_type}, not an image manifest or index")]
    NotAnImage {
        /// The image pulled.
        reference: String,
        /// What it is.
        media_type: String,
    },
    /// Too many layers, or a config too large.
    #[error("{reference}: {reason}")]
    Limit {
        /// The image pulled.
        reference: String,
        /// Which limit.
        reason: String,
    },
}

/// What a pull reports as it goes; called from the download threads.
pub trait PullProgress: Sync {
    /// The image's layers are known: their blob descriptors, and whether each is present.
    fn layers(&self, layers: &[(manifest::Descriptor, bool)]);
    /// `bytes` more of layer `digest` arrived.
    fn advanced(&self, digest: &Digest, bytes: u64);
    /// Layer `digest` is downloaded, verified and unpacked.
    fn finished(&self, digest: &Digest);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl PullProgress for Quiet {
    fn layers(&self, _: &[(manifest::Descriptor, bool)]) {}
    fn advanced(&self, _: &Digest, _: u64) {}
    fn finished(&self, _: &Digest) {}
}

/// What a successful pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The image ID.
    pub id: Digest,
    /// The digest of what the reference pointed at (the index, for a multi-platform image).
    pub digest: Digest,
    /// Layers that were downloaded (the rest were already in the store).
    pub downloaded: usize,
    /// Whether the store had the image's content already and only names changed.
    pub up_to_date: bool,
}

/// Pulls `reference` for `platform` into `store`.
pub fn pull(
    client: &Client,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
    progress: &dyn PullProgress,
) -> Result<Pulled, PullError> {
    let name = reference.to_string();
    let top = client.manifest(reference)?;
    let manifest_bytes = if media_types::is_index(&top.media_type) {
        let index = Index::parse(&top.bytes).map_err(|source| PullError::Manifest {
            reference: name.clone(),
            source,
        })?;
        let entry = index
            .select(platform)
            .ok_or_else(|| PullError::NoPlatform {
                reference: name.clone(),
                wanted: platform.clone(),
                available: available_platforms(&index),
            })?;
        client.manifest_by_digest(reference, &entry.digest)?.bytes
    } else if media_types::is_manifest(&top.media_type) {
        top.bytes
    } else {
        return Err(PullError::NotAnImage {
            reference: name,
            media_type: top.media_type,
        });
    };
    let manifest = Manifest::parse(&manifest_bytes).map_err(|source| PullError::Manifest {
        reference: name.clone(),
        source,
    })?;
    check_limits(&name, &manifest)?;

    let ingest = store.ingest()?;
    let config_digest = &manifest.config.digest;
    if !ingest.has_blob(config_digest) {
        let reader = client.blob(reference, config_digest, manifest.config.size)?;
        ingest.write_blob(
            reader,
            BlobCheck {
                digest: Some(config_digest),
                size: Some(manifest.config.size),
            },
            "config",
        )?;
    }
    let config = ingest.read_blob(config_digest)?;
    let diff_ids =
        manifest::diff_ids(&config, &manifest).map_err(|source| PullError::Manifest {
            reference: name.clone(),
            source,
        })?;
    let chain_ids = manifest::chain_ids(&diff_ids);
    let missing: Vec<usize> = (0..manifest.layers.len())
        .filter(|&i| {
            !ingest.has_layer(&chain_ids[i]) || !ingest.has_blob(&manifest.layers[i].digest)
        })
        .collect();
    progress.layers(
        &manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| (layer.clone(), !missing.contains(&i)))
            .collect::<Vec<_>>(),
    );

    let jobs = LayerJobs {
        client,
        ingest: &ingest,
        reference,
        manifest: &manifest,
        diff_ids: &diff_ids,
        chain_ids: &chain_ids,
        progress,
    };
    parallel::for_each(&missing, client.max_concurrent_downloads(), |&i| {
        jobs.fetch(i)
    })?;

    let repo_digest = format!("{}@{}", reference.name(), top.digest);
    let tags: Vec<Reference> = reference
        .tag()
        .map(|_| reference.clone())
        .into_iter()
        .collect();
    let up_to_date = missing.is_empty() && store.resolve(&config_digest.to_string()).is_ok();
    let id = ingest.commit(&NewImage {
        manifest: &manifest_bytes,
        tags: &tags,
        repo_digests: &[repo_digest],
    })?;
    Ok(Pulled {
        id,
        digest: top.digest,
        downloaded: missing.len(),
        up_to_date,
    })
}

fn available_platforms(index: &Index) -> String {
    let platforms: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|m| m.platform.as_ref().map(ToString::to_string))
        .collect();
    if platforms.is_empty() {
        "no platforms".to_owned()
    } else {
        platforms.join(", ")
    }
}

fn check_limits(name: &str, manifest: &Manifest) -> Result<(), PullError> {
    if manifest.layers.len() > MAX_LAYERS {
        return Err(PullError::Limit {
            reference: name.to_owned(),
            reason: format!(
                "the manifest lists {} layers, more than the {MAX_LAYERS} an image may have",
                manifest.layers.len()
            ),
        });
    }
    if manifest.config.size > MAX_CONFIG_BYTES {
        return Err(PullError::Limit {
            reference: name.to_owned(),
            reason: format!(
                "the image config is {} bytes, more than the {MAX_CONFIG_BYTES} allowed",
                manifest.config.size
            ),
        });
    }
    Ok(())
}

/// The layer downloads of one pull, shared by its worker threads.
struct LayerJobs<'a> {
    client: &'a Client,
    ingest: &'a Ingest<'a>,
    reference: &'a Reference,
    manifest: &'a Manifest,
    diff_ids: &'a [Digest],
    chain_ids: &'a [Digest],
    progress: &'a dyn PullProgress,
}

impl LayerJobs<'_> {
    /// Downloads (or reads from the store) and unpacks layer `i`.
    fn fetch(&self, i: usize) -> Result<(), PullError> {
        let layer = &self.manifest.layers[i];
        let source: Box<dyn Read + Send> = if self.ingest.has_blob(&layer.digest) {
            let path = self.ingest.store().blob_path(&layer.digest);
            Box::new(File::open(&path).map_err(|source| StoreError::Io { path, source })?)
        } else {
            Box::new(
                self.client
                    .blob(self.reference, &layer.digest, layer.size)?,
            )
        };
        let reader = Counting {
            inner: source,
            digest: &layer.digest,
            progress: self.progress,
        };
        let parent = i.checked_sub(1).map(|p| &self.chain_ids[p]);
        self.ingest.add_layer(
            reader,
            BlobCheck {
                digest: Some(&layer.digest),
                size: Some(layer.size),
            },
            Some(&self.diff_ids[i]),
            parent,
            &layer.digest.to_string(),
        )?;
        self.progress.finished(&layer.digest);
        Ok(())
    }
}

/// Reports the bytes read through it.
struct Counting<'a, R> {
    inner: R,
    digest: &'a Digest,
    progress: &'a dyn PullProgress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advanced(self.digest, n as u64);
        Ok(n)
    }
}
