//! Removing images and collecting garbage: `rmi`, `image prune`, and the mark-and-sweep that
//! follows them.
//!
//! Reference counts are not kept on disk, where a crash could leave them wrong: GC takes the
//! store's lock exclusively (so no ingest is half done), marks every blob and layer the index
//! reaches, and sweeps the rest. A layer is renamed into `tmp/` before it is deleted, so a
//! crash mid-delete never leaves a partial layer under `layers/`.

use std::collections::HashSet;
use std::fs;

use crate::digest::Digest;
use crate::reference::Reference;

use super::fsutil::unique_name;
use super::index::{Index, Resolved};
use super::{FileLock, IoContext, Result, Store, StoreError};

/// One line of what `rmi` and `prune` did, as docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A name no longer points at the image (`Untagged: busybox:latest`).
    Untagged(String),
    /// An image or layer was deleted (`Deleted: sha256:…`).
    Deleted(Digest),
}

/// What a GC removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Blobs deleted.
    pub blobs: Vec<Digest>,
    /// Unpacked layers deleted, by chain ID.
    pub layers: Vec<Digest>,
    /// Bytes of blob files freed.
    pub blob_bytes: u64,
}

impl Store {
    /// Removes images by name (`flotilla rmi`), then collects garbage. A tag or repo digest
    /// only untags, unless it was the image's last name; an ID removes the image with all
    /// its names, but needs `force` when tags of more than one repository point at it.
    pub fn remove(&self, names: &[String], force: bool) -> Result<Vec<Removal>> {
        let mut removals = Vec::new();
        self.update_index(|index| {
            for name in names {
                remove_one(index, name, force, &mut removals)?;
            }
            Ok(())
        })?;
        let swept = self.gc()?;
        removals.extend(swept.layers.into_iter().map(Removal::Deleted));
        Ok(removals)
    }

    /// Removes untagged images, or with `all` every image (`flotilla image prune [-a]`), but
    /// never those in `keep` (images containers use), then collects garbage.
    pub fn prune(&self, all: bool, keep: &[Digest]) -> Result<(Vec<Removal>, Swept)> {
        let mut removals = Vec::new();
        self.update_index(|index| {
            let doomed: Vec<Digest> = index
                .images
                .keys()
                .filter(|id| !keep.contains(id) && (all || index.tags_of(id).is_empty()))
                .cloned()
                .collect();
            for id in doomed {
                delete_image(index, id, &mut removals);
            }
            Ok(())
        })?;
        let swept = self.gc()?;
        removals.extend(swept.layers.iter().cloned().map(Removal::Deleted));
        Ok((removals, swept))
    }

    /// Deletes every blob and layer no image references, and all staging. Waits for running
    /// ingests to finish.
    pub fn gc(&self) -> Result<Swept> {
        let _exclusive = FileLock::exclusive(&self.lock_path()).at(&self.lock_path())?;
        self.clear_tmp()?;
        let index = self.load_index()?;
        let (blobs, layers) = self.mark(&index)?;
        let mut swept = Swept::default();

        let blob_dir = self.blob_dir();
        for entry in fs::read_dir(&blob_dir).at(&blob_dir)? {
            let entry = entry.at(&blob_dir)?;
            let Some(digest) = sha256_named(&entry.file_name()) else {
                continue;
            };
            if !blobs.contains(&digest) {
                let path = entry.path();
                swept.blob_bytes += entry.metadata().map_or(0, |m| m.len());
                fs::remove_file(&path).at(&path)?;
                swept.blobs.push(digest);
            }
        }
        let layers_dir = self.layers_dir();
        for entry in fs::read_dir(&layers_dir).at(&layers_dir)? {
            let entry = entry.at(&layers_dir)?;
            let Some(chain_id) = sha256_named(&entry.file_name()) else {
                continue;
            };
            if !layers.contains(&chain_id) {
                let doomed = self.tmp_dir().join(unique_name("deleting"));
                fs::rename(entry.path(), &doomed).at(&entry.path())?;
                fs::remove_dir_all(&doomed).at(&doomed)?;
                swept.layers.push(chain_id);
            }
        }
        swept.blobs.sort();
        swept.layers.sort();
        Ok(swept)
    }

    /// The blobs and chain IDs the index reaches.
    fn mark(&self, index: &Index) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        for entry in index.images.values() {
            let contents = self.contents_of(&entry.manifest)?;
            blobs.insert(entry.manifest.clone());
            blobs.insert(contents.manifest.config.digest);
            for layer in contents.layers {
                blobs.insert(layer.blob.digest);
                layers.insert(layer.chain_id);
            }
        }
        Ok((blobs, layers))
    }
}

/// Applies `rmi NAME` to the index.
fn remove_one(
    index: &mut Index,
    name: &str,
    force: bool,
    removals: &mut Vec<Removal>,
) -> Result<()> {
    let (id, resolved) = index.resolve(name)?;
    let delete = match resolved {
        Resolved::Tag(tag) => {
            index.tags.remove(&tag);
            removals.push(Removal::Untagged(familiar(&tag)));
            index.tags_of(&id).is_empty()
        }
        Resolved::RepoDigest(repo_digest) => {
            let entry = index.images.get_mut(&id).map(|e| {
                e.repo_digests.remove(&repo_digest);
                e.repo_digests.is_empty()
            });
            removals.push(Removal::Untagged(familiar(&repo_digest)));
            entry.unwrap_or(true) && index.tags_of(&id).is_empty()
        }
        Resolved::Id => {
            let repositories: HashSet<String> = index
                .tags_of(&id)
                .iter()
                .filter_map(|t| Reference::parse(t).ok().map(|r| r.name()))
                .collect();
            if repositories.len() > 1 && !force {
                return Err(StoreError::Conflict {
                    image: id.hex()[..12].to_owned(),
                    reason: "image is referenced in multiple repositories".to_owned(),
                });
            }
            true
        }
    };
    if delete {
        delete_image(index, id, removals);
    }
    Ok(())
}

/// Removes the image `id` and all its names from the index, saying so in `removals`.
fn delete_image(index: &mut Index, id: Digest, removals: &mut Vec<Removal>) {
    let names = index.remove(&id);
    removals.extend(names.iter().map(|n| Removal::Untagged(familiar(n))));
    removals.push(Removal::Deleted(id));
}

/// Docker's short form of a full reference, for messages.
fn familiar(name: &str) -> String {
    Reference::parse(name).map_or_else(|_| name.to_owned(), |r| r.familiar())
}

/// The digest a `blobs/sha256/` or `layers/` entry is named after, if it is one.
fn sha256_named(name: &std::ffi::OsStr) -> Option<Digest> {
    format!("sha256:{}", name.to_str()?).parse().ok()
}
