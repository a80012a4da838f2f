//! Mutual TLS for the TCP API: every machine and every remote `flotctl` holds a certificate signed
//! by the cluster's CA; servers demand a client certificate and clients verify the server's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The three files of one side of mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the peer's certificate.
    pub ca: PathBuf,
    /// Our certificate (chain).
    pub cert: PathBuf,
    /// Our private key.
    pub key: PathBuf,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{what} {}: {message}", path.display())]
    File {
        /// What the file should hold: `CA certificate`, `certificate`, `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the material.
    #[error("tls: {0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
    /// The client verifier could not be built from the CA.
    #[error("tls: client verifier: {0}")]
    Verifier(#[from] tokio_rustls::rustls::server::VerifierBuilderError),
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |message: String| TlsError::File {
        what,
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certs.is_empty() {
        return Err(error("no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        what: "private key",
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("CA certificate", path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

impl TlsFiles {
    /// A server that accepts only clients with a certificate signed by the CA.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots(&self.ca)?),
            provider.clone(),
        )
        .build()?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                certificates("certificate", &self.cert)?,
                private_key(&self.key)?,
            )?;
        Ok(Arc::new(config))
    }

    /// A client that presents our certificate and trusts only servers signed by the CA.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots(&self.ca)?)
            .with_client_auth_cert(
                certificates("certificate", &self.cert)?,
                private_key(&self.key)?,
            )?;
        Ok(Arc::new(config))
    }
}
