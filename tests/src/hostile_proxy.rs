//! [`HostileProxy`]: an HTTP/1.1 proxy on 127.0.0.1 in front of a [`Registry`] that misbehaves on
//! purpose, the way broken networks, caches and malicious mirrors do, so the registry client's
//! defences can be tested against a real registry.
//!
//! Each connection carries one request (`Connection: close`). The proxy forwards it, reads the
//! whole answer, and per [`Mode`] corrupts, truncates or replaces it. Every request is recorded
//! ([`HostileProxy::requests`]) so tests can assert what the client sent (`Range`, retries).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::registry::{io_error, Registry, Result};
use crate::token_server::{read_head, RequestHead};

/// Size of the manifest [`Mode::ManifestBomb`] serves.
pub const BOMB_BYTES: u64 = 64 << 20;

/// How the proxy misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwards faithfully (a baseline).
    Passthrough,
    /// Flips one byte in the middle of every blob body.
    WrongBlobBytes,
    /// Announces the full `Content-Length` of a blob but closes the connection after `after`
    /// body bytes: on every blob request, or only on the first.
    TruncateBlob {
        /// Body bytes sent before closing.
        after: usize,
        /// Every blob request, or only the first.
        every_time: bool,
    },
    /// Sends blob bodies without `Content-Length`, delimited by closing the connection (as
    /// HTTP/1.0 servers and some proxies do), so only the byte count tells a short or long body;
    /// optionally cuts the first one short after `truncate_first_after` bytes.
    Undelimited {
        /// Body bytes of the first blob answer sent before closing, if it is to be cut short.
        truncate_first_after: Option<usize>,
    },
    /// Answers every manifest request with a 64 MiB manifest, announced by `Content-Length` or
    /// sent chunked with no length.
    ManifestBomb {
        /// Chunked, without `Content-Length`.
        chunked: bool,
    },
    /// Answers the first `fail_first_n` requests with 503.
    Flaky {
        /// How many requests fail.
        fail_first_n: usize,
    },
    /// Redirects authenticated blob requests to `localhost` (another host to the client than
    /// `127.0.0.1`), as a registry redirects to a CDN, and records whether the redirected request carried
    /// `Authorization` (it must not); the proxy itself authenticates the redirected request
    /// upstream, as a pre-signed CDN URL would.
    RedirectBlobs,
}

/// What the proxy saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// `GET`, `HEAD`.
    pub method: String,
    /// The path and query.
    pub target: String,
    /// The `Host` header.
    pub host: Option<String>,
    /// The `Range` header.
    pub range: Option<String>,
    /// Whether `Authorization` was sent.
    pub authorization: bool,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    upstream: String,
    upstream_authorization: Option<String>,
    port: u16,
    requests: Mutex<Vec<SeenRequest>>,
    truncations: AtomicUsize,
    tls_refused: AtomicUsize,
    body_bytes_sent: AtomicU64,
    stop: AtomicBool,
}

/// A running proxy; stops on drop.
#[derive(Debug)]
pub struct HostileProxy {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl HostileProxy {
    /// Starts a proxy for `registry` on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// The port could not be bound.
    pub fn start(registry: &Registry, mode: Mode) -> Result<HostileProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("bind", "127.0.0.1:0"))?;
        let port = listener
            .local_addr()
            .map_err(io_error("get the address of", "the proxy"))?
            .port();
        let upstream_authorization = registry.credentials().map(|(user, password)| {
            format!(
                "Basic {}",
                crate::registry::base64(
                    format!("{user}:{password}").as_bytes(),
                    crate::registry::STANDARD
                )
            )
        });
        let state = Arc::new(State {
            mode,
            upstream: registry.host(),
            upstream_authorization,
            port,
            requests: Mutex::new(Vec::new()),
            truncations: AtomicUsize::new(0),
            tls_refused: AtomicUsize::new(0),
            body_bytes_sent: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let state = Arc::clone(&state);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if state.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = Arc::clone(&state);
                    // A client that hangs up mid-answer is what some modes provoke: not an error.
                    std::thread::spawn(move || {
                        let _ = state.serve(stream);
                    });
                }
            })
        };
        Ok(HostileProxy {
            state,
            thread: Some(thread),
        })
    }

    /// `127.0.0.1:PORT`, to use as the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.state.port)
    }

    /// Every request seen so far, in order of arrival.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many connections opened with a TLS handshake (a client trying https), refused at once.
    pub fn tls_handshakes_refused(&self) -> usize {
        self.state.tls_refused.load(Ordering::SeqCst)
    }

    /// Body bytes written to clients so far (a manifest bomb's client should stop early).
    pub fn body_bytes_sent(&self) -> u64 {
        self.state.body_bytes_sent.load(Ordering::SeqCst)
    }
}

impl Drop for HostileProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop; failing means it is gone already.
        let _ = TcpStream::connect(("127.0.0.1", self.state.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An upstream answer, its body de-chunked.
struct Answer {
    status: u16,
    head: Vec<(String, String)>,
    status_line: String,
    body: Vec<u8>,
}

impl State {
    fn serve(&self, stream: TcpStream) -> io::Result<()> {
        // A client trying https first (loopback registries are insecure) sends a TLS handshake
        // record: refuse it at once rather than wait for a request line that never comes.
        let mut first = [0u8; 1];
        if stream.peek(&mut first)? == 1 && first[0] == 0x16 {
            self.tls_refused.fetch_add(1, Ordering::SeqCst);
            return (&stream).write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
        let mut reader = BufReader::new(stream.try_clone()?);
        let head = read_head(&mut reader)?;
        let mut client = stream;
        let index = {
            let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
            requests.push(SeenRequest {
                method: head.method.clone(),
                target: head.target.clone(),
                host: head.header("host").map(str::to_owned),
                range: head.header("range").map(str::to_owned),
                authorization: head.header("authorization").is_some(),
            });
            requests.len() - 1
        };
        let is_blob = head.target.contains("/blobs/");
        let is_get = head.method == "GET";
        match self.mode {
            Mode::Flaky { fail_first_n } if index < fail_first_n => {
                return client.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
            Mode::ManifestBomb { chunked } if is_get && head.target.contains("/manifests/") => {
                return self.bomb(&mut client, chunked);
            }
            // Only once authenticated: the registry must first ask for credentials, as a real one does.
            Mode::RedirectBlobs
                if is_blob
                    && !head.target.starts_with("/cdn/")
                    && head.header("authorization").is_some() =>
            {
                return write!(
                    client,
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://localhost:{}/cdn{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.port, head.target
                );
            }
            _ => {}
        }
        let mut upstream_head = head.clone();
        if let Some(target) = head.target.strip_prefix("/cdn") {
            upstream_head.target = target.to_owned();
            upstream_head
                .headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
            if let Some(authorization) = &self.upstream_authorization {
                upstream_head
                    .headers
                    .push(("Authorization".to_owned(), authorization.clone()));
            }
        }
        let mut answer = self.forward(&upstream_head)?;
        let blob_body = is_get && is_blob && matches!(answer.status, 200 | 206);
        let mut send = answer.body.len();
        match self.mode {
            Mode::WrongBlobBytes if blob_body && !answer.body.is_empty() => {
                let middle = answer.body.len() / 2;
                answer.body[middle] ^= 0x5a;
            }
            Mode::TruncateBlob { after, every_time }
                if blob_body
                    && (every_time || self.truncations.fetch_add(1, Ordering::SeqCst) == 0) =>
            {
                send = send.min(after);
            }
            Mode::Undelimited {
                truncate_first_after: Some(after),
            } if blob_body && self.truncations.fetch_add(1, Ordering::SeqCst) == 0 => {
                send = send.min(after);
            }
            _ => {}
        }
        write!(client, "{}\r\n", answer.status_line)?;
        for (name, value) in &answer.head {
            if !["content-length", "transfer-encoding", "connection"]
                .iter()
                .any(|skip| name.eq_ignore_ascii_case(skip))
            {
                write!(client, "{name}: {value}\r\n")?;
            }
        }
        let length = if head.method == "HEAD" {
            answer
                .head
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, value)| value.parse().unwrap_or(0))
        } else {
            answer.body.len()
        };
        if !(blob_body && matches!(self.mode, Mode::Undelimited { .. })) {
            write!(client, "Content-Length: {length}\r\n")?;
        }
        write!(client, "Connection: close\r\n\r\n")?;
        if head.method != "HEAD" {
            client.write_all(&answer.body[..send])?;
            self.body_bytes_sent
                .fetch_add(send as u64, Ordering::SeqCst);
        }
        client.flush()?;
        client.shutdown(std::net::Shutdown::Both)
    }

    fn forward(&self, head: &RequestHead) -> io::Result<Answer> {
        let mut upstream = TcpStream::connect(&self.upstream)?;
        write!(upstream, "{} {} HTTP/1.1\r\n", head.method, head.target)?;
        for (name, value) in &head.headers {
            if !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("host") {
                write!(upstream, "{name}: {value}\r\n")?;
            }
        }
        write!(
            upstream,
            "Host: {}\r\nConnection: close\r\n\r\n",
            self.upstream
        )?;
        let mut reader = BufReader::new(upstream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line)?;
        let status_line = status_line.trim_end().to_owned();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let chunked = headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked")
        });
        let mut body = Vec::new();
        if head.method != "HEAD" {
            if chunked {
                loop {
                    let mut size = String::new();
                    reader.read_line(&mut size)?;
                    let size =
                        usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                            .map_err(io::Error::other)?;
                    let mut chunk = vec![0; size + 2];
                    reader.read_exact(&mut chunk)?;
                    if size == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..size]);
                }
            } else {
                reader.read_to_end(&mut body)?;
            }
        }
        Ok(Answer {
            status,
            head: headers,
            status_line,
            body,
        })
    }

    /// Streams a 64 MiB "manifest" until it is done or the client hangs up.
    fn bomb(&self, client: &mut TcpStream, chunked: bool) -> io::Result<()> {
        const PIECE: usize = 64 << 10;
        let mut head = String::from(
            "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n",
        );
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
        } else {
            head.push_str(&format!("Content-Length: {BOMB_BYTES}\r\n\r\n"));
        }
        client.write_all(head.as_bytes())?;
        let piece = vec![b' '; PIECE];
        for _ in 0..BOMB_BYTES / PIECE as u64 {
            if chunked {
                write!(client, "{PIECE:x}\r\n")?;
            }
            client.write_all(&piece)?;
            if chunked {
                client.write_all(b"\r\n")?;
            }
            self.body_bytes_sent
                .fetch_add(PIECE as u64, Ordering::SeqCst);
        }
        if chunked {
            client.write_all(b"0\r\n\r\n")?;
        }
        Ok(())
    }
}
