//! The registry client: fetches manifests and blobs over the OCI distribution API.
//!
//! Hand-written on `reqwest::blocking` rather than taken from `oci-client`, because pulling needs
//! dockerd's behaviour in places a generic client does not offer: mirrors tried in order for
//! `docker.io` with fallback ([`endpoint`]), plain-http fallback for insecure registries, manifests
//! read with a hard size bound, and blob streams that resume with `Range` after a broken
//! connection and feed the store's own verifier.
//!
//! - [`config`]: what an operator configures ([`RegistryConfig`]);
//! - [`challenge`]: parses `WWW-Authenticate`;
//! - [`credentials`]: docker-style `auth.json` / `config.json`;
//! - [`endpoint`]: which base URLs to try for a registry;
//! - [`backoff`]: the retry schedule;
//! - `client`: [`Client`], [`Manifest`], [`BlobReader`].
//!
//! ```no_run
//! use image::reference::Reference;
//! use image::registry::{Client, RegistryConfig};
//!
//! let client = Client::new(&RegistryConfig::default()).unwrap();
//! let manifest = client.manifest(&Reference::parse("busybox").unwrap()).unwrap();
//! println!("{} {}", manifest.media_type, manifest.digest);
//! ```

pub mod backoff;
pub mod challenge;
mod client;
pub mod config;
pub mod credentials;
pub mod endpoint;
mod error;

pub use client::{BlobReader, Client, Manifest, MAX_MANIFEST_BYTES};
pub use config::RegistryConfig;
pub use error::RegistryError;

/// Result of the registry client.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
