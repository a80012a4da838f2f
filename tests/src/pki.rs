//! A throwaway certificate authority for a test cluster: one CA, and per machine a key and a
//! certificate naming its address, for the agents' mutual-TLS API. Made with `openssl`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::registry::{run, FixtureError};

/// The files of one machine (or client): the CA's certificate, its own certificate and key.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The CA's certificate (PEM).
    pub ca: PathBuf,
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

/// A CA whose key stays in `dir`.
#[derive(Debug)]
pub struct Authority {
    dir: PathBuf,
}

fn path_text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

impl Authority {
    /// Creates a CA in `dir` (which must exist).
    ///
    /// # Errors
    /// The failing `openssl` command.
    pub fn create(dir: &Path) -> Result<Authority, FixtureError> {
        let key = dir.join("ca-key.pem");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=flotilla test CA"])
            .args(["-keyout", path_text(&key), "-out"])
            .arg(dir.join("ca.pem")))?;
        Ok(Authority {
            dir: dir.to_owned(),
        })
    }

    /// The CA made earlier in `dir` by [`Authority::create`].
    ///
    /// # Errors
    /// [`FixtureError::Io`] when `dir` holds no CA.
    pub fn open(dir: &Path) -> Result<Authority, FixtureError> {
        let ca = dir.join("ca.pem");
        std::fs::metadata(&ca).map_err(|source| FixtureError::Io {
            what: "find the CA certificate",
            target: ca.display().to_string(),
            source,
        })?;
        Ok(Authority {
            dir: dir.to_owned(),
        })
    }

    /// A key and a certificate for `name`, valid for `address` (and `localhost`), for both
    /// server and client use.
    ///
    /// # Errors
    /// The failing `openssl` command.
    pub fn issue(&self, name: &str, address: Ipv4Addr) -> Result<Identity, FixtureError> {
        let key = self.dir.join(format!("{name}-key.pem"));
        let csr = self.dir.join(format!("{name}.csr"));
        let cert = self.dir.join(format!("{name}.pem"));
        let extensions = self.dir.join(format!("{name}.ext"));
        std::fs::write(
            &extensions,
            format!(
                "subjectAltName=IP:{address},DNS:localhost,DNS:{name}\n\
                 extendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .map_err(|source| FixtureError::Io {
            what: "write",
            target: extensions.display().to_string(),
            source,
        })?;
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args([
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                path_text(&key),
                "-out",
            ])
            .arg(&csr))?;
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in", path_text(&csr)])
            .args(["-CA", path_text(&self.dir.join("ca.pem"))])
            .args([
                "-CAkey",
                path_text(&self.dir.join("ca-key.pem")),
                "-CAcreateserial",
            ])
            .args(["-extfile", path_text(&extensions), "-out"])
            .arg(&cert))?;
        Ok(Identity {
            ca: self.dir.join("ca.pem"),
            cert,
            key,
        })
    }
}
