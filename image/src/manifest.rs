//! Image manifests, indexes and configs: the few fields the store, the puller and the archive
//! formats need, read the same way from Docker schema 2 and OCI documents (their JSON shapes
//! agree on every field used here).
//!
//! Parsing is strict about what matters (digests must parse, sizes must be numbers, a manifest
//! has a config and `diff_ids` match the layers) and lenient about the rest (unknown fields are
//! ignored, as every registry client does).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Sha256Digester};

/// Why a manifest, index or config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("malformed {what}: {source}")]
    Malformed {
        /// `manifest`, `index` or `image config`.
        what: &'static str,
        /// What serde said, with line and column.
        source: serde_json::Error,
    },
    /// Schema version other than 2.
    #[error("unsupported {what} schemaVersion {version} (only 2 is supported; schema 1 manifests are deprecated and unsigned)")]
    SchemaVersion {
        /// `manifest` or `index`.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// The config lists a different number of diff IDs than the manifest lists layers.
    #[error("image config lists {diff_ids} layer diff IDs but the image has {layers} layers")]
    LayerCount {
        /// Entries of `rootfs.diff_ids`.
        diff_ids: usize,
        /// Entries of `layers`.
        layers: usize,
    },
}

/// A content descriptor: what a manifest says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the blob is.
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// For index entries: the platform of the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations (OCI), such as `org.opencontainers.image.ref.name`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The platform an image runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `amd64`, `arm64`, …
    pub architecture: String,
    /// `linux`, …
    pub os: String,
    /// `v7`, `v8`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A single-image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type, when the document says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// Annotations (OCI).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An index or manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type, when the document says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests it lists.
    pub manifests: Vec<Descriptor>,
}

/// Parses a JSON document; `what` names it in the error.
fn from_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, ManifestError> {
    serde_json::from_slice(bytes).map_err(|source| ManifestError::Malformed { what, source })
}

/// Only schema version 2 is read (schema 1 is deprecated and unsigned here).
fn schema_2(what: &'static str, version: u32) -> Result<(), ManifestError> {
    if version == 2 {
        Ok(())
    } else {
        Err(ManifestError::SchemaVersion { what, version })
    }
}

impl Manifest {
    /// Parses a manifest.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = from_json(bytes, "manifest")?;
        schema_2("manifest", manifest.schema_version)?;
        Ok(manifest)
    }
}

impl Index {
    /// Parses an index or manifest list.
    pub fn parse(bytes: &[u8]) -> Result<Index, ManifestError> {
        let index: Index = from_json(bytes, "index")?;
        schema_2("index", index.schema_version)?;
        Ok(index)
    }

    /// The manifest for `wanted`: an exact match of os, architecture and variant (a missing
    /// variant matches any, as docker does for `linux/amd64`); `None` if nothing fits.
    pub fn select(&self, wanted: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|m| {
            m.platform.as_ref().is_some_and(|p| {
                p.os == wanted.os
                    && p.architecture == wanted.architecture
                    && (wanted.variant.is_none() || p.variant == wanted.variant)
            })
        })
    }
}

impl Platform {
    /// The platform this binary runs on, in OCI's words (`linux/amd64`, `linux/arm64/v8`).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            architecture: architecture.to_owned(),
            os: std::env::consts::OS.to_owned(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]` as `--platform` takes it.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let (os, architecture) = (parts.next()?, parts.next()?);
        let variant = parts.next().map(str::to_owned);
        if os.is_empty() || architecture.is_empty() || parts.next().is_some() {
            return None;
        }
        Some(Platform {
            architecture: architecture.to_owned(),
            os: os.to_owned(),
            variant,
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

/// The parts of an image config the store needs: the layer diff IDs.
#[derive(Debug, Clone, Deserialize)]
struct ConfigRootfs {
    rootfs: Rootfs,
}

#[derive(Debug, Clone, Deserialize)]
struct Rootfs {
    diff_ids: Vec<Digest>,
}

/// The `rootfs.diff_ids` of an image config, checked against the manifest's layer count.
pub fn diff_ids(config: &[u8], manifest: &Manifest) -> Result<Vec<Digest>, ManifestError> {
    diff_ids_for(config, manifest.layers.len())
}

/// The `rootfs.diff_ids` of an image config, which must list `layers` of them (for a
/// docker-archive, whose manifest is made only after its layers are in).
pub fn diff_ids_for(config: &[u8], layers: usize) -> Result<Vec<Digest>, ManifestError> {
    let parsed: ConfigRootfs = from_json(config, "image config")?;
    let diff_ids = parsed.rootfs.diff_ids;
    if diff_ids.len() != layers {
        return Err(ManifestError::LayerCount {
            diff_ids: diff_ids.len(),
            layers,
        });
    }
    Ok(diff_ids)
}

/// The chain IDs of a stack of layers (OCI image spec, `config.md`): the first is the first
/// diff ID, each next one is [`chain_id`] of the previous one and the next diff ID. A chain ID
/// names a layer together with everything under it, so equal chain IDs mean equal file systems.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut chain: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        chain.push(chain_id(chain.last(), diff_id));
    }
    chain
}

/// The chain ID of the layer `diff_id` on top of the chain `parent`: `diff_id` itself for a
/// base layer, else `sha256(parent + " " + diff_id)`.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(parent) => {
            let mut digester = Sha256Digester::default();
            digester.update(format!("{parent} {diff_id}").as_bytes());
            digester.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::sha256_of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn docker_and_oci_manifests_parse_alike() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
          "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
          "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]}"#;
        let manifest = Manifest::parse(docker).unwrap();
        assert_eq!(manifest.layers.len(), 1);
        assert_eq!(manifest.config.size, 7);
        let bad = br#"{"schemaVersion":1,"config":{"mediaType":"x","size":1,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"layers":[]}"#;
        assert!(Manifest::parse(bad)
            .unwrap_err()
            .to_string()
            .starts_with("unsupported manifest schemaVersion 1"));
        let bad_digest = br#"{"schemaVersion":2,"config":{"mediaType":"x","size":1,"digest":"sha256:zz"},"layers":[]}"#;
        assert!(Manifest::parse(bad_digest)
            .unwrap_err()
            .to_string()
            .starts_with("malformed manifest: invalid digest"));
    }

    use crate::media_types;

    #[test]
    fn index_selects_the_platform() {
        let d = Digest::sha256_of(b"x");
        let entry = |arch: &str, variant: Option<&str>| Descriptor {
            media_type: media_types::OCI_MANIFEST.into(),
            digest: d.clone(),
            size: 1,
            platform: Some(Platform {
                architecture: arch.into(),
                os: "linux".into(),
                variant: variant.map(Into::into),
            }),
            annotations: BTreeMap::new(),
        };
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                entry("arm", Some("v7")),
                entry("arm64", Some("v8")),
                entry("amd64", None),
            ],
        };
        let pick = |s: &str| {
            index
                .select(&Platform::parse(s).unwrap())
                .map(|m| m.platform.clone().unwrap().to_string())
        };
        assert_eq!(pick("linux/arm64").as_deref(), Some("linux/arm64/v8"));
        assert_eq!(pick("linux/arm64/v8").as_deref(), Some("linux/arm64/v8"));
        assert_eq!(pick("linux/arm/v6"), None);
        assert_eq!(pick("linux/amd64").as_deref(), Some("linux/amd64"));
        assert_eq!(pick("windows/amd64"), None);
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("linux/amd64/v2/x").is_none());
    }
}
