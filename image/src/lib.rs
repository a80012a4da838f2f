//! Container images: references and digests, the registry client, the content-addressed store
//! and safe layer unpacking.
//!
//! - [`reference`](mod@reference) parses image references as Docker normalizes them (`mongo` is
//!   `docker.io/library/mongo:latest`);
//! - [`digest`] parses and verifies the `algorithm:hex` digests that name every blob;
//! - [`media_types`] and [`manifest`] read Docker schema 2 and OCI manifests, indexes and
//!   configs;
//! - [`registry`] talks to registries (auth, mirrors, insecure registries, resumable blobs);
//! - [`pull`] brings an image from a registry into the store, layers in parallel;
//! - [`store`] keeps blobs by digest and unpacked layers by chain ID, with tags, GC and locks;
//! - [`archive`] saves images to docker-archive and oci-archive tarballs and loads them back;
//! - [`export`] writes a root file system directory as a tarball, [`import`] makes a
//!   single-layer image from one (with `--change` instructions);
//! - [`compression`] tells gzip and zstd streams from plain ones and decodes them;
//! - [`layer`] unpacks a layer tarball into a directory, refusing every entry that would land
//!   outside it, with whiteouts made for overlayfs or applied.
//!
//! The crate must never depend on `unitgen` or `agent` (see ARCHITECTURE.md).

pub mod archive;
pub mod compression;
pub mod digest;
pub mod export;
pub mod import;
pub mod layer;
pub mod manifest;
pub mod media_types;
mod parallel;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
