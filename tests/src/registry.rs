//! [`Registry`]: a real `docker-registry` (distribution 2.8) on 127.0.0.1 for the registry client's
//! tests, without authentication, with htpasswd Basic authentication, or behind a token server of
//! our own ([`TokenServer`]) issuing signed JWTs, as Docker Hub does.
//!
//! Schema 1 pushes are enabled (`compatibility.schema1`) so tests can store the deprecated manifests
//! a client must refuse. Each registry keeps its storage and configuration in a temporary directory and is killed on
//! drop. [`FixtureError`], the error of every fixture module, is defined here.
//!
//! ```no_run
//! use flotilla_tests::registry::{Auth, Registry};
//!
//! let registry = Registry::start(Auth::None).unwrap();
//! println!("push to {}/app:v1", registry.host());
//! ```

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::token_server::TokenServer;

/// The registry binary Debian's `docker-registry` package installs.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// The user the token server accepts.
pub const TOKEN_USER: &str = "flotilla";
/// That user's password.
pub const TOKEN_PASSWORD: &str = "token-secret";

/// What went wrong setting up or driving a fixture (registry, token server, image, proxy).
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A file-system or socket operation failed.
    #[error("cannot {what} {target}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path or address.
        target: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A command could not be started (missing package: see tests/deps.sh).
    #[error("cannot run `{cmd}`: {source} (tests/deps.sh installs it)")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A command exited unsuccessfully.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// A server did not come up.
    #[error("{what} did not start: {detail}")]
    NotReady {
        /// The server.
        what: String,
        /// Why, with its log.
        detail: String,
    },
}

/// Result of the fixtures.
pub type Result<T, E = FixtureError> = std::result::Result<T, E>;

pub(crate) fn io_error(
    what: &'static str,
    target: impl std::fmt::Display,
) -> impl FnOnce(io::Error) -> FixtureError {
    let target = target.to_string();
    move |source| FixtureError::Io {
        what,
        target,
        source,
    }
}

/// Runs `command`, failing with its stderr unless it succeeds.
pub(crate) fn run(command: &mut Command) -> Result<Output> {
    let cmd = format!("{command:?}").replace('"', "");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FixtureError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(FixtureError::Command {
            cmd,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// A port free on 127.0.0.1 at the time of the call.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("bind", "127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("get the address of", "127.0.0.1:0"))?
        .port();
    Ok(port)
}

/// How clients must authenticate to a [`Registry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anyone may pull and push.
    None,
    /// HTTP Basic against an htpasswd file holding this one user.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// Bearer tokens from a [`TokenServer`] that accepts [`TOKEN_USER`] / [`TOKEN_PASSWORD`].
    Token,
}

/// A running `docker-registry`, killed on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    auth: Auth,
    token_server: Option<TokenServer>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free port of 127.0.0.1 and waits until `/v2/` answers.
    ///
    /// # Errors
    /// The binary is missing, a helper (`htpasswd`, `openssl`) failed, or the registry did not
    /// answer within 10 s (with its log).
    pub fn start(auth: Auth) -> Result<Registry> {
        let dir = tempfile::tempdir().map_err(io_error("create", "a temporary directory"))?;
        let port = free_port()?;
        let (auth_section, token_server) = match &auth {
            Auth::None => (String::new(), None),
            Auth::Basic { user, password } => {
                let output = run(Command::new("htpasswd").args(["-Bbn", user, password]))?;
                let path = dir.path().join("htpasswd");
                write(&path, &output.stdout)?;
                (
                    format!(
                        "auth:\n  htpasswd:\n    realm: flotilla-test\n    path: {}\n",
                        path.display()
                    ),
                    None,
                )
            }
            Auth::Token => {
                let server = TokenServer::start(dir.path(), TOKEN_USER, TOKEN_PASSWORD)?;
                let section = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.realm(),
                    server.service(),
                    server.issuer(),
                    server.certificate().display()
                );
                (section, Some(server))
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: flotilla-test-secret\n\
             compatibility:\n  schema1:\n    enabled: true\n{auth_section}",
            dir.path().join("storage").display()
        );
        let config_path = dir.path().join("config.yml");
        write(&config_path, config.as_bytes())?;
        let log_path = dir.path().join("registry.log");
        let log =
            std::fs::File::create(&log_path).map_err(io_error("create", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(io_error("duplicate", log_path.display()))?;
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| FixtureError::Spawn {
                cmd: format!("{REGISTRY_BINARY} serve {}", config_path.display()),
                source,
            })?;
        let mut registry = Registry {
            child,
            port,
            auth,
            token_server,
            dir,
        };
        registry.wait_ready(&log_path)?;
        Ok(registry)
    }

    fn wait_ready(&mut self, log_path: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(status) = http_status(&self.host(), "/v2/") {
                if status == 200 || status == 401 {
                    return Ok(());
                }
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                return Err(FixtureError::NotReady {
                    what: format!("docker-registry on {}", self.host()),
                    detail: match exited {
                        Some(status) => format!("it exited ({status}); log:\n{log}"),
                        None => format!("/v2/ did not answer within 10 s; log:\n{log}"),
                    },
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`, the registry part of references to it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The user and password clients must present, if any.
    pub fn credentials(&self) -> Option<(String, String)> {
        match &self.auth {
            Auth::None => None,
            Auth::Basic { user, password } => Some((user.clone(), password.clone())),
            Auth::Token => Some((TOKEN_USER.to_owned(), TOKEN_PASSWORD.to_owned())),
        }
    }

    /// The token server, for [`Auth::Token`].
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// Writes a docker-style `auth.json` with this registry's credentials (`{"auths": {}}` when it
    /// has none) to `path`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_auth_file(&self, path: &Path) -> Result<()> {
        let auths = match self.credentials() {
            Some((user, password)) => serde_json::json!({
                self.host(): {"auth": base64(format!("{user}:{password}").as_bytes(), STANDARD)}
            }),
            None => serde_json::json!({}),
        };
        write(
            path,
            serde_json::json!({ "auths": auths }).to_string().as_bytes(),
        )
    }

    /// The registry's own directory (storage, configuration, log).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Already gone is fine: the process is ours and nothing else waits for it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(io_error("write", path.display()))
}

/// The status code of `GET path` on `host`, over a raw HTTP/1.1 connection.
fn http_status(host: &str, path: &str) -> io::Result<u16> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other("not an HTTP status line"))
}

/// The base64 alphabet of RFC 4648 §4 (with padding).
pub(crate) const STANDARD: (&[u8; 64], bool) = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    true,
);
/// The URL-safe base64 alphabet of RFC 4648 §5, without padding (JWTs).
pub(crate) const URL_SAFE: (&[u8; 64], bool) = (
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    false,
);

pub(crate) fn base64(bytes: &[u8], (alphabet, pad): (&[u8; 64], bool)) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (i, &byte)| {
            group | u32::from(byte) << (16 - 8 * i)
        });
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[(group >> (18 - 6 * i) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-decodes a query-string value (`+` is a space).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, byte) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
