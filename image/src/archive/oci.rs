//! The oci-archive format: an OCI image layout (`oci-layout`, `index.json`, `blobs/ALG/HEX`)
//! in a tar. Blobs are written and read byte for byte, so manifest digests survive a round
//! trip; each name of an image is one `index.json` entry (see [`super::names`]).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;

use crate::digest::Digest;
use crate::manifest::{Descriptor, Index, Manifest, Platform};
use crate::media_types;
use crate::reference::Reference;
use crate::store::{Store, StoreError};

use super::load::{Planned, PlannedBlob};
use super::names::{name_from_annotations, oci_annotations};
use super::tar_index::TarIndex;
use super::tar_out::TarOut;
use super::{ArchiveError, Result, Selected, MAX_JSON_BYTES};

/// The layout's table of contents.
pub const INDEX_JSON: &str = "index.json";
/// The layout's version marker.
pub const OCI_LAYOUT: &str = "oci-layout";

/// The archive entry of blob `digest`.
pub fn blob_entry(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

/// Reads a small blob (manifest, index) and checks it against its descriptor.
fn read_verified(index: &TarIndex, descriptor: &Descriptor) -> Result<Vec<u8>> {
    let entry = blob_entry(&descriptor.digest);
    let bytes = index.read_small(&entry, INDEX_JSON, MAX_JSON_BYTES)?;
    let got = Digest::sha256_of(&bytes);
    if got != descriptor.digest || bytes.len() as u64 != descriptor.size {
        return Err(ArchiveError::BlobMismatch {
            entry,
            expected: descriptor.digest.clone(),
            got,
        });
    }
    Ok(bytes)
}

/// What to load from an oci-archive: one image per distinct manifest, with every name the
/// index gives it; an index inside the layout contributes its entry for this machine.
pub(crate) fn plan(index: &TarIndex) -> Result<Vec<Planned>> {
    let top = index.read_small(INDEX_JSON, "the archive", MAX_JSON_BYTES)?;
    let top = Index::parse(&top).map_err(|source| ArchiveError::Manifest {
        entry: INDEX_JSON.to_owned(),
        source,
    })?;
    let mut images: Vec<(Descriptor, Vec<Reference>)> = Vec::new();
    for entry in &top.manifests {
        let manifest = manifest_for_host(index, entry)?;
        let name = name_from_annotations(&entry.annotations)
            .transpose()
            .map_err(|(name, source)| ArchiveError::Reference {
                entry: INDEX_JSON.to_owned(),
                name,
                source,
            })?;
        match images.iter_mut().find(|(d, _)| d.digest == manifest.digest) {
            Some((_, tags)) => tags.extend(name),
            None => images.push((manifest, name.into_iter().collect())),
        }
    }
    images
        .into_iter()
        .map(|(descriptor, tags)| {
            let bytes = read_verified(index, &descriptor)?;
            let entry = blob_entry(&descriptor.digest);
            let manifest = Manifest::parse(&bytes).map_err(|source| ArchiveError::Manifest {
                entry: entry.clone(),
                source,
            })?;
            let blob = |d: &Descriptor| PlannedBlob {
                entry: blob_entry(&d.digest),
                descriptor: Some(d.clone()),
            };
            Ok(Planned {
                label: entry,
                config: blob(&manifest.config),
                layers: manifest.layers.iter().map(blob).collect(),
                manifest: Some(bytes),
                tags,
            })
        })
        .collect()
}

/// The manifest descriptor an `index.json` entry stands for on this machine.
fn manifest_for_host(index: &TarIndex, entry: &Descriptor) -> Result<Descriptor> {
    if media_types::is_manifest(&entry.media_type) {
        return Ok(entry.clone());
    }
    if !media_types::is_index(&entry.media_type) {
        return Err(ArchiveError::NotAnImage {
            entry: blob_entry(&entry.digest),
            media_type: entry.media_type.clone(),
        });
    }
    let bytes = read_verified(index, entry)?;
    let nested = Index::parse(&bytes).map_err(|source| ArchiveError::Manifest {
        entry: blob_entry(&entry.digest),
        source,
    })?;
    let host = Platform::host();
    nested
        .select(&host)
        .cloned()
        .ok_or_else(|| ArchiveError::NoPlatform {
            entry: blob_entry(&entry.digest),
            wanted: host,
        })
}

/// Writes `images` as an oci-archive: `oci-layout`, every blob once, then `index.json` with
/// one entry per name (one unnamed entry for an image saved without a name).
pub(crate) fn write(store: &Store, images: &[Selected], out: &mut TarOut) -> Result<()> {
    out.append_bytes(OCI_LAYOUT, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut written = HashSet::new();
    let mut entries = Vec::new();
    for selected in images {
        let manifest_digest = &selected.image.entry.manifest;
        let contents = store.contents(&selected.image)?;
        let (manifest_bytes, manifest) = (&contents.manifest_bytes, &contents.manifest);
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if written.insert(blob.digest.clone()) {
                let path = store.blob_path(&blob.digest);
                let mut file = File::open(&path).map_err(|source| StoreError::Io {
                    path: path.clone(),
                    source,
                })?;
                out.append_file(&blob_entry(&blob.digest), &mut file)?;
            }
        }
        if written.insert(manifest_digest.clone()) {
            out.append_bytes(&blob_entry(manifest_digest), manifest_bytes)?;
        }
        let descriptor = |annotations| Descriptor {
            media_type: manifest
                .media_type
                .clone()
                .unwrap_or_else(|| media_types::OCI_MANIFEST.to_owned()),
            digest: manifest_digest.clone(),
            size: manifest_bytes.len() as u64,
            platform: None,
            annotations,
        };
        if selected.tags.is_empty() {
            entries.push(descriptor(BTreeMap::new()));
        }
        entries.extend(selected.tags.iter().map(|t| descriptor(oci_annotations(t))));
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(media_types::OCI_INDEX.to_owned()),
        manifests: entries,
    };
    // An index of descriptors always serializes.
    out.append_bytes(INDEX_JSON, &serde_json::to_vec(&index).unwrap_or_default())
}
