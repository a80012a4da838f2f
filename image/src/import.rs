//! Making a single-layer image from a root file system tarball (`flotilla import`), with the
//! Dockerfile instructions docker's `--change` accepts applied to the image config.
//!
//! [`Change::parse`] is pure: `CMD`, `ENTRYPOINT` (JSON array, or shell form, which becomes
//! `["/bin/sh","-c",…]`), `ENV`, `EXPOSE`, `LABEL`, `USER`, `VOLUME`, `WORKDIR` and
//! `STOPSIGNAL`; anything else is refused by name. [`import`] streams the tarball (plain, gzip
//! or zstd) into the store as the image's one layer, verified and unpacked like any other.

use std::io::Read;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::compression::sniff;
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest, Platform};
use crate::media_types;
use crate::reference::Reference;
use crate::store::{BlobCheck, NewImage, Store, StoreError};

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A `--change` is not usable.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// The store refused the layer or could not keep it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the tarball failed.
    #[error("cannot read {source_name}: {source}")]
    Input {
        /// The file name, or `-`.
        source_name: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a `--change` instruction was refused; each quotes the instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// An instruction `--change` does not support (or not a Dockerfile instruction at all).
    #[error("{instruction} is not supported by --change (supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)")]
    Unsupported {
        /// The instruction word as given.
        instruction: String,
    },
    /// The instruction has no arguments.
    #[error("{instruction} requires at least one argument")]
    MissingArgument {
        /// The instruction.
        instruction: String,
    },
    /// The arguments do not parse.
    #[error("{instruction}: {reason}: {text:?}")]
    Malformed {
        /// The instruction.
        instruction: String,
        /// What is wrong.
        reason: &'static str,
        /// The arguments as given.
        text: String,
    },
}

/// One `--change` instruction, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `CMD`: the default arguments.
    Cmd(Vec<String>),
    /// `ENTRYPOINT`: the command.
    Entrypoint(Vec<String>),
    /// `ENV`: variables to set, in order.
    Env(Vec<(String, String)>),
    /// `EXPOSE`: `port/proto` keys.
    Expose(Vec<String>),
    /// `LABEL`: labels to set.
    Label(Vec<(String, String)>),
    /// `USER`.
    User(String),
    /// `VOLUME`: mount points.
    Volume(Vec<String>),
    /// `WORKDIR`.
    Workdir(String),
    /// `STOPSIGNAL`.
    StopSignal(String),
}

impl Change {
    /// Parses one instruction as `docker import --change` takes it (`CMD ["/bin/sh"]`).
    ///
    /// ```
    /// use image::import::Change;
    ///
    /// assert_eq!(
    ///     Change::parse("ENTRYPOINT echo hi").unwrap(),
    ///     Change::Entrypoint(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
    /// );
    /// ```
    pub fn parse(text: &str) -> Result<Change, ChangeError> {
        let text = text.trim();
        let (word, rest) = text
            .split_once(char::is_whitespace)
            .map_or((text, ""), |(w, r)| (w, r.trim()));
        let instruction = word.to_ascii_uppercase();
        let malformed = |reason| ChangeError::Malformed {
            instruction: instruction.clone(),
            reason,
            text: rest.to_owned(),
        };
        let supported = [
            "CMD",
            "ENTRYPOINT",
            "ENV",
            "EXPOSE",
            "LABEL",
            "USER",
            "VOLUME",
            "WORKDIR",
            "STOPSIGNAL",
        ];
        if !supported.contains(&instruction.as_str()) {
            return Err(ChangeError::Unsupported {
                instruction: word.to_owned(),
            });
        }
        if rest.is_empty() {
            return Err(ChangeError::MissingArgument { instruction });
        }
        let json_array = || -> Result<Option<Vec<String>>, ChangeError> {
            if rest.starts_with('[') {
                serde_json::from_str(rest)
                    .map(Some)
                    .map_err(|_| malformed("not a JSON array of strings"))
            } else {
                Ok(None)
            }
        };
        let shell_form = || -> Result<Vec<String>, ChangeError> {
            Ok(json_array()?
                .unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()]))
        };
        Ok(match instruction.as_str() {
            "CMD" => Change::Cmd(shell_form()?),
            "ENTRYPOINT" => Change::Entrypoint(shell_form()?),
            "ENV" => Change::Env(pairs(rest).ok_or_else(|| malformed("unbalanced quotes"))?),
            "LABEL" => Change::Label(pairs(rest).ok_or_else(|| malformed("unbalanced quotes"))?),
            "EXPOSE" => Change::Expose(
                words(rest)
                    .ok_or_else(|| malformed("unbalanced quotes"))?
                    .iter()
                    .map(|port| port_key(port).ok_or_else(|| malformed("invalid port")))
                    .collect::<Result<_, _>>()?,
            ),
            "VOLUME" => Change::Volume(match json_array()? {
                Some(volumes) => volumes,
                None => words(rest).ok_or_else(|| malformed("unbalanced quotes"))?,
            }),
            "USER" => Change::User(rest.to_owned()),
            "WORKDIR" => Change::Workdir(rest.to_owned()),
            _ => Change::StopSignal(rest.to_owned()),
        })
    }

    /// Applies the instruction to an image config's `config` object.
    pub fn apply(&self, config: &mut Map<String, Value>) {
        let mut set_map = |key: &str, keys: &[String]| {
            let object = config
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            if !object.is_object() {
                *object = Value::Object(Map::new());
            }
            if let Value::Object(map) = object {
                for k in keys {
                    map.insert(k.clone(), json!({}));
                }
            }
        };
        match self {
            Change::Expose(ports) => set_map("ExposedPorts", ports),
            Change::Volume(volumes) => set_map("Volumes", volumes),
            Change::Cmd(args) => {
                config.insert("Cmd".into(), json!(args));
            }
            Change::Entrypoint(args) => {
                config.insert("Entrypoint".into(), json!(args));
            }
            Change::User(user) => {
                config.insert("User".into(), json!(user));
            }
            Change::Workdir(dir) => {
                config.insert("WorkingDir".into(), json!(dir));
            }
            Change::StopSignal(signal) => {
                config.insert("StopSignal".into(), json!(signal));
            }
            Change::Label(labels) => {
                let object = config.entry("Labels").or_insert_with(|| json!({}));
                if let Value::Object(map) = object {
                    for (k, v) in labels {
                        map.insert(k.clone(), json!(v));
                    }
                }
            }
            Change::Env(vars) => {
                let mut env: Vec<String> = config
                    .get("Env")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                for (k, v) in vars {
                    let prefix = format!("{k}=");
                    env.retain(|e| !e.starts_with(&prefix));
                    env.push(format!("{k}={v}"));
                }
                config.insert("Env".into(), json!(env));
            }
        }
    }
}

/// Splits on blanks outside quotes, removing the quotes (`a="b c"` is one word `a=b c`);
/// `None` when a quote is not closed.
fn words(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => word.get_or_insert_with(String::new).extend(chars.next()),
            (_, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return None;
    }
    out.extend(word);
    Some(out)
}

/// `k=v k2="v 2"` pairs, or the old one-pair form `k value with blanks`.
fn pairs(text: &str) -> Option<Vec<(String, String)>> {
    let first = text.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        let (key, value) = text.split_once(char::is_whitespace)?;
        return Some(vec![(key.to_owned(), words(value.trim())?.join(" "))]);
    }
    words(text)?
        .into_iter()
        .map(|w| w.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// `80` → `80/tcp`, `53/udp` stays; `None` for anything that is not a port.
fn port_key(port: &str) -> Option<String> {
    let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
    let valid = number.parse::<u16>().is_ok() && matches!(proto, "tcp" | "udp" | "sctp");
    valid.then(|| format!("{number}/{proto}"))
}

/// What to record with an imported image.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions<'a> {
    /// The instructions applied to the config, in order.
    pub changes: &'a [Change],
    /// The commit message; `Imported from SOURCE` when `None`, as docker writes.
    pub message: Option<&'a str>,
    /// The tarball's name (`-` for standard input), for the history and errors.
    pub source_name: &'a str,
    /// The name to give the image.
    pub tag: Option<&'a Reference>,
}

/// Makes a single-layer image from the root file system tarball `reader`; returns its ID.
pub fn import(
    store: &Store,
    reader: impl Read,
    options: &ImportOptions<'_>,
) -> Result<Digest, ImportError> {
    let (compression, stream) = sniff(reader).map_err(|source| ImportError::Input {
        source_name: options.source_name.to_owned(),
        source,
    })?;
    let ingest = store.ingest()?;
    let layer = ingest.add_layer(
        stream,
        BlobCheck::default(),
        None,
        None,
        options.source_name,
    )?;
    let config = image_config(&layer.diff_id, options, &now_rfc3339());
    let config_digest = ingest.put_blob(&config, BlobCheck::default())?;
    let descriptor = |media_type: &str, digest: Digest, size: u64| Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
        platform: None,
        annotations: Default::default(),
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media_types::OCI_MANIFEST.to_owned()),
        config: descriptor(media_types::OCI_CONFIG, config_digest, config.len() as u64),
        layers: vec![descriptor(
            compression.oci_layer_type(),
            layer.blob,
            layer.blob_size,
        )],
        annotations: Default::default(),
    };
    // A manifest of strings, numbers and digests always serializes.
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    let tags: Vec<Reference> = options.tag.cloned().into_iter().collect();
    Ok(ingest.commit(&NewImage {
        manifest: &manifest,
        tags: &tags,
        repo_digests: &[],
    })?)
}

/// The image config of an imported layer (pure).
fn image_config(diff_id: &Digest, options: &ImportOptions<'_>, created: &str) -> Vec<u8> {
    let mut config = Map::new();
    for change in options.changes {
        change.apply(&mut config);
    }
    let comment = options.message.map_or_else(
        || format!("Imported from {}", options.source_name),
        str::to_owned,
    );
    let platform = Platform::host();
    let document = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "created": created,
        "comment": comment,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "comment": comment}],
    });
    serde_json::to_vec(&document).unwrap_or_default()
}

/// The current time as RFC 3339 in UTC, whole seconds, as image configs write it.
fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_as_docker_reads_them() {
        let cases: &[(&str, Change)] = &[
            (
                "CMD [\"/bin/sh\",\"-c\",\"ls\"]",
                Change::Cmd(vec!["/bin/sh".into(), "-c".into(), "ls".into()]),
            ),
            (
                "cmd echo  hi",
                Change::Cmd(vec!["/bin/sh".into(), "-c".into(), "echo  hi".into()]),
            ),
            (
                "ENV A=1 B=\"x y\"",
                Change::Env(vec![("A".into(), "1".into()), ("B".into(), "x y".into())]),
            ),
            (
                "ENV PATH /usr/bin:/bin",
                Change::Env(vec![("PATH".into(), "/usr/bin:/bin".into())]),
            ),
            (
                "EXPOSE 80 53/udp",
                Change::Expose(vec!["80/tcp".into(), "53/udp".into()]),
            ),
            (
                "LABEL a=b 'c d'=e",
                Change::Label(vec![("a".into(), "b".into()), ("c d".into(), "e".into())]),
            ),
            ("VOLUME [\"/data\"]", Change::Volume(vec!["/data".into()])),
            (
                "VOLUME /a /b",
                Change::Volume(vec!["/a".into(), "/b".into()]),
            ),
            ("USER 1000:1000", Change::User("1000:1000".into())),
            ("WORKDIR /srv", Change::Workdir("/srv".into())),
            ("STOPSIGNAL SIGINT", Change::StopSignal("SIGINT".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(Change::parse(text).as_ref(), Ok(expected), "{text}");
        }
        let error = |text| Change::parse(text).unwrap_err().to_string();
        assert_eq!(
            error("RUN rm -rf /"),
            "RUN is not supported by --change (supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)"
        );
        assert_eq!(error("CMD"), "CMD requires at least one argument");
        assert_eq!(
            error("CMD [\"a\""),
            "CMD: not a JSON array of strings: \"[\\\"a\\\"\""
        );
        assert_eq!(error("EXPOSE http"), "EXPOSE: invalid port: \"http\"");
        assert_eq!(error("ENV A=\"x"), "ENV: unbalanced quotes: \"A=\\\"x\"");
    }

    #[test]
    fn config_records_changes_message_and_layer() {
        let changes = [
            Change::parse("ENV A=1").unwrap(),
            Change::parse("ENV A=2 B=3").unwrap(),
            Change::parse("EXPOSE 80").unwrap(),
        ];
        let diff_id = Digest::sha256_of(b"layer");
        let options = ImportOptions {
            changes: &changes,
            message: Some("snapshot"),
            source_name: "-",
            tag: None,
        };
        let config: Value =
            serde_json::from_slice(&image_config(&diff_id, &options, "2026-01-02T03:04:05Z"))
                .unwrap();
        assert_eq!(config["config"]["Env"], json!(["A=2", "B=3"]));
        assert_eq!(config["config"]["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(config["history"][0]["comment"], "snapshot");
        assert_eq!(config["rootfs"]["diff_ids"][0], diff_id.to_string());
    }

    #[test]
    fn dates_are_rfc3339() {
        let at = |seconds| std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_767_323_045)), "2026-01-02T03:04:05Z");
    }
}
