//! [`TokenServer`]: a token server of the tests' own, as Docker Hub's `auth.docker.io`, for a
//! [`Registry`](crate::registry::Registry) configured with `auth.token`.
//!
//! It answers `GET /token?service=…&scope=repository:NAME:ACTIONS` over HTTP/1.1 on 127.0.0.1,
//! checks HTTP Basic credentials (401 without or with wrong ones), and issues a JWT granting every
//! action asked for. The JWT is RS256, signed by `openssl dgst -sha256 -sign` with a key whose
//! self-signed certificate is both in the token's `x5c` header and the registry's
//! `rootcertbundle`, so distribution 2.8 verifies it by the certificate chain.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::registry::{base64, io_error, percent_decode, run, Result, STANDARD, URL_SAFE};

const SERVICE: &str = "flotilla-test-registry";
const ISSUER: &str = "flotilla-test-token-server";

/// The head of an HTTP/1.1 request: the request line and the headers.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl RequestHead {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Reads a request head up to the empty line.
pub(crate) fn read_head(reader: &mut impl BufRead) -> io::Result<RequestHead> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::other(format!("bad request line {line:?}")));
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            return Ok(RequestHead {
                method,
                target,
                headers,
            });
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
}

/// A running token server; stops on drop.
#[derive(Debug)]
pub struct TokenServer {
    port: u16,
    certificate: PathBuf,
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

struct Signer {
    key: PathBuf,
    certificate_der: Vec<u8>,
    user: String,
    password: String,
    issued: Arc<AtomicUsize>,
}

impl TokenServer {
    /// Generates a key and certificate in `dir` and starts serving on a free port.
    ///
    /// # Errors
    /// `openssl` failed, or the port could not be bound.
    pub fn start(dir: &Path, user: &str, password: &str) -> Result<TokenServer> {
        let key = dir.join("token.key");
        let certificate = dir.join("token.crt");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=flotilla-test-token-server", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&certificate))?;
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&certificate))?
        .stdout;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("bind", "127.0.0.1:0"))?;
        let port = listener
            .local_addr()
            .map_err(io_error("get the address of", "the token server"))?
            .port();
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicUsize::new(0));
        let signer = Signer {
            key,
            certificate_der: der,
            user: user.to_owned(),
            password: password.to_owned(),
            issued: Arc::clone(&issued),
        };
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        // A broken client connection concerns that client only.
                        let _ = signer.serve(stream);
                    }
                }
            })
        };
        Ok(TokenServer {
            port,
            certificate,
            stop,
            issued,
            thread: Some(thread),
        })
    }

    /// The URL of the token endpoint (the registry's `auth.token.realm`).
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The `service` the registry names.
    pub fn service(&self) -> &'static str {
        SERVICE
    }

    /// The `iss` of every token.
    pub fn issuer(&self) -> &'static str {
        ISSUER
    }

    /// The PEM certificate of the signing key.
    pub fn certificate(&self) -> &Path {
        &self.certificate
    }

    /// How many tokens were issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag; failing means it is gone already.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Signer {
    fn serve(&self, stream: TcpStream) -> io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let head = read_head(&mut reader)?;
        let mut stream = stream;
        let expected = format!(
            "Basic {}",
            base64(
                format!("{}:{}", self.user, self.password).as_bytes(),
                STANDARD
            )
        );
        if head.header("authorization") != Some(expected.as_str()) {
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
            return write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nWWW-Authenticate: Basic realm=\"flotilla-test\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        let query = head.target.split_once('?').map_or("", |(_, query)| query);
        let access: Vec<serde_json::Value> = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(key, _)| *key == "scope")
            .filter_map(|(_, value)| {
                let scope = percent_decode(value);
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({
                    "type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let token = match self.sign(access) {
            Ok(token) => token,
            Err(e) => {
                let message = e.to_string();
                return write!(
                    stream,
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{message}",
                    message.len()
                );
            }
        };
        self.issued.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::json!({ "token": token, "expires_in": 300 }).to_string();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn sign(&self, access: Vec<serde_json::Value>) -> Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64(&self.certificate_der, STANDARD)],
        });
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": self.user,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", self.issued.load(Ordering::SeqCst)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            base64(header.to_string().as_bytes(), URL_SAFE),
            base64(claims.to_string().as_bytes(), URL_SAFE)
        );
        let dir = self.key.parent().unwrap_or(Path::new("/tmp"));
        let input =
            tempfile::NamedTempFile::new_in(dir).map_err(io_error("create", dir.display()))?;
        std::fs::write(input.path(), &signing_input)
            .map_err(io_error("write", input.path().display()))?;
        let signature = run(Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .arg(input.path()))?
        .stdout;
        Ok(format!("{signing_input}.{}", base64(&signature, URL_SAFE)))
    }
}
