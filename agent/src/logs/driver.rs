//! The log driver a container's shim writes its output with: the journal (docker's `journald`
//! driver, its fields exactly) when the journal's socket exists, else a docker `json-file` log.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::journal::{JournalError, JournalWriter};
use super::lines::Piece;
use super::time::format_rfc3339_nano;

/// Which output stream of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The journal priority docker gives the stream: info for stdout, err for stderr.
    pub fn priority(self) -> &'static str {
        match self {
            Self::Stdout => "6",
            Self::Stderr => "3",
        }
    }
}

/// Errors opening or writing a container's log.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("container id {0:?} is not 64 lower-case hex digits")]
    ContainerId(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("read random bytes for partial message ids from /dev/urandom: {0}")]
    Random(io::Error),
    #[error("open json-file log {path}: {source}")]
    OpenJsonFile { path: PathBuf, source: io::Error },
    #[error("write json-file log {path}: {source}")]
    WriteJsonFile { path: PathBuf, source: io::Error },
}

/// What the driver needs to know about the container and where its log may go.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The full 64-hex container id.
    pub container_id: String,
    /// The container's name, without docker's leading slash.
    pub name: String,
    /// The image as the user gave it.
    pub image: String,
    /// The journal socket to use if it exists (normally [`super::journal::JOURNAL_SOCKET`]).
    pub journal_socket: PathBuf,
    /// Where the json-file log goes when there is no journal: `<container dir>/<id>-json.log`.
    pub json_path: PathBuf,
}

/// The driver of one container's log.
#[derive(Debug)]
pub enum LogDriver {
    Journal(JournalLog),
    JsonFile(JsonFileLog),
}

/// What `inspect` shows of the log: `HostConfig.LogConfig` and `LogPath`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogDescription {
    #[serde(rename = "LogConfig")]
    pub log_config: InspectLogConfig,
    /// The json-file's path, empty for the journal (as docker shows it).
    #[serde(rename = "LogPath")]
    pub log_path: String,
}

/// `HostConfig.LogConfig` as docker shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectLogConfig {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    #[serde(rename = "Config")]
    pub config: BTreeMap<String, String>,
}

impl LogDriver {
    /// The journal if `config.journal_socket` exists, else the json-file at `config.json_path`.
    pub fn open(config: &LogConfig) -> Result<Self, DriverError> {
        let id = &config.container_id;
        if id.len() != 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DriverError::ContainerId(id.clone()));
        }
        if config.journal_socket.exists() {
            return Ok(Self::Journal(JournalLog::new(config)?));
        }
        let path = config.json_path.clone();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| DriverError::OpenJsonFile {
                path: path.clone(),
                source,
            })?;
        Ok(Self::JsonFile(JsonFileLog { file, path }))
    }

    /// Logs one piece of the container's `stream`, stamped now.
    pub fn write(&mut self, stream: Stream, piece: &Piece) -> Result<(), DriverError> {
        let time = SystemTime::now();
        match self {
            Self::Journal(journal) => journal.write(stream, piece, time),
            Self::JsonFile(json) => json.write(stream, piece, time),
        }
    }

    /// What `inspect` shows of this log.
    pub fn describe(&self) -> LogDescription {
        let (kind, log_path) = match self {
            Self::Journal(_) => ("journald", String::new()),
            Self::JsonFile(json) => ("json-file", json.path.display().to_string()),
        };
        LogDescription {
            log_config: InspectLogConfig {
                kind,
                config: BTreeMap::new(),
            },
            log_path,
        }
    }
}

/// docker's journald driver: the container's fields on every entry.
#[derive(Debug)]
pub struct JournalLog {
    writer: JournalWriter,
    fields: Vec<(&'static str, String)>,
    partial_id_prefix: String,
}

impl JournalLog {
    fn new(config: &LogConfig) -> Result<Self, DriverError> {
        let tag = config.container_id[..12].to_owned();
        let fields = vec![
            ("CONTAINER_ID", tag.clone()),
            ("CONTAINER_ID_FULL", config.container_id.clone()),
            (
                "CONTAINER_NAME",
                config.name.trim_start_matches('/').to_owned(),
            ),
            ("CONTAINER_TAG", tag.clone()),
            ("IMAGE_NAME", config.image.clone()),
            ("SYSLOG_IDENTIFIER", tag),
        ];
        let mut random = [0u8; 24];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .map_err(DriverError::Random)?;
        let partial_id_prefix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let writer = JournalWriter::new(&config.journal_socket)?;
        Ok(Self {
            writer,
            fields,
            partial_id_prefix: partial_id_prefix[..47].to_owned(),
        })
    }

    fn write(&self, stream: Stream, piece: &Piece, time: SystemTime) -> Result<(), DriverError> {
        let timestamp = format_rfc3339_nano(time);
        let mut fields: Vec<(&str, &[u8])> = vec![
            ("MESSAGE", &piece.bytes),
            ("PRIORITY", stream.priority().as_bytes()),
        ];
        fields.extend(
            self.fields
                .iter()
                .map(|(name, value)| (*name, value.as_bytes())),
        );
        fields.push(("SYSLOG_TIMESTAMP", timestamp.as_bytes()));
        let partial = piece.partial.map(|p| {
            // 64 hex like docker's random ids: random per driver, then the stream and line number
            let stream_digit = u8::from(stream == Stream::Stderr);
            (
                format!("{}{stream_digit}{:016x}", self.partial_id_prefix, p.line),
                p.ordinal.to_string(),
                p.last,
            )
        });
        if let Some((id, ordinal, last)) = &partial {
            fields.push(("CONTAINER_PARTIAL_ID", id.as_bytes()));
            fields.push(("CONTAINER_PARTIAL_ORDINAL", ordinal.as_bytes()));
            fields.push((
                "CONTAINER_PARTIAL_LAST",
                if *last { b"true" } else { b"false" },
            ));
            if !last {
                fields.push(("CONTAINER_PARTIAL_MESSAGE", b"true"));
            }
        }
        Ok(self.writer.send(&fields)?)
    }
}

/// docker's json-file driver: one JSON object per line, appended.
#[derive(Debug)]
pub struct JsonFileLog {
    file: File,
    path: PathBuf,
}

/// One line of a json-file log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonLine {
    /// The text, with `\n` unless it is a piece of a longer line.
    pub log: String,
    pub stream: Stream,
    /// RFC 3339 with nanoseconds, trailing zeros dropped.
    pub time: String,
}

impl JsonLine {
    /// The line docker's json-file driver writes for `piece` (invalid UTF-8 becomes U+FFFD).
    pub fn new(stream: Stream, piece: &Piece, time: SystemTime) -> Self {
        let mut log = String::from_utf8_lossy(&piece.bytes).into_owned();
        if piece.partial.is_none_or(|p| p.last) {
            log.push('\n');
        }
        Self {
            log,
            stream,
            time: format_rfc3339_nano(time),
        }
    }
}

impl JsonFileLog {
    fn write(
        &mut self,
        stream: Stream,
        piece: &Piece,
        time: SystemTime,
    ) -> Result<(), DriverError> {
        let mut line = serde_json::to_vec(&JsonLine::new(stream, piece, time)).unwrap_or_default();
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|source| DriverError::WriteJsonFile {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::lines::Partial;
    use std::path::Path;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn config(dir: &Path) -> LogConfig {
        LogConfig {
            container_id: ID.to_owned(),
            name: "/web".to_owned(),
            image: "busybox".to_owned(),
            journal_socket: dir.join("no-journal"),
            json_path: dir.join(format!("{ID}-json.log")),
        }
    }

    #[test]
    fn json_lines_look_like_dockers() {
        let time = std::time::UNIX_EPOCH + std::time::Duration::new(1_795_564_800, 123_456_789);
        let whole = Piece {
            bytes: b"hi \"you\"".to_vec(),
            partial: None,
        };
        let line =
            serde_json::to_string(&JsonLine::new(Stream::Stdout, &whole, time)).expect("json");
        assert_eq!(
            line,
            r#"{"log":"hi \"you\"\n","stream":"stdout","time":"2026-11-25T00:00:00.123456789Z"}"#
        );
        let piece = Piece {
            bytes: b"abc".to_vec(),
            partial: Some(Partial {
                line: 0,
                ordinal: 1,
                last: false,
            }),
        };
        assert_eq!(JsonLine::new(Stream::Stderr, &piece, time).log, "abc");
    }

    #[test]
    fn without_a_journal_socket_the_log_is_a_json_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(dir.path());
        let mut driver = LogDriver::open(&config).expect("open");
        driver
            .write(
                Stream::Stderr,
                &Piece {
                    bytes: b"oops".to_vec(),
                    partial: None,
                },
            )
            .expect("write");
        let description = serde_json::to_value(driver.describe()).expect("json");
        assert_eq!(
            description,
            serde_json::json!({"LogConfig": {"Type": "json-file", "Config": {}}, "LogPath": config.json_path.display().to_string()})
        );
        let text = std::fs::read_to_string(&config.json_path).expect("read log");
        let line: JsonLine = serde_json::from_str(text.trim_end()).expect("one json line");
        assert_eq!((line.log.as_str(), line.stream), ("oops\n", Stream::Stderr));
    }

    #[test]
    fn short_or_upper_case_ids_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for id in ["0123456789ab", &ID.to_uppercase()] {
            let config = LogConfig {
                container_id: id.to_owned(),
                ..config(dir.path())
            };
            let err = LogDriver::open(&config).expect_err(id);
            assert!(err.to_string().contains(id), "{err}");
        }
    }
}
