//! The docker-archive format (`docker save`): `manifest.json` lists each image's config file,
//! its `RepoTags` and its layer files, which hold uncompressed layer tars named by diff ID;
//! `repositories` maps names to the top layer for old loaders.
//!
//! Writing decompresses each stored layer blob so the layer file's digest is its diff ID, as
//! docker and podman expect. Reading synthesizes a Docker schema 2 manifest for each image from
//! the layer blobs as stored (see [`super::load`]).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest};
use crate::media_types;
use crate::reference::Reference;
use crate::store::{Store, StoreError, StoredLayer};

use super::load::{Planned, PlannedBlob};
use super::names::repo_tag;
use super::tar_index::TarIndex;
use super::tar_out::TarOut;
use super::{ArchiveError, Result, Selected, MAX_JSON_BYTES};
use crate::compression::{sniff, Compression};

/// The archive's table of contents.
pub const MANIFEST_JSON: &str = "manifest.json";

/// One image of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestEntry {
    /// The config file's name in the archive.
    pub config: String,
    /// The image's names (`busybox:latest`); `null` or absent for an untagged image.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// The layer files' names, base first.
    pub layers: Vec<String>,
}

/// Parses `manifest.json`.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ManifestEntry>> {
    serde_json::from_slice(bytes).map_err(|source| ArchiveError::Malformed {
        entry: MANIFEST_JSON.to_owned(),
        source,
    })
}

/// What to load from a docker-archive.
pub(crate) fn plan(index: &TarIndex) -> Result<Vec<Planned>> {
    let entries =
        parse_manifest(&index.read_small(MANIFEST_JSON, "the archive", MAX_JSON_BYTES)?)?;
    entries
        .into_iter()
        .map(|entry| {
            let tags = entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|name| {
                    Reference::parse(name).map_err(|source| ArchiveError::Reference {
                        entry: MANIFEST_JSON.to_owned(),
                        name: name.clone(),
                        source,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Planned {
                label: MANIFEST_JSON.to_owned(),
                config: PlannedBlob {
                    entry: entry.config,
                    descriptor: None,
                },
                layers: entry
                    .layers
                    .into_iter()
                    .map(|entry| PlannedBlob {
                        entry,
                        descriptor: None,
                    })
                    .collect(),
                manifest: None,
                tags,
            })
        })
        .collect()
}

/// A Docker schema 2 manifest for a loaded image: its config and its layer blobs as stored,
/// each typed by its compression.
pub(crate) fn synthesize_manifest(config: &[u8], layers: &[(StoredLayer, Compression)]) -> Vec<u8> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_types::DOCKER_MANIFEST.to_owned()),
        config: descriptor(
            media_types::DOCKER_CONFIG,
            Digest::sha256_of(config),
            config.len() as u64,
        ),
        layers: layers
            .iter()
            .map(|(layer, compression)| {
                descriptor(
                    compression.docker_layer_type(),
                    layer.blob.clone(),
                    layer.blob_size,
                )
            })
            .collect(),
        annotations: BTreeMap::new(),
    };
    // Serializing plain strings, numbers and digests cannot fail.
    serde_json::to_vec_pretty(&manifest).unwrap_or_default()
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// Writes `images` as a docker-archive: each config and (decompressed) layer once, then
/// `manifest.json` and `repositories`.
pub(crate) fn write(store: &Store, images: &[Selected], out: &mut TarOut) -> Result<()> {
    let mut written = HashSet::new();
    let mut entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for selected in images {
        let contents = store.contents(&selected.image)?;
        let config_name = format!("{}.json", contents.manifest.config.digest.hex());
        if written.insert(config_name.clone()) {
            out.append_bytes(&config_name, &contents.config)?;
        }
        let mut layer_names = Vec::new();
        for layer in &contents.layers {
            let name = format!("{}.tar", layer.diff_id.hex());
            if written.insert(name.clone()) {
                write_layer(store, &layer.blob.digest, &name, out)?;
            }
            layer_names.push(name);
        }
        for tag in &selected.tags {
            let familiar = repo_tag(tag);
            let repository = tag
                .tag()
                .and_then(|t| familiar.strip_suffix(&format!(":{t}")))
                .unwrap_or(&familiar);
            if let (Some(t), Some(top)) = (tag.tag(), layer_names.last()) {
                repositories
                    .entry(repository.to_owned())
                    .or_default()
                    .insert(t.to_owned(), top.trim_end_matches(".tar").to_owned());
            }
        }
        entries.push(ManifestEntry {
            config: config_name,
            repo_tags: Some(selected.tags.iter().map(repo_tag).collect()),
            layers: layer_names,
        });
    }
    out.append_bytes(MANIFEST_JSON, &to_json(&entries))?;
    out.append_bytes("repositories", &to_json(&repositories))
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    // Maps of strings and plain structs always serialize.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Writes one layer blob uncompressed: copied as is when it is a plain tar, decompressed
/// otherwise.
fn write_layer(store: &Store, blob: &Digest, name: &str, out: &mut TarOut) -> Result<()> {
    let path = store.blob_path(blob);
    let io_error = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let mut file = File::open(&path).map_err(io_error)?;
    let (compression, _) = sniff(&mut file).map_err(io_error)?;
    file.rewind().map_err(io_error)?;
    if compression == Compression::None {
        return out.append_file(name, &mut file);
    }
    let mut decoder = compression.decoder(file).map_err(io_error)?;
    let reader: &mut dyn Read = &mut decoder;
    out.append_stream(name, reader, &|source| ArchiveError::Blob {
        digest: blob.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_json_of_docker_podman_and_skopeo_parses() {
        let entries = parse_manifest(
            br#"[{"Config":"c.json","RepoTags":["busybox:latest"],"Layers":["a/layer.tar"]},
                 {"Config":"d.json","RepoTags":null,"Layers":[]},
                 {"Config":"e.json","Layers":["x.tar"],"LayerSources":{}}]"#,
        )
        .unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0].repo_tags.as_deref(),
            Some(&["busybox:latest".to_owned()][..])
        );
        assert_eq!(entries[1].repo_tags, None);
        assert_eq!(entries[2].layers, ["x.tar"]);
        let error = parse_manifest(br#"{"Config":"c.json"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("malformed manifest.json: invalid type"),
            "{error}"
        );
    }
}
