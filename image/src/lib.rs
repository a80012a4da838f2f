//! Container images: references, digests and safe layer unpacking; the registry client, the
//! content-addressed store and the archive formats (docker-archive, OCI layout) are to come.
//!
//! - [`reference`](mod@reference) parses image references as Docker normalizes them (`mongo` is
//!   `docker.io/library/mongo:latest`);
//! - [`digest`] parses and verifies the `algorithm:hex` digests that name every blob;
//! - [`layer`] unpacks a layer tarball into a directory, refusing every entry that would land
//!   outside it, with whiteouts made for overlayfs or applied.
//!
//! The crate must never depend on `unitgen` or `agent` (see ARCHITECTURE.md).

pub mod digest;
pub mod layer;
pub mod reference;
pub mod registry;
