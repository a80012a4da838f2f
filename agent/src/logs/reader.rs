//! Reads a container's log back for `flotilla logs`: from the journal by running `journalctl -o
//! json` (docker's daemon reads the journal with sd-journal; a subprocess is our choice: no
//! libsystemd linking and journalctl already does matching, `--since` and following), or from a
//! json-file; joins docker's partial pieces into whole lines and routes them to stdout/stderr.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::driver::{JsonLine, Stream};
use super::time::{format_rfc3339_nano_fixed, parse_rfc3339};

/// How often a follower looks for new lines and asks whether to stop.
const POLL: Duration = Duration::from_millis(100);

/// Errors reading a container's log.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("run journalctl: {0}")]
    Spawn(io::Error),
    #[error("journalctl exited with {status}: {stderr}")]
    Journalctl {
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("read log {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("parse log entry {entry:?} from {path}: {source}")]
    Parse {
        path: PathBuf,
        entry: String,
        source: serde_json::Error,
    },
    #[error("write logs: {0}")]
    Write(io::Error),
}

/// Where a container's log is.
#[derive(Debug, Clone)]
pub enum LogSource {
    /// The journal entries with this `CONTAINER_ID_FULL`; `directory` reads a journal directory
    /// (`journalctl -D`) instead of the system journal.
    Journal {
        container_id: String,
        directory: Option<PathBuf>,
    },
    /// A docker json-file log.
    JsonFile(PathBuf),
}

/// What `flotilla logs` asked for.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only the last this many lines.
    pub tail: Option<usize>,
    /// Only lines logged at or after this time.
    pub since: Option<SystemTime>,
    /// Only lines logged at or before this time.
    pub until: Option<SystemTime>,
    /// Keep printing new lines until `stop` says so.
    pub follow: bool,
    /// Prefix each line with its time, RFC 3339 with nine fraction digits.
    pub timestamps: bool,
}

/// Writes the log's lines to `stdout` and `stderr` by their stream; when following, returns
/// once `stop()` is true (it is asked every 100 ms).
pub fn read_logs(
    source: &LogSource,
    query: &LogQuery,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    stop: &dyn Fn() -> bool,
) -> Result<(), ReadError> {
    let mut out = Output {
        query,
        stdout,
        stderr,
        joiner: Joiner::default(),
    };
    match source {
        LogSource::Journal {
            container_id,
            directory,
        } => read_journal(container_id, directory.as_ref(), &mut out, stop),
        LogSource::JsonFile(path) => read_json_file(path, &mut out, stop),
    }
}

/// One journal entry or json-file line: a whole line or a piece of one.
#[derive(Debug, PartialEq)]
struct Entry {
    stream: Stream,
    bytes: Vec<u8>,
    time: SystemTime,
    /// A piece that the next entry of the stream continues.
    continued: bool,
}

/// Glues pieces of split lines back together, per stream.
#[derive(Debug, Default)]
struct Joiner {
    pending: [Option<(Vec<u8>, SystemTime)>; 2],
}

impl Joiner {
    /// The whole line `entry` completes, if it does.
    fn push(&mut self, entry: Entry) -> Option<(Stream, Vec<u8>, SystemTime)> {
        let slot = &mut self.pending[entry.stream as usize];
        let (mut bytes, time) = slot.take().unwrap_or((Vec::new(), entry.time));
        bytes.extend_from_slice(&entry.bytes);
        if entry.continued {
            *slot = Some((bytes, time));
            return None;
        }
        Some((entry.stream, bytes, time))
    }
}

struct Output<'a> {
    query: &'a LogQuery,
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
    joiner: Joiner,
}

impl Output<'_> {
    fn emit(&mut self, stream: Stream, bytes: &[u8], time: SystemTime) -> Result<(), ReadError> {
        let sink: &mut dyn Write = match stream {
            Stream::Stdout => &mut *self.stdout,
            Stream::Stderr => &mut *self.stderr,
        };
        let mut line = Vec::with_capacity(bytes.len() + 32);
        if self.query.timestamps {
            line.extend_from_slice(format_rfc3339_nano_fixed(time).as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(bytes);
        line.push(b'\n');
        sink.write_all(&line)
            .and_then(|()| sink.flush())
            .map_err(ReadError::Write)
    }

    fn wanted(&self, time: SystemTime) -> bool {
        self.query.since.is_none_or(|since| time >= since)
            && self.query.until.is_none_or(|until| time <= until)
    }
}

fn read_journal(
    container_id: &str,
    directory: Option<&PathBuf>,
    out: &mut Output<'_>,
    stop: &dyn Fn() -> bool,
) -> Result<(), ReadError> {
    let mut command = Command::new("journalctl");
    command.args(["-o", "json", "--all", "--no-pager", "-q"]);
    if let Some(directory) = directory {
        command.arg("-D").arg(directory);
    }
    if let Some(tail) = out.query.tail {
        command.arg(format!("--lines={tail}"));
    }
    for (option, time) in [("--since", out.query.since), ("--until", out.query.until)] {
        if let Some(time) = time {
            let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
            command.arg(format!(
                "{option}=@{}.{:06}",
                since_epoch.as_secs(),
                since_epoch.subsec_micros()
            ));
        }
    }
    if out.query.follow {
        command.arg("--follow");
    }
    command.arg(format!("CONTAINER_ID_FULL={container_id}"));
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ReadError::Spawn)?;
    let journal = child.stdout.take().map(BufReader::new);
    let (sender, receiver) = mpsc::channel();
    let pump = thread::spawn(move || {
        for line in journal.into_iter().flat_map(|reader| reader.split(b'\n')) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let path = directory
        .cloned()
        .unwrap_or_else(|| PathBuf::from("the journal"));
    let result = loop {
        match receiver.recv_timeout(POLL) {
            Ok(Ok(line)) => {
                let entry = journal_entry(&line).map_err(|source| ReadError::Parse {
                    path: path.clone(),
                    entry: String::from_utf8_lossy(&line).into_owned(),
                    source,
                });
                let written =
                    entry.and_then(|entry| match entry.and_then(|e| out.joiner.push(e)) {
                        Some((stream, bytes, time)) => out.emit(stream, &bytes, time),
                        None => Ok(()),
                    });
                if let Err(e) = written {
                    break Err(e);
                }
            }
            Ok(Err(source)) => {
                break Err(ReadError::Read {
                    path: path.clone(),
                    source,
                })
            }
            Err(RecvTimeoutError::Timeout) if stop() => break Ok(()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        }
    };
    let finished = child.try_wait().ok().flatten().is_some();
    if !finished {
        // following, stopped or failed to write: journalctl would run on
        let _ = child.kill();
    }
    drop(receiver);
    let status = child.wait().map_err(ReadError::Spawn)?;
    let _ = pump.join();
    if finished && !status.success() && result.is_ok() {
        let mut stderr = String::new();
        let _ = child
            .stderr
            .take()
            .map(|mut e| e.read_to_string(&mut stderr));
        return Err(ReadError::Journalctl {
            status,
            stderr: stderr.trim().to_owned(),
        });
    }
    result
}

/// One `journalctl -o json` line; `None` for entries without a message.
fn journal_entry(line: &[u8]) -> Result<Option<Entry>, serde_json::Error> {
    let fields: serde_json::Map<String, Value> = serde_json::from_slice(line)?;
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    let bytes = match fields.get("MESSAGE") {
        Some(Value::String(message)) => message.clone().into_bytes(),
        // journalctl shows a message that is not UTF-8 as an array of its bytes
        Some(Value::Array(bytes)) => bytes
            .iter()
            .filter_map(Value::as_u64)
            .map(|b| b as u8)
            .collect(),
        _ => return Ok(None),
    };
    let stream = if text("PRIORITY") == Some("3") {
        Stream::Stderr
    } else {
        Stream::Stdout
    };
    let logged = text("SYSLOG_TIMESTAMP").and_then(|t| parse_rfc3339(t).ok());
    let received = text("__REALTIME_TIMESTAMP")
        .and_then(|t| t.parse().ok())
        .map(|us| UNIX_EPOCH + Duration::from_micros(us));
    let time = logged.or(received).unwrap_or(UNIX_EPOCH);
    let continued = text("CONTAINER_PARTIAL_MESSAGE") == Some("true");
    Ok(Some(Entry {
        stream,
        bytes,
        time,
        continued,
    }))
}

/// One json-file line (without its newline).
fn json_entry(line: &[u8]) -> Result<Entry, serde_json::Error> {
    let line: JsonLine = serde_json::from_slice(line)?;
    let mut bytes = line.log.into_bytes();
    let continued = bytes.last() != Some(&b'\n');
    if !continued {
        bytes.pop();
    }
    let time = parse_rfc3339(&line.time).unwrap_or(UNIX_EPOCH);
    Ok(Entry {
        stream: line.stream,
        bytes,
        time,
        continued,
    })
}

fn read_json_file(
    path: &Path,
    out: &mut Output<'_>,
    stop: &dyn Fn() -> bool,
) -> Result<(), ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut partial_line = Vec::new();
    let mut tail: Option<VecDeque<(Stream, Vec<u8>, SystemTime)>> =
        out.query.tail.map(VecDeque::with_capacity);
    let mut stopping = false;
    loop {
        let mut chunk = Vec::new();
        let read = reader
            .read_until(b'\n', &mut chunk)
            .map_err(|source| ReadError::Read {
                path: path.to_owned(),
                source,
            })?;
        partial_line.extend_from_slice(&chunk);
        if partial_line.ends_with(b"\n") {
            let line = std::mem::take(&mut partial_line);
            let entry = json_entry(&line[..line.len() - 1]).map_err(|source| ReadError::Parse {
                path: path.to_owned(),
                entry: String::from_utf8_lossy(&line).trim_end().to_owned(),
                source,
            })?;
            let Some((stream, bytes, time)) = out.joiner.push(entry) else {
                continue;
            };
            if !out.wanted(time) {
                continue;
            }
            match (&mut tail, out.query.tail) {
                (Some(kept), Some(limit)) => {
                    kept.push_back((stream, bytes, time));
                    if kept.len() > limit {
                        kept.pop_front();
                    }
                }
                _ => out.emit(stream, &bytes, time)?,
            }
            continue;
        }
        if read > 0 {
            continue;
        }
        // at the end of what is written so far: print the tail, then follow or finish
        for (stream, bytes, time) in tail.take().into_iter().flatten() {
            out.emit(stream, &bytes, time)?;
        }
        if !out.query.follow || stopping {
            return Ok(());
        }
        // one more pass after `stop` so lines written just before it are not lost
        stopping = stop();
        if !stopping {
            thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::driver::{LogConfig, LogDriver};
    use crate::logs::lines::LineSplitter;
    use std::cell::Cell;

    const ID: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn json_driver(dir: &Path) -> (LogDriver, PathBuf) {
        let json_path = dir.join(format!("{ID}-json.log"));
        let config = LogConfig {
            container_id: ID.to_owned(),
            name: "web".to_owned(),
            image: "busybox".to_owned(),
            journal_socket: dir.join("no-journal"),
            json_path: json_path.clone(),
        };
        (LogDriver::open(&config).expect("open driver"), json_path)
    }

    fn log(driver: &mut LogDriver, stream: Stream, splitter: &mut LineSplitter, bytes: &[u8]) {
        for piece in splitter.feed(bytes) {
            driver.write(stream, &piece).expect("write");
        }
    }

    fn read(path: &Path, query: &LogQuery) -> (String, String) {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        read_logs(
            &LogSource::JsonFile(path.to_owned()),
            query,
            &mut stdout,
            &mut stderr,
            &|| true,
        )
        .expect("read");
        (
            String::from_utf8(stdout).expect("utf-8"),
            String::from_utf8(stderr).expect("utf-8"),
        )
    }

    #[test]
    fn json_file_lines_come_back_on_their_streams_with_long_lines_joined() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut driver, path) = json_driver(dir.path());
        let (mut out, mut err) = (LineSplitter::default(), LineSplitter::default());
        let long = "y".repeat(40 * 1024);
        log(&mut driver, Stream::Stdout, &mut out, b"one\ntw");
        log(&mut driver, Stream::Stderr, &mut err, b"bad\n");
        log(
            &mut driver,
            Stream::Stdout,
            &mut out,
            format!("o\n{long}\nthree\n").as_bytes(),
        );
        let text = std::fs::read_to_string(&path).expect("log file");
        assert_eq!(text.lines().count(), 7, "40 KiB line in 3 pieces");
        let (stdout, stderr) = read(&path, &LogQuery::default());
        assert_eq!(stdout, format!("one\ntwo\n{long}\nthree\n"));
        assert_eq!(stderr, "bad\n");
        let (stdout, _) = read(
            &path,
            &LogQuery {
                tail: Some(2),
                ..LogQuery::default()
            },
        );
        assert_eq!(stdout, format!("{long}\nthree\n"));
    }

    #[test]
    fn timestamps_since_and_until_use_each_lines_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.json");
        let lines = [
            r#"{"log":"early\n","stream":"stdout","time":"2026-11-24T10:00:00Z"}"#,
            r#"{"log":"mid\n","stream":"stdout","time":"2026-11-24T11:00:00.5Z"}"#,
            r#"{"log":"late\n","stream":"stderr","time":"2026-11-24T12:00:00Z"}"#,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").expect("write");
        let since = parse_rfc3339("2026-11-24T10:30:00Z").ok();
        let until = parse_rfc3339("2026-11-24T11:30:00Z").ok();
        let query = LogQuery {
            since,
            until,
            timestamps: true,
            ..LogQuery::default()
        };
        assert_eq!(
            read(&path, &query),
            (
                "2026-11-24T11:00:00.500000000Z mid\n".to_owned(),
                String::new()
            )
        );
    }

    #[test]
    fn following_prints_lines_written_later_until_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut driver, path) = json_driver(dir.path());
        let mut splitter = LineSplitter::default();
        log(&mut driver, Stream::Stdout, &mut splitter, b"before\n");
        let asked = Cell::new(0);
        let stop = || {
            asked.set(asked.get() + 1);
            if asked.get() == 2 {
                let line = r#"{"log":"after\n","stream":"stdout","time":"2026-11-24T12:00:00Z"}"#;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("open log");
                writeln!(file, "{line}").expect("append");
            }
            asked.get() >= 3
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let query = LogQuery {
            follow: true,
            ..LogQuery::default()
        };
        read_logs(
            &LogSource::JsonFile(path.clone()),
            &query,
            &mut stdout,
            &mut stderr,
            &stop,
        )
        .expect("follow");
        assert_eq!(String::from_utf8_lossy(&stdout), "before\nafter\n");
    }

    #[test]
    fn journal_messages_given_as_byte_arrays_are_bytes() {
        let entry = journal_entry(
            br#"{"MESSAGE":[104,255,10,105],"PRIORITY":"3","__REALTIME_TIMESTAMP":"1000001"}"#,
        )
        .expect("json")
        .expect("entry");
        let time = UNIX_EPOCH + Duration::from_micros(1_000_001);
        assert_eq!(
            entry,
            Entry {
                stream: Stream::Stderr,
                bytes: b"h\xff\ni".to_vec(),
                time,
                continued: false
            }
        );
    }

    #[test]
    fn a_missing_json_file_is_named() {
        let query = LogQuery::default();
        let err = read_logs(
            &LogSource::JsonFile("/nonexistent/x-json.log".into()),
            &query,
            &mut io::sink(),
            &mut io::sink(),
            &|| true,
        )
        .expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("read log /nonexistent/x-json.log: "),
            "{err}"
        );
    }
}
