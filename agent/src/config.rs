//! The configuration file shared by `flotillad` and `flotilla` (`/etc/flotilla/flotilla.toml`).
//!
//! ```toml
//! etcd_endpoints = ["http://10.0.0.1:2379"]   # default http://127.0.0.1:2379
//! etcd_key_prefix = "/flotilla/"
//! # etcd_cafile, etcd_certfile, etcd_keyfile, etcd_username, etcd_password
//! public_ip = "10.0.0.5"                      # default: the address of the default route's interface
//! agent_ttl = "30s"
//! disable_engine = false                      # this machine runs units but never schedules
//! units_directory = "/run/flotilla/units"
//! api_socket = "/run/flotilla/flotilla.sock"
//! # api_listen = "10.0.0.5:8479" with api_cafile, api_certfile, api_keyfile: TCP with mutual TLS
//! partition_action = "stop"                   # or "keep": see `PartitionAction`
//! partition_grace = "0s"
//! [metadata]                                  # what MachineMetadata= matches
//! disk = "ssd"
//! [engine]
//! registry_mirrors = ["https://mirror.lan"]   # for docker.io, as dockerd's --registry-mirror
//! insecure_registries = ["registry.lan:5000"] # as dockerd's --insecure-registry
//! auth_file = "/etc/flotilla/auth.json"       # docker-style credentials
//! max_concurrent_downloads = 3
//! bridge_subnet = "10.222.0.0/16"             # the default bridge network's (flotilla0)
//! ```
//!
//! Every key is optional. A missing file at the default path means the defaults; a missing file
//! that was asked for explicitly, an unknown key or a malformed value is an error naming the file,
//! line and key. `FLOTILLA_<KEY>` in the environment overrides a top-level key (lists
//! comma-separated, metadata as `k=v,k2=v2`); [`Overrides`] applies them, and `flotillad`'s flags
//! go through the same path.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::registry::{self, RegistryConfig};

/// Where the configuration is read from unless `--config`/`FLOTILLA_CONFIG` say otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/flotilla/flotilla.toml";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// etcd's client URLs.
    pub etcd_endpoints: Vec<String>,
    /// The prefix under which every key of the cluster lives.
    pub etcd_key_prefix: String,
    /// The CA that signed etcd's server certificate.
    pub etcd_cafile: Option<PathBuf>,
    /// This machine's client certificate for etcd.
    pub etcd_certfile: Option<PathBuf>,
    /// The key of [`Self::etcd_certfile`].
    pub etcd_keyfile: Option<PathBuf>,
    /// etcd user name (with [`Self::etcd_password`]).
    pub etcd_username: Option<String>,
    /// etcd password.
    pub etcd_password: Option<String>,
    /// The address other machines reach this one at; default: the default route's interface's.
    pub public_ip: Option<IpAddr>,
    /// How long the cluster waits for a silent machine before moving its units.
    #[serde(deserialize_with = "duration")]
    pub agent_ttl: Duration,
    /// This machine runs units but never becomes the scheduler.
    pub disable_engine: bool,
    /// Where the agent writes the units placed on this machine.
    pub units_directory: PathBuf,
    /// The agent's API socket (owner root, group-accessible).
    pub api_socket: PathBuf,
    /// Also serve the API on TCP, with mutual TLS (needs the three `api_*file` keys).
    pub api_listen: Option<SocketAddr>,
    /// The CA that signs every machine's and client's API certificate.
    pub api_cafile: Option<PathBuf>,
    /// This machine's API certificate (server and, towards other machines, client).
    pub api_certfile: Option<PathBuf>,
    /// The key of [`Self::api_certfile`].
    pub api_keyfile: Option<PathBuf>,
    /// What a machine cut off from etcd does with its units.
    pub partition_action: PartitionAction,
    /// How long units keep running after this machine's lease surely expired.
    #[serde(deserialize_with = "duration")]
    pub partition_grace: Duration,
    /// What `MachineMetadata=` matches on this machine.
    pub metadata: BTreeMap<String, String>,
    /// How the engine pulls images.
    pub engine: EngineConfig,
}

/// What a machine that lost etcd does once its lease has surely expired (and the scheduler has
/// therefore placed its units elsewhere).
///
/// fleet kept them running (its issue #440, "won't fix"), so a partition ran every unit twice.
/// `Stop` ends that after [`Config::partition_grace`]; `Keep` is fleet's behaviour, for units
/// that must never stop even at the price of running twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionAction {
    /// Stop the units once the lease has expired and the grace period has passed.
    Stop,
    /// Keep them running until etcd is back (then the ones placed elsewhere are stopped).
    Keep,
}

/// The `[engine]` table: how images are pulled (dockerd's names and meanings).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Mirrors for docker.io, tried in order.
    pub registry_mirrors: Vec<String>,
    /// Registries reached over plain HTTP when HTTPS fails (loopback always is).
    pub insecure_registries: Vec<String>,
    /// A docker-style credentials file.
    pub auth_file: Option<PathBuf>,
    /// Layers downloaded at once; default 3.
    pub max_concurrent_downloads: Option<usize>,
    /// Attempts after the first for a failed request; default 4.
    pub retries: Option<u32>,
    /// The subnet of the default bridge network (`flotilla0`); default 10.222.0.0/16, clear
    /// of docker's 172.17.0.0/16 and podman's 10.88.0.0/16.
    pub bridge_subnet: Option<crate::network::ipam::Subnet>,
}

impl EngineConfig {
    /// The registry client's settings.
    pub fn registry(&self) -> image::registry::RegistryConfig {
        image::registry::RegistryConfig {
            mirrors: self.registry_mirrors.clone(),
            insecure_registries: self.insecure_registries.clone(),
            auth_file: self.auth_file.clone(),
            max_concurrent_downloads: self.max_concurrent_downloads,
            retries: self.retries,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            etcd_endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            etcd_key_prefix: "/flotilla/".to_owned(),
            etcd_cafile: None,
            etcd_certfile: None,
            etcd_keyfile: None,
            etcd_username: None,
            etcd_password: None,
            public_ip: None,
            agent_ttl: Duration::from_secs(30),
            disable_engine: false,
            units_directory: PathBuf::from("/run/flotilla/units"),
            api_socket: PathBuf::from("/run/flotilla/flotilla.sock"),
            api_listen: None,
            api_cafile: None,
            api_certfile: None,
            api_keyfile: None,
            partition_action: PartitionAction::Stop,
            partition_grace: Duration::ZERO,
            metadata: BTreeMap::new(),
            engine: EngineConfig::default(),
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
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
    /// An override (`FLOTILLA_<KEY>` or a flag) has a value of the wrong shape.
    #[error("{origin}: {message}")]
    Override {
        /// Where it came from: `FLOTILLA_AGENT_TTL` or `--agent-ttl`.
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// The keys are each valid but do not fit together.
    #[error("configuration: {0}")]
    Inconsistent(String),
}

/// How an override's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// As is.
    Text,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Bool,
    /// Comma-separated.
    List,
    /// `k=v,k2=v2`.
    Map,
}

/// The top-level keys that `FLOTILLA_<KEY>` and flags may override, with their shapes.
const OVERRIDABLE: &[(&str, Shape)] = &[
    ("etcd_endpoints", Shape::List),
    ("etcd_key_prefix", Shape::Text),
    ("etcd_cafile", Shape::Text),
    ("etcd_certfile", Shape::Text),
    ("etcd_keyfile", Shape::Text),
    ("etcd_username", Shape::Text),
    ("etcd_password", Shape::Text),
    ("public_ip", Shape::Text),
    ("agent_ttl", Shape::Text),
    ("disable_engine", Shape::Bool),
    ("units_directory", Shape::Text),
    ("api_socket", Shape::Text),
    ("api_listen", Shape::Text),
    ("api_cafile", Shape::Text),
    ("api_certfile", Shape::Text),
    ("api_keyfile", Shape::Text),
    ("partition_action", Shape::Text),
    ("partition_grace", Shape::Text),
    ("metadata", Shape::Map),
];

/// Values laid over the file's top-level keys, each remembering where it came from.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    values: Vec<(String, &'static str, String)>,
}

impl Overrides {
    /// The `FLOTILLA_<KEY>` variables among `vars` that name a top-level key (others, such as
    /// `FLOTILLA_CONFIG`, belong to the command lines and are left alone).
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Overrides {
        let mut overrides = Overrides::default();
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("FLOTILLA_") else {
                continue;
            };
            if let Some(&(key, _)) = OVERRIDABLE
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(key))
            {
                overrides.values.push((name, key, value));
            }
        }
        overrides
    }

    /// Adds `value` for `key` (a top-level key such as `agent_ttl`), as given by `origin`.
    ///
    /// # Panics
    /// When `key` is not an overridable key: that is a bug in the caller.
    pub fn set(&mut self, origin: impl Into<String>, key: &str, value: impl Into<String>) {
        let key = OVERRIDABLE
            .iter()
            .find(|(known, _)| *known == key)
            .map(|(known, _)| *known)
            .unwrap_or_else(|| panic!("{key} is not an overridable configuration key"));
        self.values.push((origin.into(), key, value.into()));
    }

    /// Lays each override over `table` in turn, so an error names the override that caused it.
    fn apply(&self, table: &mut toml::Table) -> Result<Config, ConfigError> {
        let mut config = None;
        for (origin, key, text) in &self.values {
            let shape = OVERRIDABLE
                .iter()
                .find(|(known, _)| known == key)
                .map_or(Shape::Text, |(_, shape)| *shape);
            let error = |message| ConfigError::Override {
                origin: origin.clone(),
                message,
            };
            table.insert((*key).to_owned(), to_toml(shape, text).map_err(error)?);
            config = Some(
                Config::deserialize(toml::Value::Table(table.clone()))
                    .map_err(|e| error(e.message().to_owned()))?,
            );
        }
        Ok(config.expect("apply is called with at least one override"))
    }
}

fn to_toml(shape: Shape, text: &str) -> Result<toml::Value, String> {
    let items = || {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
    };
    Ok(match shape {
        Shape::Text => toml::Value::String(text.to_owned()),
        Shape::Bool => toml::Value::Boolean(match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(format!("expected true or false, got {text:?}")),
        }),
        Shape::List => toml::Value::Array(
            items()
                .map(|item| toml::Value::String(item.to_owned()))
                .collect(),
        ),
        Shape::Map => {
            let mut table = toml::Table::new();
            for item in items() {
                let (key, value) = item
                    .split_once('=')
                    .filter(|(key, _)| !key.trim().is_empty())
                    .ok_or_else(|| format!("expected k=v,k2=v2, got {item:?}"))?;
                table.insert(
                    key.trim().to_owned(),
                    toml::Value::String(value.trim().to_owned()),
                );
            }
            toml::Value::Table(table)
        }
    })
}

impl Config {
    /// How to reach etcd.
    pub fn etcd(&self) -> RegistryConfig {
        let tls = [&self.etcd_cafile, &self.etcd_certfile, &self.etcd_keyfile]
            .iter()
            .any(|file| file.is_some())
            .then(|| registry::TlsFiles {
                ca: self.etcd_cafile.clone(),
                cert: self.etcd_certfile.clone(),
                key: self.etcd_keyfile.clone(),
            });
        let credentials = self
            .etcd_username
            .as_ref()
            .map(|user| registry::Credentials {
                user: user.clone(),
                password: self.etcd_password.clone().unwrap_or_default(),
            });
        RegistryConfig {
            endpoints: self.etcd_endpoints.clone(),
            tls,
            credentials,
            key_prefix: self.etcd_key_prefix.clone(),
            ..RegistryConfig::default()
        }
    }

    /// The TLS files of the agents' TCP API, when all three are configured.
    pub fn api_tls(&self) -> Option<crate::api::tls::TlsFiles> {
        Some(crate::api::tls::TlsFiles {
            ca: self.api_cafile.clone()?,
            cert: self.api_certfile.clone()?,
            key: self.api_keyfile.clone()?,
        })
    }

    /// Reads `path`; a missing file is the defaults only when `path` is the default path.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, &Overrides::default())
    }

    /// Reads `path` and lays `overrides` over its top-level keys.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && path == Path::new(DEFAULT_CONFIG_PATH) =>
            {
                String::new()
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if !overrides.values.is_empty() {
            let mut table: toml::Table = toml::from_str(&text).expect("parsed just above");
            config = overrides.apply(&mut table)?;
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.etcd_endpoints.is_empty() {
            return Err(ConfigError::Inconsistent(
                "etcd_endpoints is empty: give at least one etcd client URL".into(),
            ));
        }
        if self.agent_ttl < Duration::from_secs(1) {
            return Err(ConfigError::Inconsistent(format!(
                "agent_ttl {} is too short: etcd leases last at least 1s",
                humantime::format_duration(self.agent_ttl)
            )));
        }
        let tls = [&self.api_cafile, &self.api_certfile, &self.api_keyfile];
        if self.api_listen.is_some() && tls.iter().any(|file| file.is_none()) {
            return Err(ConfigError::Inconsistent(
                "api_listen needs api_cafile, api_certfile and api_keyfile: the TCP API is served \
                 only with mutual TLS"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    fn load(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flotilla.toml");
        std::fs::write(&path, text).unwrap();
        Config::load_with(&path, overrides)
    }

    #[test]
    fn every_key_is_optional_and_defaults_are_designs() {
        let config = parse("").unwrap();
        assert_eq!(config.etcd_endpoints, ["http://127.0.0.1:2379"]);
        assert_eq!(config.etcd_key_prefix, "/flotilla/");
        assert_eq!(config.agent_ttl, Duration::from_secs(30));
        assert_eq!(config.units_directory, Path::new("/run/flotilla/units"));
        assert_eq!(config.partition_action, PartitionAction::Stop);
        assert!(config.engine.registry_mirrors.is_empty());
    }

    #[test]
    fn the_design_example_parses() {
        let config = parse(
            "etcd_endpoints = [\"http://10.0.0.1:2379\"]\npublic_ip = \"10.0.0.5\"\n\
             agent_ttl = \"3s\"\ndisable_engine = true\n[metadata]\nregion = \"eu-west\"\n\
             [engine]\nregistry_mirrors = [\"http://127.0.0.1:5000\"]\n\
             insecure_registries = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        assert_eq!(config.public_ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(config.agent_ttl, Duration::from_secs(3));
        assert!(config.disable_engine);
        assert_eq!(config.metadata["region"], "eu-west");
        let registry = config.engine.registry();
        assert_eq!(registry.mirrors, ["http://127.0.0.1:5000"]);
        assert_eq!(registry.insecure_registries, ["10.0.0.0/8"]);
        assert_eq!(registry.max_concurrent_downloads(), 3);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_line() {
        let err = parse("agent_ttl = \"3s\"\n[engine]\nmirrors = [\"x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("unknown field `mirrors`"), "{err}");
        let err = parse("agent_ttl = \"soon\"\n").unwrap_err().to_string();
        assert!(err.contains("invalid duration \"soon\""), "{err}");
    }

    #[test]
    fn environment_overrides_top_level_keys_in_their_shapes() {
        let overrides = Overrides::from_env([
            (
                "FLOTILLA_ETCD_ENDPOINTS".to_owned(),
                "http://a:2379, http://b:2379".to_owned(),
            ),
            (
                "FLOTILLA_METADATA".to_owned(),
                "disk=ssd,region=eu".to_owned(),
            ),
            ("FLOTILLA_DISABLE_ENGINE".to_owned(), "yes".to_owned()),
            ("FLOTILLA_CONFIG".to_owned(), "/elsewhere".to_owned()),
            ("PATH".to_owned(), "/bin".to_owned()),
        ]);
        let config = load("agent_ttl = \"5s\"\n[metadata]\nold = \"x\"\n", &overrides).unwrap();
        assert_eq!(config.etcd_endpoints, ["http://a:2379", "http://b:2379"]);
        assert_eq!(
            config.metadata,
            BTreeMap::from([
                ("disk".to_owned(), "ssd".to_owned()),
                ("region".to_owned(), "eu".to_owned())
            ])
        );
        assert!(config.disable_engine);
        assert_eq!(config.agent_ttl, Duration::from_secs(5));
    }

    #[test]
    fn a_bad_override_names_where_it_came_from() {
        let mut overrides = Overrides::default();
        overrides.set("--metadata", "metadata", "disk");
        let err = load("", &overrides).unwrap_err().to_string();
        assert_eq!(err, "--metadata: expected k=v,k2=v2, got \"disk\"");
        let overrides = Overrides::from_env([("FLOTILLA_AGENT_TTL".into(), "never".into())]);
        let err = load("", &overrides).unwrap_err().to_string();
        assert!(err.contains("invalid duration \"never\""), "{err}");
    }

    #[test]
    fn tcp_api_requires_mutual_tls() {
        let err = load("api_listen = \"127.0.0.1:8479\"\n", &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("api_listen needs api_cafile"), "{err}");
    }

    #[test]
    fn a_missing_file_is_the_default_only_at_the_default_path() {
        assert!(Config::load(Path::new("/nonexistent/flotilla.toml"))
            .unwrap_err()
            .to_string()
            .starts_with("cannot read configuration /nonexistent/flotilla.toml: "));
    }
}
