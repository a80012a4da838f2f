//! The API's HTTP/1.1 client, over the agent's unix socket or over TCP with mutual TLS: used by
//! `flotctl` and by agents that ask another machine's agent for a unit's journal or status.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use super::tls::{TlsError, TlsFiles};
use super::types::ErrorBody;

/// Where an agent's API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The unix socket of the agent on this machine: `unix:///run/flotilla/flotilla.sock` or a path.
    Unix(PathBuf),
    /// An agent's TCP API: `https://10.0.0.5:8479`.
    Https {
        /// Host name or address, as the server's certificate names it.
        host: String,
        /// The port.
        port: u16,
    },
}

/// The agent's TCP API port unless an endpoint says otherwise.
pub const DEFAULT_API_PORT: u16 = 8479;

impl FromStr for Endpoint {
    type Err = ClientError;

    fn from_str(text: &str) -> Result<Endpoint, ClientError> {
        let invalid = |why: &str| ClientError::Endpoint {
            endpoint: text.to_owned(),
            why: why.to_owned(),
        };
        if let Some(path) = text.strip_prefix("unix://").or(text.strip_prefix("unix:")) {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if text.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(text)));
        }
        if text.starts_with("http://") {
            return Err(invalid(
                "the TCP API is served only with mutual TLS: use https:// with --ca-file, \
                 --cert-file and --key-file",
            ));
        }
        let Some(rest) = text.strip_prefix("https://") else {
            return Err(invalid(
                "expected unix:///path/to/socket or https://host:port",
            ));
        };
        let authority = rest.trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (
                host,
                port.parse()
                    .map_err(|_| invalid(&format!("invalid port {port:?}")))?,
            ),
            _ => (authority, DEFAULT_API_PORT),
        };
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        Ok(Endpoint::Https {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Https { host, port } if host.contains(':') => {
                write!(f, "https://[{host}]:{port}")
            }
            Endpoint::Https { host, port } => write!(f, "https://{host}:{port}"),
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not one we can use.
    #[error("invalid endpoint {endpoint:?}: {why}")]
    Endpoint {
        /// As given.
        endpoint: String,
        /// Why not.
        why: String,
    },
    /// The certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The agent could not be reached.
    #[error("cannot reach the agent at {endpoint}: {source}{hint}")]
    Connect {
        /// Where.
        endpoint: Endpoint,
        /// Why.
        source: std::io::Error,
        /// What to check.
        hint: &'static str,
    },
    /// The agent did not answer in time.
    #[error("the agent at {endpoint} did not answer within {}", humantime::format_duration(*after))]
    Timeout {
        /// Where.
        endpoint: Endpoint,
        /// The request timeout.
        after: Duration,
    },
    /// The HTTP exchange broke.
    #[error("talking to the agent at {endpoint}: {source}")]
    Http {
        /// Where.
        endpoint: Endpoint,
        /// Why.
        source: hyper::Error,
    },
    /// The agent answered with an error.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The agent's message.
        message: String,
    },
    /// The answer was not the JSON we expected.
    #[error("unexpected answer to {path} from the agent at {endpoint}: {source}")]
    Decode {
        /// Where.
        endpoint: Endpoint,
        /// The request path.
        path: String,
        /// What serde said.
        source: serde_json::Error,
    },
}

impl ClientError {
    /// The HTTP status of an API error, if that is what this is.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A client of one agent's API.
#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of `endpoint`; an https endpoint needs `tls`. `timeout` bounds each request
    /// (connecting and reading the whole answer), except the body of [`Client::stream`].
    pub fn new(
        endpoint: Endpoint,
        tls: Option<&TlsFiles>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let tls = match (&endpoint, tls) {
            (Endpoint::Https { .. }, None) => {
                return Err(ClientError::Endpoint {
                    endpoint: endpoint.to_string(),
                    why: "an https endpoint needs --ca-file, --cert-file and --key-file".into(),
                })
            }
            (Endpoint::Https { .. }, Some(files)) => Some(files.client_config()?),
            (Endpoint::Unix(_), _) => None,
        };
        Ok(Client {
            endpoint,
            tls,
            timeout,
        })
    }

    /// The client's endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The same client, pointed at another agent (for requests forwarded between machines).
    pub fn with_endpoint(&self, endpoint: Endpoint) -> Client {
        Client {
            endpoint,
            ..self.clone()
        }
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, ClientError> {
        let connect_error = |source, hint| ClientError::Connect {
            endpoint: self.endpoint.clone(),
            source,
            hint,
        };
        match (&self.endpoint, &self.tls) {
            (Endpoint::Unix(path), _) => UnixStream::connect(path)
                .await
                .map(|stream| Box::new(stream) as Box<dyn Stream>)
                .map_err(|e| connect_error(e, " (is flotilla.service running on this machine?)")),
            (Endpoint::Https { host, port }, Some(tls)) => {
                let tcp = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| connect_error(e, ""))?;
                let name =
                    ServerName::try_from(host.clone()).map_err(|_| ClientError::Endpoint {
                        endpoint: self.endpoint.to_string(),
                        why: "not a valid host name or address".into(),
                    })?;
                let stream = TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| connect_error(e, ""))?;
                Ok(Box::new(stream))
            }
            (Endpoint::Https { .. }, None) => unreachable!("Client::new requires TLS for https"),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let http_error = |source| ClientError::Http {
            endpoint: self.endpoint.clone(),
            source,
        };
        let io = TokioIo::new(self.connect().await?);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(http_error)?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "flotilla");
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("a request built from a valid method and path");
        let response = sender.send_request(request).await.map_err(http_error)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(http_error)?
            .to_bytes();
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|body| body.error.message)
            .unwrap_or_else(|_| format!("the agent answered {status}"));
        Err(ClientError::Api { status, message })
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let work = async {
            let response = self.send(method, path, body).await?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|source| ClientError::Http {
                    endpoint: self.endpoint.clone(),
                    source,
                })?
                .to_bytes();
            Ok((status, bytes))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| ClientError::Timeout {
                endpoint: self.endpoint.clone(),
                after: self.timeout,
            })?
    }

    /// `GET path`, decoded from JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let (_, bytes) = self.exchange(Method::GET, path, None).await?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            endpoint: self.endpoint.clone(),
            path: path.to_owned(),
            source,
        })
    }

    /// `GET path`, the body as text (for `status`).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let (_, bytes) = self.exchange(Method::GET, path, None).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `method path` with a JSON body; the answer's status.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<StatusCode, ClientError> {
        let body = serde_json::to_vec(body).expect("API bodies serialize");
        Ok(self.exchange(method, path, Some(body)).await?.0)
    }

    /// `DELETE path`; the answer's status.
    pub async fn delete(&self, path: &str) -> Result<StatusCode, ClientError> {
        Ok(self.exchange(Method::DELETE, path, None).await?.0)
    }

    /// `GET path` whose body is read as it comes (a followed journal); only connecting and the
    /// headers are bounded by the timeout.
    pub async fn stream(&self, path: &str) -> Result<Incoming, ClientError> {
        tokio::time::timeout(self.timeout, self.send(Method::GET, path, None))
            .await
            .map_err(|_| ClientError::Timeout {
                endpoint: self.endpoint.clone(),
                after: self.timeout,
            })?
            .map(Response::into_body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_fleetctl_wrote_them() {
        assert_eq!(
            "unix:///run/flotilla/flotilla.sock"
                .parse::<Endpoint>()
                .unwrap(),
            Endpoint::Unix("/run/flotilla/flotilla.sock".into())
        );
        assert_eq!(
            "/tmp/x.sock".parse::<Endpoint>().unwrap(),
            Endpoint::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            "https://10.0.0.5:9000".parse::<Endpoint>().unwrap(),
            Endpoint::Https {
                host: "10.0.0.5".into(),
                port: 9000
            }
        );
        let default_port = "https://node1/".parse::<Endpoint>().unwrap();
        assert_eq!(default_port.to_string(), "https://node1:8479");
        assert_eq!(
            "https://[::1]:9000"
                .parse::<Endpoint>()
                .unwrap()
                .to_string(),
            "https://[::1]:9000"
        );
        let err = "http://10.0.0.5:8479".parse::<Endpoint>().unwrap_err();
        assert!(err.to_string().contains("only with mutual TLS"), "{err}");
        assert!("ftp://x".parse::<Endpoint>().is_err());
    }

    #[tokio::test]
    async fn an_absent_socket_says_what_to_check() {
        let client = Client::new(
            Endpoint::Unix("/nonexistent/flotilla.sock".into()),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        let err = client.get::<serde_json::Value>("/fleet/v1/units").await;
        let err = err.unwrap_err().to_string();
        assert!(
            err.starts_with("cannot reach the agent at unix:///nonexistent/flotilla.sock: "),
            "{err}"
        );
        assert!(err.contains("is flotilla.service running"), "{err}");
    }
}
