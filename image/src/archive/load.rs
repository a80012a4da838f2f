//! Loading an archive into the store: make the archive seekable (read a plain regular file in
//! place, otherwise spool the decompressed stream into an anonymous file in the store's `tmp/`),
//! index its entries, plan the images from `manifest.json` or `index.json`, then ingest every
//! config and layer (layers on all cores, each verified against its digest and diff ID) and
//! commit the images only when all of them are in. Any error drops the ingest, which removes
//! what was staged: the store is unchanged.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Seek};
use std::sync::Mutex;

use crate::compression::{sniff, Compression};
use crate::digest::Digest;
use crate::manifest::{self, Descriptor};
use crate::parallel;
use crate::reference::Reference;
use crate::store::{BlobCheck, Ingest, NewImage, Store, StoreError, StoredLayer};

use super::tar_index::TarIndex;
use super::tar_out::copy_from;
use super::{docker, oci, ArchiveError, Result, MAX_CONFIG_BYTES};

/// An image loaded from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Its ID (config digest).
    pub id: Digest,
    /// The names the archive gave it.
    pub tags: Vec<Reference>,
}

/// A blob to take from the archive: its entry, and its descriptor when a manifest gives one.
#[derive(Debug, Clone)]
pub(crate) struct PlannedBlob {
    pub(crate) entry: String,
    pub(crate) descriptor: Option<Descriptor>,
}

/// An image to load, as a format reader found it.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// What lists the image (`manifest.json`, `blobs/sha256/…`), for errors.
    pub(crate) label: String,
    pub(crate) config: PlannedBlob,
    pub(crate) layers: Vec<PlannedBlob>,
    /// The manifest, byte for byte; `None` to synthesize a Docker schema 2 one.
    pub(crate) manifest: Option<Vec<u8>>,
    pub(crate) tags: Vec<Reference>,
}

/// Loads every image of the archive `input` (docker-archive or oci-archive; plain, gzip or
/// zstd; a file or a pipe) into `store`.
pub fn load(store: &Store, input: File) -> Result<Vec<Loaded>> {
    let ingest = store.ingest()?;
    let index = TarIndex::build(seekable(store, input)?)?;
    let plans = if index.contains(docker::MANIFEST_JSON) {
        docker::plan(&index)?
    } else if index.contains(oci::INDEX_JSON) {
        oci::plan(&index)?
    } else {
        return Err(ArchiveError::UnknownFormat);
    };
    ingest_all(&ingest, &index, &plans)
}

/// The archive as a plain tar file that can be read at any offset.
fn seekable(store: &Store, mut input: File) -> Result<File> {
    let regular = input.metadata().map_err(ArchiveError::Input)?.is_file();
    if regular {
        let start = input.stream_position().map_err(ArchiveError::Input)?;
        let (compression, _) = sniff(&mut input).map_err(ArchiveError::Input)?;
        input
            .seek(io::SeekFrom::Start(start))
            .map_err(ArchiveError::Input)?;
        if compression == Compression::None {
            return Ok(input);
        }
    }
    let (compression, stream) = sniff(input).map_err(ArchiveError::Input)?;
    let spool_dir = store.root().join("tmp");
    let mut spool = tempfile::tempfile_in(&spool_dir).map_err(|source| ArchiveError::Io {
        path: spool_dir.clone(),
        source,
    })?;
    let mut decoder = compression.decoder(stream).map_err(ArchiveError::Input)?;
    copy_from(&mut decoder, &mut spool, &ArchiveError::Input, &|source| {
        ArchiveError::Io {
            path: spool_dir.clone(),
            source,
        }
    })?;
    spool.rewind().map_err(ArchiveError::Input)?;
    Ok(spool)
}

/// One layer to ingest: the archive entry and the chain it makes.
#[derive(Debug, Clone)]
struct LayerJob {
    /// What lists the layer, for errors.
    by: String,
    blob: PlannedBlob,
    diff_id: Digest,
    parent: Option<Digest>,
    chain_id: Digest,
}

/// Ingests the configs and layers of `plans`, then commits each image.
fn ingest_all(ingest: &Ingest<'_>, index: &TarIndex, plans: &[Planned]) -> Result<Vec<Loaded>> {
    let mut configs = Vec::new();
    let mut jobs: Vec<LayerJob> = Vec::new();
    let mut queued = HashSet::new();
    let mut image_layers = Vec::new();
    for plan in plans {
        let config = index.read_small(&plan.config.entry, &plan.label, MAX_CONFIG_BYTES)?;
        ingest
            .put_blob(&config, check(&plan.config.descriptor))
            .map_err(|source| ArchiveError::Entry {
                entry: plan.config.entry.clone(),
                source,
            })?;
        let diff_ids = manifest::diff_ids_for(&config, plan.layers.len()).map_err(|source| {
            ArchiveError::Manifest {
                entry: plan.config.entry.clone(),
                source,
            }
        })?;
        let chain_ids = manifest::chain_ids(&diff_ids);
        let mut keys = Vec::new();
        for (i, blob) in plan.layers.iter().enumerate() {
            let key = (blob.entry.clone(), chain_ids[i].clone());
            // A layer shared by several images of the archive is ingested once.
            if queued.insert(key.clone()) {
                jobs.push(LayerJob {
                    by: plan.label.clone(),
                    blob: blob.clone(),
                    diff_id: diff_ids[i].clone(),
                    parent: i.checked_sub(1).map(|p| chain_ids[p].clone()),
                    chain_id: chain_ids[i].clone(),
                });
            }
            keys.push(key);
        }
        configs.push(config);
        image_layers.push(keys);
    }

    let stored: Mutex<HashMap<(String, Digest), (StoredLayer, Compression)>> =
        Mutex::new(HashMap::new());
    parallel::for_each(&jobs, parallel::cores(), |job| {
        let layer = ingest_layer(ingest, index, job)?;
        let mut stored = stored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stored.insert((job.blob.entry.clone(), job.chain_id.clone()), layer);
        Ok::<(), ArchiveError>(())
    })?;
    let stored = stored
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);

    let manifests: Vec<Vec<u8>> = plans
        .iter()
        .zip(&configs)
        .zip(&image_layers)
        .map(|((plan, config), keys)| match &plan.manifest {
            Some(bytes) => bytes.clone(),
            None => {
                let layers: Vec<_> = keys.iter().map(|k| stored[k].clone()).collect();
                docker::synthesize_manifest(config, &layers)
            }
        })
        .collect();
    plans
        .iter()
        .zip(&manifests)
        .map(|(plan, manifest)| {
            let id = ingest.commit(&NewImage {
                manifest,
                tags: &plan.tags,
                repo_digests: &[],
            })?;
            Ok(Loaded {
                id,
                tags: plan.tags.clone(),
            })
        })
        .collect()
}

fn check(descriptor: &Option<Descriptor>) -> BlobCheck<'_> {
    BlobCheck {
        digest: descriptor.as_ref().map(|d| &d.digest),
        size: descriptor.as_ref().map(|d| d.size),
    }
}

/// Streams one layer entry into the store, unpacking and verifying it.
fn ingest_layer(
    ingest: &Ingest<'_>,
    index: &TarIndex,
    job: &LayerJob,
) -> Result<(StoredLayer, Compression)> {
    let entry = &job.blob.entry;
    // Large reads: the unpacker reads in header-sized pieces, each a `pread` otherwise.
    let reader = io::BufReader::with_capacity(1 << 20, index.reader(entry, &job.by)?);
    let (compression, stream) = sniff(reader).map_err(ArchiveError::Input)?;
    let layer = ingest
        .add_layer(
            stream,
            check(&job.blob.descriptor),
            Some(&job.diff_id),
            job.parent.as_ref(),
            entry,
        )
        .map_err(|source| match source {
            // These already name the layer by its entry.
            StoreError::DiffId { .. } | StoreError::Unpack { .. } => ArchiveError::Store(source),
            source => ArchiveError::Entry {
                entry: entry.clone(),
                source,
            },
        })?;
    Ok((layer, compression))
}
