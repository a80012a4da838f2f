//! [`RegistryError`]: everything that can go wrong talking to a registry, each naming the registry,
//! repository, digest or URL concerned.

use std::path::PathBuf;

use super::challenge::ChallengeError;
use super::credentials::CredentialsError;
use super::endpoint::EndpointError;
use crate::digest::Digest;

/// Why a manifest or blob could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The configuration's mirrors or insecure registries cannot be used.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// A credentials file could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The HTTP client could not be built (TLS backend).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The request did not get an answer: connection refused, TLS failure, timeout, broken body.
    #[error("request to {url} failed: {source}")]
    Request {
        /// The URL requested.
        url: String,
        /// The underlying error, with its causes in the chain.
        source: reqwest::Error,
    },
    /// The answer's body broke off or could not be read.
    #[error("reading the answer of {url} failed: {source}")]
    Body {
        /// The URL requested.
        url: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The registry answered with a status the client has no use for.
    #[error("{url} answered {status}{}", body_suffix(.body))]
    Status {
        /// The URL requested.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
        /// The start of the body (registries explain errors there).
        body: String,
    },
    /// 404: the manifest or blob does not exist there.
    #[error("{what} not found in registry {registry} ({url})")]
    NotFound {
        /// `manifest docker.io/library/x:tag` or `blob sha256:… of repository r`.
        what: String,
        /// The registry's name.
        registry: String,
        /// The URL requested.
        url: String,
    },
    /// A registry asks for credentials (Basic, or for its token server) and none are configured.
    #[error(
        "registry {registry} asks for credentials and none are configured (looked in {})",
        looked_in_list(.looked_in)
    )]
    NoCredentials {
        /// The registry's host as reached.
        registry: String,
        /// The credentials files looked in.
        looked_in: Vec<PathBuf>,
    },
    /// The registry or its token server still said 401 with our credentials.
    #[error("registry {registry} rejected the credentials for user {user}")]
    CredentialsRejected {
        /// The registry's host as reached.
        registry: String,
        /// The user name sent.
        user: String,
    },
    /// Still 401 after authenticating as asked (a token without the needed access).
    #[error("registry {registry} refused access to repository {repository} ({url})")]
    Unauthorized {
        /// The registry's host as reached.
        registry: String,
        /// The repository.
        repository: String,
        /// The URL requested.
        url: String,
    },
    /// A 401 whose challenge cannot be met.
    #[error("registry {registry}: {source}")]
    Challenge {
        /// The registry's host as reached.
        registry: String,
        /// What is wrong with the challenge.
        source: ChallengeError,
    },
    /// The token server's answer holds no token.
    #[error("token server {realm} answered without a token: {reason}")]
    Token {
        /// The token server's URL.
        realm: String,
        /// What was wrong.
        reason: String,
    },
    /// A token or credentials that cannot be sent in a header.
    #[error("the {what} holds characters not allowed in an HTTP header")]
    HeaderValue {
        /// `credentials of HOST`, or `token from URL`.
        what: String,
    },
    /// A manifest larger than the client accepts.
    #[error("manifest {reference} from {url} is larger than the {limit} bytes allowed{}", size_suffix(*.size))]
    ManifestTooBig {
        /// The reference fetched.
        reference: String,
        /// The URL requested.
        url: String,
        /// The limit.
        limit: u64,
        /// The announced size, when there was one.
        size: Option<u64>,
    },
    /// A manifest asked for by a digest that cannot be verified (an unknown algorithm).
    #[error("cannot fetch manifest {reference}: {source}")]
    Digest {
        /// The reference fetched.
        reference: String,
        /// Why the digest cannot be verified.
        source: crate::digest::DigestError,
    },
    /// A manifest fetched by digest whose bytes have another digest.
    #[error("manifest {reference} from {url} has digest {actual}, not the {expected} asked for")]
    ManifestDigest {
        /// The reference fetched.
        reference: String,
        /// The URL requested.
        url: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
    /// A Docker schema 1 manifest, which has no content-addressed config and is not supported.
    #[error("manifest {reference} is Docker schema 1, which is deprecated and not supported; push the image again with a current docker or skopeo")]
    Schema1 {
        /// The reference fetched.
        reference: String,
    },
    /// A manifest that is neither a known media type nor JSON with a `mediaType`.
    #[error("manifest {reference} from {url} has no usable media type ({reason})")]
    MediaType {
        /// The reference fetched.
        reference: String,
        /// The URL requested.
        url: String,
        /// What was found.
        reason: String,
    },
    /// A blob stream that went on past the size the manifest gives.
    #[error("blob {digest} of {repository} is longer than the {size} bytes its descriptor gives")]
    BlobTooLong {
        /// The blob.
        digest: Digest,
        /// The repository.
        repository: String,
        /// The size from the descriptor.
        size: u64,
    },
    /// A blob stream that kept breaking off before its end, every retry spent.
    #[error("blob {digest} of {repository} truncated: got {received} of {size} bytes after {attempts} attempts: {last_error}")]
    Truncated {
        /// The blob.
        digest: Digest,
        /// The repository.
        repository: String,
        /// Bytes received.
        received: u64,
        /// Bytes expected.
        size: u64,
        /// Attempts made.
        attempts: u32,
        /// Why the last attempt ended.
        last_error: String,
    },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

fn size_suffix(size: Option<u64>) -> String {
    size.map(|size| format!(" (announced {size} bytes)"))
        .unwrap_or_default()
}

fn looked_in_list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "no credentials file: set REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR or HOME".to_owned();
    }
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl RegistryError {
    /// Whether trying again later may help: no answer, 5xx, 429.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            RegistryError::Request { .. } | RegistryError::Body { .. } => true,
            RegistryError::Status { status, .. } => {
                status.is_server_error() || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }

    /// Whether the failure is one of connecting (refused, unreachable, TLS handshake).
    pub(crate) fn is_connect(&self) -> bool {
        matches!(self, RegistryError::Request { source, .. } if source.is_connect())
    }
}
