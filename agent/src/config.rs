//! The configuration file shared by `flotillad` and `flotilla` (`/etc/flotilla/flotilla.toml`).
//!
//! ```toml
//! [registry]
//! mirrors = ["http://10.0.0.5:5000"]          # for docker.io, as dockerd's --registry-mirror
//! insecure-registries = ["registry.lan:5000"] # as dockerd's --insecure-registry
//! auth-file = "/etc/flotilla/auth.json"       # docker-style credentials
//! max-concurrent-downloads = 3
//! ```
//!
//! A missing file at the default path means the defaults; a missing file that was asked for
//! explicitly, an unknown key or a malformed value is an error naming the file, line and key.

use std::io;
use std::path::{Path, PathBuf};

use image::registry::RegistryConfig;

/// Where the configuration is read from unless `--config`/`FLOTILLA_CONFIG` say otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/flotilla/flotilla.toml";

/// The whole configuration file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// How images are pulled.
    #[serde(default)]
    pub registry: RegistryConfig,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("configuration {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What toml said, with line, column and key.
        source: toml::de::Error,
    },
}

impl Config {
    /// Reads `path`; a missing file is the defaults only when `path` is the default path.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && path == Path::new(DEFAULT_CONFIG_PATH) =>
            {
                return Ok(Config::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Config::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses the text of a configuration file.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_settings_use_dockerd_names() {
        let config = Config::parse(
            "[registry]\nmirrors = [\"http://127.0.0.1:5000\"]\ninsecure-registries = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        assert_eq!(config.registry.mirrors, ["http://127.0.0.1:5000"]);
        assert_eq!(config.registry.insecure_registries, ["10.0.0.0/8"]);
        assert_eq!(config.registry.max_concurrent_downloads(), 3);
    }

    #[test]
    fn every_registry_key_is_optional() {
        let config = Config::parse("[registry]\nretries = 1\n").unwrap();
        assert_eq!(config.registry.retries(), 1);
        assert!(config.registry.mirrors.is_empty());
        assert!(Config::parse("").unwrap().registry.mirrors.is_empty());
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_line() {
        let err = Config::parse("[registry]\nmirror = [\"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("unknown field `mirror`"), "{err}");
    }

    #[test]
    fn a_missing_file_is_the_default_only_at_the_default_path() {
        assert!(Config::load(Path::new("/nonexistent/flotilla.toml"))
            .unwrap_err()
            .to_string()
            .starts_with("cannot read configuration /nonexistent/flotilla.toml: "));
    }
}
