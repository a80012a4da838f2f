//! How to reach etcd: endpoints, TLS files, credentials, the request timeout and the key
//! prefix, and their translation into etcd-client's connect options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, Channel, ConnectOptions, Identity, TlsOptions};
use tonic::transport::Endpoint;

use super::error::{RegistryError, Result};

/// The registry's configuration (`etcd_*` keys of the agent's configuration file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// `http://host:port` or `https://host:port`, one per etcd member.
    pub endpoints: Vec<String>,
    /// TLS files; `None` for plain HTTP.
    pub tls: Option<TlsFiles>,
    /// etcd user name and password; `None` when etcd's auth is off.
    pub credentials: Option<Credentials>,
    /// How long one try of one request may take before the next endpoint is tried.
    pub request_timeout: Duration,
    /// The key prefix (normalized to end in `/`).
    pub key_prefix: String,
}

impl Default for RegistryConfig {
    /// `http://127.0.0.1:2379`, no TLS, no credentials, 5 s per try, `/flotilla/`.
    fn default() -> Self {
        RegistryConfig {
            endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            tls: None,
            credentials: None,
            request_timeout: Duration::from_secs(5),
            key_prefix: "/flotilla/".to_owned(),
        }
    }
}

/// PEM files for TLS (`etcd_cafile`, `etcd_certfile`, `etcd_keyfile`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the members' certificates; `None` for the system roots.
    pub ca: Option<PathBuf>,
    /// The client certificate, for etcd's `--client-cert-auth`.
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    pub key: Option<PathBuf>,
}

/// etcd's user name and password (`etcd_username`, `etcd_password`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl RegistryConfig {
    /// A lazily connected channel to one endpoint, with the per-try timeout, HTTP/2 keep-alive
    /// (so a frozen member is noticed on an idle watch) and TLS for `https://`. A plain channel
    /// per endpoint, not etcd-client's balanced one: that one holds a request while its member
    /// is down, this one fails it at once (connection refused), so the registry moves on.
    pub(crate) fn channel(&self, endpoint: &str) -> Result<Channel> {
        let invalid = |reason: String| RegistryError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            reason,
        };
        let mut channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|error| invalid(error.to_string()))?
            .timeout(self.request_timeout)
            .connect_timeout(self.request_timeout)
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(3))
            .keep_alive_while_idle(true);
        match (endpoint.starts_with("https://"), &self.tls) {
            (true, tls) => {
                let tls = match tls {
                    Some(files) => files.load()?,
                    None => TlsOptions::new(),
                };
                channel = channel
                    .tls_config(tls)
                    .map_err(|error| invalid(error.to_string()))?;
            }
            (false, Some(_)) => {
                return Err(invalid(
                    "TLS files are configured but the endpoint is not https://".to_owned(),
                ))
            }
            (false, None) => {}
        }
        Ok(Channel::Tonic(channel.connect_lazy()))
    }

    /// etcd-client's options: `require_leader` (a member cut off from the quorum answers "no
    /// leader" at once instead of holding requests and watches) and credentials (with token
    /// refresh).
    pub(crate) fn connect_options(&self) -> ConnectOptions {
        let options = ConnectOptions::new().with_require_leader(true);
        match &self.credentials {
            Some(credentials) => options
                .with_user(&credentials.user, &credentials.password)
                .with_auto_token_refresh(true),
            None => options,
        }
    }
}

impl TlsFiles {
    /// Reads the files into tonic's TLS configuration.
    fn load(&self) -> Result<TlsOptions> {
        let mut tls = TlsOptions::new();
        if let Some(ca) = &self.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (Some(_), None) => {
                return Err(RegistryError::TlsPair {
                    given: "certificate",
                })
            }
            (None, Some(_)) => return Err(RegistryError::TlsPair { given: "key" }),
            (None, None) => {}
        }
        Ok(tls)
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| RegistryError::TlsFile {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_key_without_its_certificate_is_refused() {
        let files = TlsFiles {
            ca: None,
            cert: None,
            key: Some("/nonexistent/key.pem".into()),
        };
        assert_eq!(
            files.load().unwrap_err().to_string(),
            "etcd TLS needs both a client certificate and its key (got only the key)"
        );
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let files = TlsFiles {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let message = files.load().unwrap_err().to_string();
        assert!(
            message.starts_with("read etcd TLS file /nonexistent/ca.pem: "),
            "{message}"
        );
    }

    #[tokio::test]
    async fn tls_files_need_https_endpoints() {
        let config = RegistryConfig {
            tls: Some(TlsFiles::default()),
            ..RegistryConfig::default()
        };
        let error = config.channel("http://127.0.0.1:2379").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid etcd endpoint http://127.0.0.1:2379: TLS files are configured but the \
             endpoint is not https://"
        );
        assert!(config.channel("not a url").is_err());
    }

    #[test]
    fn credentials_never_print_the_password() {
        let credentials = Credentials {
            user: "root".into(),
            password: "secret".into(),
        };
        assert!(!format!("{credentials:?}").contains("secret"));
    }
}
