//! Container images: references, digests, and (to come) the registry client, the
//! content-addressed store, safe layer unpacking and the archive formats (docker-archive,
//! OCI layout).
//!
//! What exists so far is pure: [`reference`](mod@reference) parses image references as
//! Docker normalizes them (`mongo` is `docker.io/library/mongo:latest`) and [`digest`] parses
//! and verifies the `algorithm:hex` digests that name every blob. The crate must never depend
//! on `unitgen` or `agent` (see ARCHITECTURE.md).

pub mod digest;
pub mod reference;
