//! Container logs and the agent's own logs in a real journal: each test starts a private
//! `systemd-journald` in its own mount namespace (a fresh tmpfs on /run, so the host's /run and
//! /var/log/journal are untouched), writes through its socket, reached as
//! /proc/<journald>/root/run/systemd/journal/socket, and reads back with `journalctl -D`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use agent::logs::driver::{LogConfig, LogDriver, Stream};
use agent::logs::journal::JournalWriter;
use agent::logs::lines::LineSplitter;
use agent::logs::reader::{read_logs, LogQuery, LogSource};
use serde_json::Value;

const ID: &str = "4f1d2c3b4a5968778695a4b3c2d1e0f04f1d2c3b4a5968778695a4b3c2d1e0f0";

/// A systemd-journald of our own, stopped when dropped.
struct PrivateJournal {
    journald: Child,
    root: PathBuf,
}

impl PrivateJournal {
    fn start() -> Self {
        let script = "mount -t tmpfs tmpfs /run && \
                      { [ ! -d /var/log/journal ] || mount -t tmpfs tmpfs /var/log/journal; } && \
                      mkdir -p /run/systemd/journal && exec /lib/systemd/systemd-journald";
        let journald = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unshare + systemd-journald");
        let journal = Self {
            root: PathBuf::from(format!("/proc/{}/root", journald.id())),
            journald,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !journal.socket().exists() || !journal.directory().exists() {
            assert!(
                Instant::now() < deadline,
                "private journald did not create {}",
                journal.socket().display()
            );
            thread::sleep(Duration::from_millis(20));
        }
        journal
    }

    fn socket(&self) -> PathBuf {
        self.root.join("run/systemd/journal/socket")
    }

    fn directory(&self) -> PathBuf {
        self.root.join("run/log/journal")
    }

    /// The entries matching `filter`, once there are `count` of them (journald writes async).
    fn entries(&self, filter: &str, count: usize) -> Vec<serde_json::Map<String, Value>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = Command::new("journalctl")
                .args(["-o", "json", "--all", "--no-pager", "-q", "-D"])
                .arg(self.directory())
                .arg(filter)
                .output()
                .expect("run journalctl");
            let entries: Vec<_> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(|line| serde_json::from_str(line).expect("journalctl json"))
                .collect();
            if entries.len() >= count || Instant::now() > deadline {
                assert_eq!(entries.len(), count, "entries for {filter}");
                return entries;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateJournal {
    fn drop(&mut self) {
        let _ = self.journald.kill();
        let _ = self.journald.wait();
    }
}

fn text<'a>(entry: &'a serde_json::Map<String, Value>, field: &str) -> &'a str {
    entry
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text field {field} in {entry:?}"))
}

fn write_lines(driver: &mut LogDriver, stream: Stream, splitter: &mut LineSplitter, bytes: &[u8]) {
    for piece in splitter.feed(bytes) {
        driver.write(stream, &piece).expect("write to the journal");
    }
}

fn read(journal: &PrivateJournal, query: &LogQuery) -> (Vec<u8>, Vec<u8>) {
    let source = LogSource::Journal {
        container_id: ID.to_owned(),
        directory: Some(journal.directory()),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    read_logs(&source, query, &mut stdout, &mut stderr, &|| true).expect("read the journal");
    (stdout, stderr)
}

#[test]
fn container_lines_reach_the_journal_with_dockers_fields_and_come_back_whole() {
    let journal = PrivateJournal::start();
    let config = LogConfig {
        container_id: ID.to_owned(),
        name: "/web".to_owned(),
        image: "library/busybox:1.36".to_owned(),
        journal_socket: journal.socket(),
        json_path: PathBuf::from("/nonexistent/never-written-json.log"),
    };
    let mut driver = LogDriver::open(&config).expect("open the journal driver");
    let description = serde_json::to_value(driver.describe()).expect("json");
    assert_eq!(
        description,
        serde_json::json!({"LogConfig": {"Type": "journald", "Config": {}}, "LogPath": ""})
    );

    let (mut out, mut err) = (LineSplitter::default(), LineSplitter::default());
    let long: String = (0..40 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    write_lines(&mut driver, Stream::Stdout, &mut out, b"hello\n");
    write_lines(&mut driver, Stream::Stderr, &mut err, b"oops\n");
    write_lines(
        &mut driver,
        Stream::Stdout,
        &mut out,
        &[long.as_bytes(), b"\nbad \xff byte\n"].concat(),
    );

    let entries = journal.entries(&format!("CONTAINER_ID_FULL={ID}"), 6);
    for entry in &entries {
        assert_eq!(text(entry, "CONTAINER_ID"), &ID[..12]);
        assert_eq!(text(entry, "CONTAINER_NAME"), "web");
        assert_eq!(text(entry, "CONTAINER_TAG"), &ID[..12]);
        assert_eq!(text(entry, "SYSLOG_IDENTIFIER"), &ID[..12]);
        assert_eq!(text(entry, "IMAGE_NAME"), "library/busybox:1.36");
        assert!(text(entry, "SYSLOG_TIMESTAMP").ends_with('Z'));
    }
    let messages: Vec<(&Value, &str)> = entries
        .iter()
        .map(|e| (&e["MESSAGE"], text(e, "PRIORITY")))
        .collect();
    assert_eq!(messages[0], (&Value::from("hello"), "6"));
    assert_eq!(messages[1], (&Value::from("oops"), "3"));
    let bad: Vec<Value> = b"bad \xff byte".iter().map(|&b| Value::from(b)).collect();
    assert_eq!(messages[5], (&Value::Array(bad), "6"));

    let pieces = &entries[2..5];
    let partial_id = text(&pieces[0], "CONTAINER_PARTIAL_ID");
    assert_eq!(partial_id.len(), 64);
    for (i, piece) in pieces.iter().enumerate() {
        let last = i == 2;
        assert_eq!(text(piece, "CONTAINER_PARTIAL_ID"), partial_id);
        assert_eq!(
            text(piece, "CONTAINER_PARTIAL_ORDINAL"),
            (i + 1).to_string()
        );
        assert_eq!(text(piece, "CONTAINER_PARTIAL_LAST"), last.to_string());
        assert_eq!(
            piece
                .get("CONTAINER_PARTIAL_MESSAGE")
                .and_then(Value::as_str),
            (!last).then_some("true")
        );
        assert_eq!(
            text(piece, "MESSAGE").len(),
            if last { 8 * 1024 } else { 16 * 1024 }
        );
    }
    assert!(
        !entries[0].contains_key("CONTAINER_PARTIAL_ID"),
        "whole lines carry no partial fields"
    );

    let (stdout, stderr) = read(&journal, &LogQuery::default());
    assert_eq!(
        stdout,
        [b"hello\n".as_slice(), long.as_bytes(), b"\nbad \xff byte\n"].concat()
    );
    assert_eq!(stderr, b"oops\n");

    let (stdout, _) = read(
        &journal,
        &LogQuery {
            tail: Some(1),
            timestamps: true,
            ..LogQuery::default()
        },
    );
    let stdout = String::from_utf8_lossy(&stdout);
    let (time, line) = stdout.split_once(' ').expect("timestamp prefix");
    assert_eq!(
        (time.len(), line),
        (
            "2026-11-25T00:00:00.000000000Z".len(),
            "bad \u{fffd} byte\n"
        )
    );
}

#[test]
fn following_the_journal_prints_new_lines_until_stopped() {
    let journal = PrivateJournal::start();
    let config = LogConfig {
        container_id: ID.to_owned(),
        name: "tail".to_owned(),
        image: "busybox".to_owned(),
        journal_socket: journal.socket(),
        json_path: PathBuf::from("/nonexistent/never-written-json.log"),
    };
    let mut driver = LogDriver::open(&config).expect("open the journal driver");
    let mut splitter = LineSplitter::default();
    write_lines(&mut driver, Stream::Stdout, &mut splitter, b"first\n");
    journal.entries(&format!("CONTAINER_ID_FULL={ID}"), 1);

    let stopped = AtomicBool::new(false);
    let (stdout, stderr) = thread::scope(|scope| {
        let follower = scope.spawn(|| {
            let source = LogSource::Journal {
                container_id: ID.to_owned(),
                directory: Some(journal.directory()),
            };
            let query = LogQuery {
                follow: true,
                ..LogQuery::default()
            };
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            read_logs(&source, &query, &mut stdout, &mut stderr, &|| {
                stopped.load(Ordering::SeqCst)
            })
            .expect("follow");
            (stdout, stderr)
        });
        thread::sleep(Duration::from_millis(500));
        write_lines(
            &mut driver,
            Stream::Stderr,
            &mut LineSplitter::default(),
            b"second\n",
        );
        journal.entries(&format!("CONTAINER_ID_FULL={ID}"), 2);
        thread::sleep(Duration::from_millis(1500));
        stopped.store(true, Ordering::SeqCst);
        follower.join().expect("follower")
    });
    assert_eq!(
        (stdout.as_slice(), stderr.as_slice()),
        (b"first\n".as_slice(), b"second\n".as_slice())
    );
}

#[test]
fn big_and_multi_line_values_reach_the_journal_intact() {
    let journal = PrivateJournal::start();
    let writer = JournalWriter::new(&journal.socket()).expect("writer");
    let small = b"two\nlines".to_vec();
    let big: Vec<u8> = (0..300 * 1024)
        .map(|i| {
            if i % 100 == 99 {
                b'\n'
            } else {
                b'a' + (i % 26) as u8
            }
        })
        .collect();
    let too_big =
        std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.send_to(&big, journal.socket()));
    assert_eq!(
        too_big.map_err(|e| e.raw_os_error()),
        Err(Some(nix::errno::Errno::EMSGSIZE as i32)),
        "EMSGSIZE: 300 KiB needs the memfd path"
    );
    for (tag, message) in [("small", &small), ("big", &big)] {
        let fields = [
            ("MESSAGE", message.as_slice()),
            ("FLOTILLA_TEST", tag.as_bytes()),
        ];
        writer.send(&fields).expect("send to the journal");
        let entries = journal.entries(&format!("FLOTILLA_TEST={tag}"), 1);
        assert_eq!(
            text(&entries[0], "MESSAGE").as_bytes(),
            message.as_slice(),
            "{tag}"
        );
    }
}

/// Set in the child this test runs inside journald's mount namespace.
const CHILD: &str = "FLOTILLA_AGENT_LOG_CHILD";

#[test]
fn agent_logs_go_to_the_journal_when_there_is_one_else_to_stderr() {
    if let Ok(expected) = std::env::var(CHILD) {
        let target = agent::logs::init_agent_logging("flotilla-agent-test").expect("init logging");
        assert_eq!(format!("{target:?}"), expected);
        tracing::info!("agent says hi");
        tracing::error!("agent is unhappy");
        tracing::debug!("too chatty to keep");
        return;
    }
    let me = std::env::current_exe().expect("test binary");
    let test = "agent_logs_go_to_the_journal_when_there_is_one_else_to_stderr";
    let journal = PrivateJournal::start();
    let inside = Command::new("nsenter")
        .args(["-t", &journal.journald.id().to_string(), "-m", "--"])
        .arg(&me)
        .args(["--exact", test, "--nocapture"])
        .env(CHILD, "Journal")
        .output()
        .expect("run the child in journald's namespace");
    assert!(
        inside.status.success(),
        "child: {}",
        String::from_utf8_lossy(&inside.stderr)
    );
    let entries = journal.entries("SYSLOG_IDENTIFIER=flotilla-agent-test", 2);
    let got: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (text(e, "MESSAGE"), text(e, "PRIORITY")))
        .collect();
    // tracing-journald maps INFO to notice (5), ERROR to err (3)
    assert_eq!(got, [("agent says hi", "5"), ("agent is unhappy", "3")]);

    assert!(
        !Path::new("/run/systemd/journal/socket").exists(),
        "this host has no journal of its own"
    );
    let outside = Command::new(&me)
        .args(["--exact", test, "--nocapture"])
        .env(CHILD, "Stderr")
        .output()
        .expect("child");
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert!(outside.status.success(), "child: {stderr}");
    assert!(
        stderr.contains("agent says hi") && stderr.contains("agent is unhappy"),
        "{stderr}"
    );
    assert!(!stderr.contains("too chatty"), "{stderr}");
}
