//! The store's index: which images exist and which names point at them. Pure data plus the
//! name-resolution rules; the store loads and saves it as one JSON file, replaced atomically.
//!
//! An image is named by its ID, the digest of its config (as in docker). A *tag* maps a full
//! reference (`docker.io/library/busybox:latest`) to an ID; a *repo digest*
//! (`docker.io/library/busybox@sha256:…`) records which manifest a pull by that name fetched.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::reference::Reference;

/// The version of the index format this code reads and writes.
pub(crate) const INDEX_VERSION: u32 = 1;

/// The whole index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Index {
    pub(crate) version: u32,
    /// Image ID → what the store keeps of it.
    pub(crate) images: BTreeMap<Digest, ImageEntry>,
    /// Full reference with a tag → image ID.
    pub(crate) tags: BTreeMap<String, Digest>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            version: INDEX_VERSION,
            images: BTreeMap::new(),
            tags: BTreeMap::new(),
        }
    }
}

/// What the index keeps of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    /// The digest of the image's manifest, kept in the blob store.
    pub manifest: Digest,
    /// `name@digest` of every manifest or index this image was pulled by.
    #[serde(default)]
    pub repo_digests: BTreeSet<String>,
    /// When the store first got the image, in seconds since the epoch.
    pub added: u64,
}

/// How a name given by the user was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A tagged reference, given in full form.
    Tag(String),
    /// A `name@digest` repo digest.
    RepoDigest(String),
    /// The image ID or a unique prefix of it.
    Id,
}

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Nothing has that name.
    #[error("no such image: {0}")]
    NotFound(String),
    /// An ID prefix that more than one image has.
    #[error("image ID prefix {prefix:?} is ambiguous: {count} images start with it")]
    Ambiguous {
        /// The prefix as given.
        prefix: String,
        /// How many images have it.
        count: usize,
    },
}

impl Index {
    /// Resolves a user-given name as docker does: a full `sha256:` ID, then a reference (a tag,
    /// or a digest among the repo digests), then a prefix of an ID (with or without `sha256:`).
    pub(crate) fn resolve(&self, name: &str) -> Result<(Digest, Resolved), ResolveError> {
        if let Ok(id) = name.parse::<Digest>() {
            if self.images.contains_key(&id) {
                return Ok((id, Resolved::Id));
            }
        }
        if let Ok(reference) = Reference::parse(name) {
            if let Some(found) = self.by_reference(&reference) {
                return Ok(found);
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut hits = self.images.keys().filter(|id| id.hex().starts_with(prefix));
            if let Some(first) = hits.next() {
                let count = 1 + hits.count();
                return if count == 1 {
                    Ok((first.clone(), Resolved::Id))
                } else {
                    Err(ResolveError::Ambiguous {
                        prefix: name.to_owned(),
                        count,
                    })
                };
            }
        }
        Err(ResolveError::NotFound(name.to_owned()))
    }

    fn by_reference(&self, reference: &Reference) -> Option<(Digest, Resolved)> {
        if let Some(digest) = reference.digest() {
            let repo_digest = format!("{}@{digest}", reference.name());
            return self.images.iter().find_map(|(id, entry)| {
                entry
                    .repo_digests
                    .contains(&repo_digest)
                    .then(|| (id.clone(), Resolved::RepoDigest(repo_digest.clone())))
            });
        }
        let tag = reference.to_string();
        self.tags
            .get(&tag)
            .map(|id| (id.clone(), Resolved::Tag(tag)))
    }

    /// The tags pointing at `id`, in order.
    pub(crate) fn tags_of(&self, id: &Digest) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, target)| *target == id)
            .map(|(tag, _)| tag.clone())
            .collect()
    }

    /// Adds `id` (or merges the repo digests into its entry) and points `tags` at it.
    pub(crate) fn add(&mut self, id: &Digest, entry: ImageEntry, tags: &[Reference]) {
        match self.images.get_mut(id) {
            Some(existing) => {
                existing.manifest = entry.manifest;
                existing.repo_digests.extend(entry.repo_digests);
            }
            None => {
                self.images.insert(id.clone(), entry);
            }
        }
        for tag in tags {
            self.tags.insert(tag.to_string(), id.clone());
        }
    }

    /// Removes `id` and every name pointing at it; returns the removed tags and repo digests.
    pub(crate) fn remove(&mut self, id: &Digest) -> Vec<String> {
        let mut names = self.tags_of(id);
        for tag in &names {
            self.tags.remove(tag);
        }
        if let Some(entry) = self.images.remove(id) {
            names.extend(entry.repo_digests);
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Digest {
        Digest::sha256_of(&[n])
    }

    fn entry(n: u8) -> ImageEntry {
        ImageEntry {
            manifest: Digest::sha256_of(&[n, n]),
            repo_digests: BTreeSet::new(),
            added: 0,
        }
    }

    fn reference(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn resolves_tags_in_short_and_full_form() {
        let mut index = Index::default();
        index.add(&id(1), entry(1), &[reference("busybox")]);
        for name in [
            "busybox",
            "busybox:latest",
            "docker.io/library/busybox:latest",
        ] {
            assert_eq!(
                index.resolve(name).unwrap(),
                (
                    id(1),
                    Resolved::Tag("docker.io/library/busybox:latest".into())
                ),
                "{name}"
            );
        }
        assert_eq!(
            index.resolve("busybox:1.36").unwrap_err().to_string(),
            "no such image: busybox:1.36"
        );
    }

    #[test]
    fn resolves_ids_and_unique_prefixes() {
        let mut index = Index::default();
        index.add(&id(1), entry(1), &[]);
        index.add(&id(2), entry(2), &[]);
        let full = id(1).to_string();
        assert_eq!(index.resolve(&full).unwrap().0, id(1));
        assert_eq!(index.resolve(&id(1).hex()[..12]).unwrap().0, id(1));
        assert_eq!(
            index
                .resolve(&format!("sha256:{}", &id(2).hex()[..5]))
                .unwrap()
                .0,
            id(2)
        );
        // Both IDs start with some hex digit; find a shared one-character prefix, if any.
        let shared = (0..16)
            .map(|d| format!("{d:x}"))
            .find(|p| id(1).hex().starts_with(p.as_str()) && id(2).hex().starts_with(p.as_str()));
        if let Some(prefix) = shared {
            assert!(matches!(
                index.resolve(&prefix),
                Err(ResolveError::Ambiguous { count: 2, .. })
            ));
        }
    }

    #[test]
    fn a_tag_wins_over_an_id_prefix() {
        let mut index = Index::default();
        let prefix = id(1).hex()[..6].to_owned();
        index.add(&id(1), entry(1), &[]);
        index.add(&id(2), entry(2), &[reference(&prefix)]);
        assert_eq!(index.resolve(&prefix).unwrap().0, id(2));
    }

    #[test]
    fn resolves_repo_digests() {
        let mut index = Index::default();
        let mut e = entry(1);
        let manifest = e.manifest.clone();
        e.repo_digests
            .insert(format!("docker.io/library/busybox@{manifest}"));
        index.add(&id(1), e, &[]);
        assert_eq!(
            index.resolve(&format!("busybox@{manifest}")).unwrap(),
            (
                id(1),
                Resolved::RepoDigest(format!("docker.io/library/busybox@{manifest}"))
            )
        );
        assert!(index.resolve(&format!("other@{manifest}")).is_err());
    }

    #[test]
    fn retagging_moves_the_tag_and_removal_returns_every_name() {
        let mut index = Index::default();
        index.add(&id(1), entry(1), &[reference("app:v1")]);
        index.add(
            &id(2),
            entry(2),
            &[reference("app:v1"), reference("app:v2")],
        );
        assert_eq!(index.resolve("app:v1").unwrap().0, id(2));
        assert!(index.tags_of(&id(1)).is_empty());
        let removed = index.remove(&id(2));
        assert_eq!(
            removed,
            ["docker.io/library/app:v1", "docker.io/library/app:v2"]
        );
        assert!(index.tags.is_empty());
        assert!(index.images.contains_key(&id(1)));
    }

    #[test]
    fn the_index_round_trips_through_json() {
        let mut index = Index::default();
        index.add(&id(1), entry(1), &[reference("busybox")]);
        let json = serde_json::to_string(&index).unwrap();
        let back: Index = serde_json::from_str(&json).unwrap();
        assert_eq!(back.tags, index.tags);
        assert_eq!(back.images, index.images);
    }
}
