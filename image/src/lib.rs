//! Container images: references, the registry client, the content-addressed store, safe layer
//! unpacking and the archive formats (docker-archive, OCI layout).
//!
//! Empty in this build: the crate exists so the workspace has its final shape. It must never
//! depend on `unitgen` or `agent` (see ARCHITECTURE.md).
