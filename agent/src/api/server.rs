//! The API server: fleet's v1 routes on the agent's unix socket (owner root, mode 0660) and,
//! when configured, on TCP with mutual TLS. Until this machine has joined the cluster, every
//! request is answered 503, as fleet did.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::client::Client;
use super::types::{ErrorBody, ErrorDetail, API_ROOT};
use super::{remote, resources};
use crate::registry::{Registry, RegistryError};

/// What every handler needs.
#[derive(Debug, Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Set once the machine has registered: until then every request is 503.
    registry: RwLock<Option<Registry>>,
    /// This machine's ID.
    machine_id: String,
    /// A client for other machines' TCP APIs (mutual TLS), when this machine has certificates.
    peers: Option<Client>,
}

impl ApiState {
    /// The state of an agent that has not joined the cluster yet.
    pub fn new(machine_id: String, peers: Option<Client>) -> ApiState {
        ApiState {
            inner: Arc::new(Inner {
                registry: RwLock::new(None),
                machine_id,
                peers,
            }),
        }
    }

    /// Opens the API for business, once the machine has joined the first time.
    pub fn open(&self, registry: Registry) {
        *self.inner.registry.write().expect("registry lock") = Some(registry);
    }

    /// The registry, or the 503 fleet answered before the machine registered.
    pub fn registry(&self) -> Result<Registry, ApiError> {
        self.inner
            .registry
            .read()
            .expect("registry lock")
            .clone()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "flotilla agent unable to communicate with etcd: this machine has not joined the cluster",
                )
            })
    }

    /// This machine's ID.
    pub fn machine_id(&self) -> &str {
        &self.inner.machine_id
    }

    /// The client for other machines' APIs.
    pub fn peers(&self) -> Option<&Client> {
        self.inner.peers.as_ref()
    }
}

/// An error answer: its status and message, sent as `{"error":{"code":N,"message":"..."}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// What the answer says.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An answer with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> ApiError {
        let status = match &error {
            RegistryError::UnitNotFound { .. } => StatusCode::NOT_FOUND,
            RegistryError::UnitExists { .. } => StatusCode::CONFLICT,
            RegistryError::InvalidName { .. } => StatusCode::BAD_REQUEST,
            RegistryError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, "api: {}", self.message);
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.status.as_u16(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

async fn server_header(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::SERVER,
        HeaderValue::from_static(concat!("flotillad/", env!("CARGO_PKG_VERSION"))),
    );
    response
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such resource")
}

/// Every route, fleet's v1 paths first.
pub fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/units", get(resources::list_units))
        .route(
            "/units/{name}",
            get(resources::get_unit)
                .put(resources::put_unit)
                .delete(resources::delete_unit),
        )
        .route("/units/{name}/status", get(remote::status))
        .route("/units/{name}/journal", get(remote::journal))
        .route("/state", get(resources::list_states))
        .route(
            "/machines",
            get(resources::list_machines).patch(resources::patch_machines),
        );
    Router::new()
        .nest(API_ROOT, v1)
        .fallback(not_found)
        .layer(middleware::from_fn(server_header))
        .with_state(state)
}

/// Why a listener could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The unix socket.
    #[error("cannot listen on {}: {source}", path.display())]
    Unix {
        /// The socket's path.
        path: std::path::PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The TCP address.
    #[error("cannot listen on {address}: {source}")]
    Tcp {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// Binds the unix socket at `path` (replacing a stale one), owner root, mode 0660.
pub fn bind_unix(path: &Path) -> Result<UnixListener, ListenError> {
    let error = |source| ListenError::Unix {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e)),
    }
    let listener = UnixListener::bind(path).map_err(error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(error)?;
    Ok(listener)
}

/// A TCP listener whose connections have completed a mutual-TLS handshake.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("tcp", &self.tcp)
            .finish_non_exhaustive()
    }
}

/// How long a client gets to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

impl TlsListener {
    /// Binds `address`; clients must present a certificate `config` accepts.
    pub async fn bind(
        address: std::net::SocketAddr,
        config: Arc<ServerConfig>,
    ) -> Result<TlsListener, ListenError> {
        let tcp = TcpListener::bind(address)
            .await
            .map_err(|source| ListenError::Tcp { address, source })?;
        Ok(TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(config),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("api: accept on {:?}: {e}", self.tcp.local_addr());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(tls)) => return (tls, peer),
                Ok(Err(e)) => tracing::info!("api: TLS handshake with {peer} failed: {e}"),
                Err(_) => tracing::info!("api: TLS handshake with {peer} timed out"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
