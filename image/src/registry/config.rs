//! [`RegistryConfig`]: mirrors, insecure registries, credentials file and limits, with dockerd's
//! meaning and defaults.

use std::path::PathBuf;

/// How many layers dockerd downloads at once (`--max-concurrent-downloads`).
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: usize = 3;

/// How many times a failed request is tried again after the first attempt.
pub const DEFAULT_RETRIES: u32 = 4;

/// What an operator configures about registries.
///
/// ```
/// use image::registry::RegistryConfig;
///
/// let config = RegistryConfig {
///     mirrors: vec!["https://mirror.example".into()],
///     ..RegistryConfig::default()
/// };
/// assert_eq!(config.max_concurrent_downloads(), 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Base URLs (`http://127.0.0.1:5000`, `https://mirror.example`) tried in order before
    /// `registry-1.docker.io`, for `docker.io` references only (dockerd's `--registry-mirror`).
    pub mirrors: Vec<String>,
    /// `host:port`, `host` or a CIDR such as `10.0.0.0/8`: registries reached over plain http when
    /// https fails (dockerd's `--insecure-registry`). Loopback addresses always are.
    pub insecure_registries: Vec<String>,
    /// The credentials file; when unset, the usual places are searched (see [`credentials`]).
    ///
    /// [`credentials`]: super::credentials
    pub auth_file: Option<PathBuf>,
    /// Layers downloaded at once; default 3.
    pub max_concurrent_downloads: Option<usize>,
    /// Attempts after the first for a failed request; default 4.
    pub retries: Option<u32>,
}

impl RegistryConfig {
    /// [`Self::max_concurrent_downloads`] or its default, at least 1.
    pub fn max_concurrent_downloads(&self) -> usize {
        self.max_concurrent_downloads
            .unwrap_or(DEFAULT_MAX_CONCURRENT_DOWNLOADS)
            .max(1)
    }

    /// [`Self::retries`] or its default.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(DEFAULT_RETRIES)
    }
}
