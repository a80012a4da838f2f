//! Container images: references, the registry client, the content-addressed store, safe layer
//! unpacking and the archive formats (docker-archive, OCI layout).
//!
//! So far the crate unpacks layers ([`layer`]): a layer tarball into a directory, safely, with
//! whiteouts for overlayfs or applied. References, the registry, the store and the archive
//! formats are still to come. It must never depend on `unitgen` or `agent` (see
//! ARCHITECTURE.md).

pub mod layer;
