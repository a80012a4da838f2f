//! The part of an image's configuration that decides how its containers run.
//!
//! An OCI or Docker image config document holds a `config` object (`Entrypoint`, `Cmd`, `Env`,
//! `WorkingDir`, `User`, `StopSignal`, `ExposedPorts`, `Labels`); [`ImageConfig`] is that object
//! and nothing else. Docker writes `null` for unset fields, so every field is optional. The
//! shell form of `ENTRYPOINT`/`CMD` is already `["/bin/sh", "-c", …]` in the document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why an image config document could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid image config: {0}")]
pub struct ImageConfigError(#[from] serde_json::Error);

/// The `config` object of an image config document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `user[:group]`, names or numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `PORT/PROTOCOL` → `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The `{}` values of `ExposedPorts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    config: Option<ImageConfig>,
}

impl ImageConfig {
    /// Reads the `config` object out of a whole image config document (the blob an image ID
    /// is the digest of). A document without one gives the empty configuration.
    pub fn from_document(json: &[u8]) -> Result<ImageConfig, ImageConfigError> {
        let document: Document = serde_json::from_slice(json)?;
        Ok(document.config.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_config_with_nulls() {
        let json = br#"{"architecture":"amd64","config":{"Entrypoint":null,"Cmd":["/bin/sh","-c","echo hi"],
            "Env":["PATH=/bin"],"WorkingDir":"","User":"nginx","StopSignal":"SIGQUIT",
            "ExposedPorts":{"80/tcp":{}},"Labels":{"a":"b"},"OnBuild":null},"rootfs":{}}"#;
        let config = ImageConfig::from_document(json).unwrap();
        assert_eq!(config.entrypoint, None);
        assert_eq!(config.cmd.as_deref().unwrap()[2], "echo hi");
        assert_eq!(config.user.as_deref(), Some("nginx"));
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(config.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(config.labels.unwrap()["a"], "b");
    }

    #[test]
    fn a_document_without_config_is_empty_and_garbage_is_an_error() {
        assert_eq!(
            ImageConfig::from_document(b"{}").unwrap(),
            ImageConfig::default()
        );
        let error = ImageConfig::from_document(b"[").unwrap_err().to_string();
        assert!(error.starts_with("invalid image config: "), "{error}");
    }
}
