//! Credentials from docker-style files: `{"auths": {"host": {"auth": "base64(user:pass)"}}}`, or
//! `username` and `password` fields instead of `auth`.
//!
//! The file named in the configuration is the only one read when set. Otherwise these are read when
//! they exist, and the first that has an entry for a registry wins: `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json` (podman, skopeo), `$HOME/.docker/config.json` (docker).
//! Keys may carry a scheme and a path (`https://index.docker.io/v1/`); docker.io goes by several
//! names (`index.docker.io`, `registry-1.docker.io`, `docker.io`), all meaning the same registry.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

/// Why a credentials file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file could not be read (a missing file named by the configuration included).
    #[error("cannot read credentials file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not the JSON shape docker writes.
    #[error("malformed credentials file {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// An `auth` value is not base64 of `user:password`.
    #[error("malformed credentials file {}: \"auth\" of {key:?} is not base64 of user:password", path.display())]
    Auth {
        /// The file.
        path: PathBuf,
        /// The registry key of the entry.
        key: String,
    },
}

/// A user name and password for one registry; `Debug` does not show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password (or token).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The `Authorization` header value for HTTP Basic authentication.
    ///
    /// ```
    /// use image::registry::credentials::Credentials;
    ///
    /// let credentials = Credentials { username: "aladdin".into(), password: "opensesame".into() };
    /// assert_eq!(credentials.basic_header(), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    /// ```
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

/// The credentials of every file read, in lookup order.
#[derive(Debug, Default)]
pub struct CredentialStore {
    files: Vec<HashMap<String, Credentials>>,
    looked_in: Vec<PathBuf>,
}

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    auths: HashMap<String, Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl CredentialStore {
    /// Reads the files the process environment points at (see the module documentation).
    ///
    /// # Errors
    /// A file that exists but cannot be read or parsed, or a missing `auth_file`.
    pub fn load(auth_file: Option<&Path>) -> Result<CredentialStore, CredentialsError> {
        CredentialStore::load_with_env(auth_file, |name| std::env::var_os(name))
    }

    /// Like [`Self::load`] with the environment given as a function, for tests.
    pub fn load_with_env(
        auth_file: Option<&Path>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<CredentialStore, CredentialsError> {
        let mut store = CredentialStore::default();
        if let Some(path) = auth_file {
            store.read(path, true)?;
            return Ok(store);
        }
        let env_path = |name: &str| {
            env(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        let candidates = [
            env_path("REGISTRY_AUTH_FILE"),
            env_path("XDG_RUNTIME_DIR").map(|dir| dir.join("containers/auth.json")),
            env_path("HOME").map(|home| home.join(".docker/config.json")),
        ];
        for path in candidates.into_iter().flatten() {
            store.read(&path, false)?;
        }
        Ok(store)
    }

    fn read(&mut self, path: &Path, must_exist: bool) -> Result<(), CredentialsError> {
        self.looked_in.push(path.to_owned());
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if !must_exist && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(CredentialsError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let file: File =
            serde_json::from_slice(&text).map_err(|source| CredentialsError::Json {
                path: path.to_owned(),
                source,
            })?;
        let mut entries = HashMap::new();
        for (key, entry) in file.auths {
            let credentials = match (entry.auth.filter(|auth| !auth.is_empty()), entry.username) {
                (Some(auth), _) => decode_auth(&auth).ok_or_else(|| CredentialsError::Auth {
                    path: path.to_owned(),
                    key: key.clone(),
                })?,
                (None, Some(username)) => Credentials {
                    username,
                    password: entry.password.unwrap_or_default(),
                },
                // An entry kept for a credential helper (`credsStore`) holds nothing for us.
                (None, None) => continue,
            };
            entries.insert(normalize_key(&key).to_owned(), credentials);
        }
        self.files.push(entries);
        Ok(())
    }

    /// The credentials for `registry` (`127.0.0.1:5000`, `docker.io`, `registry-1.docker.io`).
    ///
    /// ```
    /// use image::registry::credentials::CredentialStore;
    ///
    /// let store = CredentialStore::load_with_env(None, |_| None).unwrap();
    /// assert!(store.get("docker.io").is_none());
    /// ```
    pub fn get(&self, registry: &str) -> Option<&Credentials> {
        let registry = normalize_key(registry);
        self.files.iter().find_map(|file| file.get(registry))
    }

    /// Every file looked in, for messages when none had credentials.
    pub fn looked_in(&self) -> &[PathBuf] {
        &self.looked_in
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/v2/` → `host:5000`.
fn normalize_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io",
        host => host,
    }
}

fn decode_auth(auth: &str) -> Option<Credentials> {
    let decoded = String::from_utf8(BASE64.decode(auth.trim()).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// Standard base64 as docker writes it; padding is optional when reading.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[cfg(test)]
mod tests {
    use super::*;

    fn store_of(
        files: &[(&str, &str)],
    ) -> (tempfile::TempDir, Result<CredentialStore, CredentialsError>) {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        for (name, text) in files {
            let path = match *name {
                "REGISTRY_AUTH_FILE" => dir.path().join("registry-auth.json"),
                "XDG_RUNTIME_DIR" => dir.path().join("run/containers/auth.json"),
                _ => dir.path().join("home/.docker/config.json"),
            };
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        env.insert("REGISTRY_AUTH_FILE", dir.path().join("registry-auth.json"));
        env.insert("XDG_RUNTIME_DIR", dir.path().join("run"));
        env.insert("HOME", dir.path().join("home"));
        let store = CredentialStore::load_with_env(None, |name| {
            env.get(name).map(|path| path.clone().into_os_string())
        });
        (dir, store)
    }

    fn user_of(store: &CredentialStore, registry: &str) -> Option<(String, String)> {
        store
            .get(registry)
            .map(|c| (c.username.clone(), c.password.clone()))
    }

    #[test]
    fn auth_values_decode_with_or_without_padding() {
        for auth in ["dXNlcjpwYXNz", "dXNlcjpwYTpzcw==", "dXNlcjpwYTpzcw"] {
            let credentials = decode_auth(auth).unwrap();
            assert_eq!(credentials.username, "user");
        }
        assert!(decode_auth("not base64!").is_none());
    }

    #[test]
    fn reads_auth_and_username_password_and_docker_io_aliases() {
        let (_dir, store) = store_of(&[(
            "HOME",
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "127.0.0.1:5000": {"username": "alice", "password": "pw:with:colons"},
                "http://10.0.0.1:5000/v2/": {"auth": "Ym9iOmI="},
                "helper.example": {}
             },
             "credsStore": "desktop"}"#,
        )]);
        let store = store.unwrap();
        let hub = Some(("hub".to_owned(), "secret".to_owned()));
        for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(user_of(&store, name), hub, "{name}");
        }
        assert_eq!(
            user_of(&store, "127.0.0.1:5000"),
            Some(("alice".into(), "pw:with:colons".into()))
        );
        assert_eq!(
            user_of(&store, "10.0.0.1:5000"),
            Some(("bob".into(), "b".into()))
        );
        assert_eq!(user_of(&store, "helper.example"), None);
        assert_eq!(user_of(&store, "127.0.0.1:5001"), None);
        assert_eq!(store.looked_in().len(), 3);
    }

    #[test]
    fn earlier_files_win_and_missing_files_are_skipped() {
        let (_dir, store) = store_of(&[
            (
                "REGISTRY_AUTH_FILE",
                r#"{"auths": {"a": {"auth": "Zmlyc3Q6MQ=="}}}"#,
            ),
            (
                "HOME",
                r#"{"auths": {"a": {"auth": "bGFzdDoy"}, "b": {"auth": "bGFzdDoy"}}}"#,
            ),
        ]);
        let store = store.unwrap();
        assert_eq!(user_of(&store, "a"), Some(("first".into(), "1".into())));
        assert_eq!(user_of(&store, "b"), Some(("last".into(), "2".into())));
    }

    #[test]
    fn the_configured_file_is_the_only_one_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        let error = CredentialStore::load_with_env(Some(&path), |_| None).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot read credentials file {}", path.display())),
            "{error}"
        );
        std::fs::write(&path, r#"{"auths": {"x": {"auth": "eDp5"}}}"#).unwrap();
        let store = CredentialStore::load_with_env(Some(&path), |_| {
            panic!("the environment is not consulted when a file is configured")
        })
        .unwrap();
        assert_eq!(user_of(&store, "x"), Some(("x".into(), "y".into())));
        assert_eq!(store.looked_in(), [path]);
    }

    #[test]
    fn malformed_files_are_named() {
        let cases = [
            (
                "{not json",
                "malformed credentials file {}: key must be a string",
            ),
            (
                r#"{"auths": []}"#,
                "malformed credentials file {}: invalid type",
            ),
            (
                r#"{"auths": {"reg:5000": {"auth": "bm9jb2xvbg=="}}}"#,
                r#"malformed credentials file {}: "auth" of "reg:5000" is not base64 of user:password"#,
            ),
            (
                r#"{"auths": {"reg": {"auth": "%%%"}}}"#,
                r#"malformed credentials file {}: "auth" of "reg" is not base64 of user:password"#,
            ),
        ];
        for (text, message) in cases {
            let (dir, store) = store_of(&[("XDG_RUNTIME_DIR", text)]);
            let path = dir.path().join("run/containers/auth.json");
            let message = message.replace("{}", &path.display().to_string());
            let error = store.unwrap_err().to_string();
            assert!(
                error.starts_with(&message),
                "{error} does not start with {message}"
            );
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let credentials = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
