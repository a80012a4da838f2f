//! [`Client`]: manifests and blobs from a registry, with authentication, endpoint fallback, retries
//! and resumable blob streams.
//!
//! Every request goes through the endpoints of [`endpoint`](super::endpoint) in order; a 401 is
//! answered once per (endpoint, repository) by the challenge's scheme and the `Authorization` value
//! that worked is cached for the next requests. Transient failures (no answer, 5xx, 429) are retried
//! on the [`backoff`](super::backoff) schedule; a 404 is not.
//!
//! Redirects (a blob served from a CDN) are followed by reqwest, which drops `Authorization` when a
//! redirect leaves the host or port it was sent to, so a token never reaches a third party.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use reqwest::blocking::Response;
use reqwest::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE, RANGE, WWW_AUTHENTICATE,
};
use reqwest::StatusCode;

use super::challenge::Challenge;
use super::credentials::CredentialStore;
use super::endpoint::{self, Endpoint, Fallback};
use super::{backoff, RegistryConfig, RegistryError, Result};
use crate::digest::{Digest, Verifier};
use crate::media_types;
use crate::reference::Reference;

/// The largest manifest read: a real one is a few KiB, an index of many platforms some dozens.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The largest token-server answer read.
const MAX_TOKEN_BYTES: u64 = 1 << 20;

/// How much of an error body is quoted in messages.
const MAX_ERROR_BODY: u64 = 512;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// A registry client; cheap to share by reference across threads.
///
/// ```no_run
/// use std::io::Read;
/// use image::reference::Reference;
/// use image::registry::{Client, RegistryConfig};
///
/// let client = Client::new(&RegistryConfig::default()).unwrap();
/// let reference = Reference::parse("127.0.0.1:5000/app:v1").unwrap();
/// let manifest = client.manifest(&reference).unwrap();
/// let config: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
/// let digest = config["config"]["digest"].as_str().unwrap().parse().unwrap();
/// let size = config["config"]["size"].as_u64().unwrap();
/// let mut bytes = Vec::new();
/// client.blob(&reference, &digest, size).unwrap().read_to_end(&mut bytes).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::blocking::Client,
    config: RegistryConfig,
    credentials: CredentialStore,
    /// `Authorization` values that worked, by (endpoint URL, repository).
    authorizations: Mutex<HashMap<(String, String), HeaderValue>>,
    /// https endpoints of insecure registries known to speak plain http only.
    plain_http: Mutex<HashSet<String>>,
    retries: u32,
}

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The bytes, exactly as received (their digest is the manifest's digest).
    pub bytes: Vec<u8>,
    /// From `Content-Type`, else from the JSON's `mediaType`; without parameters.
    pub media_type: String,
    /// The digest of [`Self::bytes`].
    pub digest: Digest,
}

impl Client {
    /// A client for `config`; reads the credentials files once, here.
    ///
    /// # Errors
    /// A mirror or insecure-registry entry that cannot be used, or an unreadable credentials file.
    pub fn new(config: &RegistryConfig) -> Result<Client> {
        endpoint::check(config)?;
        let credentials = CredentialStore::load(config.auth_file.as_deref())?;
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("flotilla/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // The blocking client applies this to each step (answer headers, every read of the
            // body), not to the whole transfer: an idle timeout, so big blobs are not cut off.
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(RegistryError::HttpClient)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config: config.clone(),
                credentials,
                authorizations: Mutex::new(HashMap::new()),
                plain_http: Mutex::new(HashSet::new()),
                retries: config.retries(),
            }),
        })
    }

    /// How many blobs a pull should download at once.
    pub fn max_concurrent_downloads(&self) -> usize {
        self.inner.config.max_concurrent_downloads()
    }

    /// The manifest or index `reference` names: by its digest if it has one (verified), else by
    /// its tag (`latest` when it has neither).
    ///
    /// # Errors
    /// [`RegistryError::NotFound`], a manifest over [`MAX_MANIFEST_BYTES`], a digest mismatch,
    /// schema 1, authentication failures, and transient failures once the retries are spent.
    pub fn manifest(&self, reference: &Reference) -> Result<Manifest> {
        match reference.digest() {
            Some(digest) => self.manifest_by_digest(reference, digest),
            None => self.inner.retrying(|| {
                self.inner
                    .fetch_manifest(reference, reference.tag().unwrap_or("latest"), None)
            }),
        }
    }

    /// The manifest with `digest` in `reference`'s repository (a platform's manifest from an
    /// index); its bytes are verified against `digest`.
    ///
    /// # Errors
    /// As [`Self::manifest`].
    pub fn manifest_by_digest(&self, reference: &Reference, digest: &Digest) -> Result<Manifest> {
        self.inner.retrying(|| {
            self.inner
                .fetch_manifest(reference, &digest.to_string(), Some(digest))
        })
    }

    /// Opens the blob `digest` of `reference`'s repository, `size` bytes long (from its
    /// descriptor). The reader yields exactly `size` bytes, resuming with `Range` when the
    /// connection breaks; it does not verify the digest.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`], authentication failures, transient failures once the retries
    /// are spent.
    pub fn blob(&self, reference: &Reference, digest: &Digest, size: u64) -> Result<BlobReader> {
        let mut reader = BlobReader {
            inner: Arc::clone(&self.inner),
            reference: reference.clone(),
            digest: digest.clone(),
            size,
            position: 0,
            response: None,
            retries_used: 0,
        };
        reader.response = Some(self.inner.retrying(|| reader.open())?);
        Ok(reader)
    }
}

impl Inner {
    /// Runs `attempt` until it succeeds, fails for good, or the retries are spent.
    fn retrying<T>(&self, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut retry = 0;
        loop {
            match attempt() {
                Err(e) if e.is_transient() && retry < self.retries => {
                    std::thread::sleep(backoff::delay(retry));
                    retry += 1;
                }
                result => return result,
            }
        }
    }

    /// GET `/v2/<repository>/<path>` from the first endpoint of `reference`'s registry that
    /// answers; a non-success status is an error.
    fn get(
        &self,
        reference: &Reference,
        path: &str,
        headers: &[(reqwest::header::HeaderName, String)],
        what: &str,
    ) -> Result<Response> {
        let mut endpoints = endpoint::endpoints(reference.registry(), &self.config);
        // An https endpoint that could not be connected to while its plain-http fallback answered
        // is skipped from then on, as dockerd decides once instead of failing a handshake per blob.
        let plain_http = self.lock(&self.plain_http).clone();
        if endpoints.len() > 1 {
            endpoints.retain(|endpoint| {
                endpoint.fallback != Fallback::ConnectFailure || !plain_http.contains(&endpoint.url)
            });
        }
        let mut result = self.get_at(&endpoints[0], reference, path, headers, what);
        for (previous, endpoint) in endpoints.iter().zip(&endpoints[1..]) {
            match &result {
                Err(e) if previous.fallback == Fallback::Any || e.is_connect() => {
                    result = self.get_at(endpoint, reference, path, headers, what);
                    if result.is_ok() && previous.fallback == Fallback::ConnectFailure {
                        self.lock(&self.plain_http).insert(previous.url.clone());
                    }
                }
                _ => break,
            }
        }
        result
    }

    fn get_at(
        &self,
        endpoint: &Endpoint,
        reference: &Reference,
        path: &str,
        headers: &[(reqwest::header::HeaderName, String)],
        what: &str,
    ) -> Result<Response> {
        let repository = reference.repository();
        let url = format!("{}/v2/{repository}/{path}", endpoint.url);
        let key = (endpoint.url.clone(), repository.to_owned());
        let cached = self.lock(&self.authorizations).get(&key).cloned();
        let response = self.send(&url, headers, cached.as_ref())?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return check_status(response, &url, reference.registry(), what);
        }
        let host = host_of(&endpoint.url);
        let challenges: Vec<&str> = response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        // Prefer Bearer when a registry offers both.
        let bearer = challenges.iter().find(|header| {
            header
                .trim_start()
                .get(..6)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer"))
        });
        let challenge = match bearer.or(challenges.first()) {
            Some(header) => {
                Challenge::parse(header).map_err(|source| RegistryError::Challenge {
                    registry: host.to_owned(),
                    source,
                })?
            }
            None => return check_status(response, &url, reference.registry(), what),
        };
        let authorization = match &challenge {
            Challenge::Bearer { realm, service, .. } => {
                self.token(host, realm, service.as_deref(), repository)?
            }
            Challenge::Basic { .. } => self.basic(host)?,
        };
        let response = self.send(&url, headers, Some(&authorization))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(match (&challenge, self.credentials.get(host)) {
                (Challenge::Basic { .. }, Some(credentials)) => {
                    RegistryError::CredentialsRejected {
                        registry: host.to_owned(),
                        user: credentials.username.clone(),
                    }
                }
                _ => RegistryError::Unauthorized {
                    registry: host.to_owned(),
                    repository: repository.to_owned(),
                    url,
                },
            });
        }
        self.lock(&self.authorizations).insert(key, authorization);
        check_status(response, &url, reference.registry(), what)
    }

    fn lock<'a, T>(&self, mutex: &'a Mutex<T>) -> std::sync::MutexGuard<'a, T> {
        // The maps hold only finished insertions: a panic elsewhere cannot leave one half-written.
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(
        &self,
        url: &str,
        headers: &[(reqwest::header::HeaderName, String)],
        authorization: Option<&HeaderValue>,
    ) -> Result<Response> {
        let mut request = self.http.get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        request.send().map_err(|source| RegistryError::Request {
            url: url.to_owned(),
            source,
        })
    }

    /// `Authorization: Basic …` for `host`, from the credentials files.
    fn basic(&self, host: &str) -> Result<HeaderValue> {
        let credentials =
            self.credentials
                .get(host)
                .ok_or_else(|| RegistryError::NoCredentials {
                    registry: host.to_owned(),
                    looked_in: self.credentials.looked_in().to_vec(),
                })?;
        header_value(
            credentials.basic_header(),
            &format!("credentials of {host}"),
        )
    }

    /// A pull token for `repository` from the token server `realm`, as `Authorization: Bearer …`.
    fn token(
        &self,
        host: &str,
        realm: &str,
        service: Option<&str>,
        repository: &str,
    ) -> Result<HeaderValue> {
        let mut query = vec![("scope", format!("repository:{repository}:pull"))];
        if let Some(service) = service {
            query.push(("service", service.to_owned()));
        }
        let mut request = self.http.get(realm).query(&query);
        let credentials = self.credentials.get(host);
        if let Some(credentials) = credentials {
            request = request.basic_auth(&credentials.username, Some(&credentials.password));
        }
        let response = request.send().map_err(|source| RegistryError::Request {
            url: realm.to_owned(),
            source,
        })?;
        if matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Err(match credentials {
                Some(credentials) => RegistryError::CredentialsRejected {
                    registry: host.to_owned(),
                    user: credentials.username.clone(),
                },
                None => RegistryError::NoCredentials {
                    registry: host.to_owned(),
                    looked_in: self.credentials.looked_in().to_vec(),
                },
            });
        }
        let response = check_status(response, realm, host, "token")?;
        let mut body = Vec::new();
        response
            .take(MAX_TOKEN_BYTES)
            .read_to_end(&mut body)
            .map_err(|source| RegistryError::Body {
                url: realm.to_owned(),
                source,
            })?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Token {
                realm: realm.to_owned(),
                reason: e.to_string(),
            })?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| RegistryError::Token {
                realm: realm.to_owned(),
                reason: "neither \"token\" nor \"access_token\" is set".to_owned(),
            })?;
        header_value(format!("Bearer {token}"), &format!("token from {realm}"))
    }

    fn fetch_manifest(
        &self,
        reference: &Reference,
        target: &str,
        expected: Option<&Digest>,
    ) -> Result<Manifest> {
        let name = match expected {
            Some(digest) => format!("{}@{digest}", reference.name()),
            None => format!("{}:{target}", reference.name()),
        };
        // Checked before asking: a digest that cannot be verified is not worth a request.
        let verifier =
            expected
                .map(Verifier::new)
                .transpose()
                .map_err(|source| RegistryError::Digest {
                    reference: name.clone(),
                    source,
                })?;
        let response = self.get(
            reference,
            &format!("manifests/{target}"),
            &[(ACCEPT, MANIFEST_ACCEPT.to_owned())],
            &format!("manifest {name}"),
        )?;
        let url = response.url().to_string();
        let too_big = |size| RegistryError::ManifestTooBig {
            reference: name.clone(),
            url: url.clone(),
            limit: MAX_MANIFEST_BYTES,
            size,
        };
        if let Some(length) = response.content_length() {
            if length > MAX_MANIFEST_BYTES {
                return Err(too_big(Some(length)));
            }
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| media_types::essence(value).to_owned());
        let mut bytes = Vec::new();
        // Counted as read too: a chunked answer, or one that lies about its length, stops here.
        response
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| RegistryError::Body {
                url: url.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(too_big(None));
        }
        let digest = match (expected, verifier) {
            (Some(expected), Some(mut verifier)) => {
                verifier.update(&bytes);
                if verifier.finish().is_err() {
                    return Err(RegistryError::ManifestDigest {
                        reference: name,
                        url,
                        expected: expected.clone(),
                        actual: Digest::sha256_of(&bytes),
                    });
                }
                expected.clone()
            }
            _ => Digest::sha256_of(&bytes),
        };
        let media_type = media_type_of(&bytes, content_type.as_deref()).map_err(|reason| {
            RegistryError::MediaType {
                reference: name.clone(),
                url,
                reason,
            }
        })?;
        if media_types::is_schema1(&media_type) {
            return Err(RegistryError::Schema1 { reference: name });
        }
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }
}

/// The media type of a manifest: `Content-Type` when it names a manifest or index, else the JSON's
/// `mediaType`; schema 1 is recognised by either or by `schemaVersion: 1`.
fn media_type_of(bytes: &[u8], content_type: Option<&str>) -> std::result::Result<String, String> {
    if let Some(content_type) = content_type {
        if media_types::is_manifest(content_type)
            || media_types::is_index(content_type)
            || media_types::is_schema1(content_type)
        {
            return Ok(content_type.to_owned());
        }
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        schema_version: Option<u64>,
        media_type: Option<String>,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    match (head.schema_version, head.media_type) {
        (Some(1), _) => Ok(media_types::DOCKER_SCHEMA1.to_owned()),
        (_, Some(media_type))
            if media_types::is_manifest(&media_type) || media_types::is_index(&media_type) =>
        {
            Ok(media_type)
        }
        (_, media_type) => Err(format!(
            "Content-Type {:?}, mediaType {:?}",
            content_type.unwrap_or_default(),
            media_type.unwrap_or_default()
        )),
    }
}

fn header_value(value: String, what: &str) -> Result<HeaderValue> {
    HeaderValue::try_from(value).map_err(|_| RegistryError::HeaderValue {
        what: what.to_owned(),
    })
}

/// `https://host:port` → `host:port`.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or_default()
}

fn check_status(response: Response, url: &str, registry: &str, what: &str) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::NOT_FOUND {
        return Err(RegistryError::NotFound {
            what: what.to_owned(),
            registry: registry.to_owned(),
            url: url.to_owned(),
        });
    }
    let mut body = String::new();
    // The body only decorates the message; an unreadable one is left out.
    let _ = response.take(MAX_ERROR_BODY).read_to_string(&mut body);
    Err(RegistryError::Status {
        url: url.to_owned(),
        status,
        body: body.trim().to_owned(),
    })
}

/// A blob's bytes as they arrive: exactly the size its descriptor gives, resumed with `Range` when
/// the connection breaks. It does not verify the digest; the store does.
#[derive(Debug)]
pub struct BlobReader {
    inner: Arc<Inner>,
    reference: Reference,
    digest: Digest,
    size: u64,
    position: u64,
    response: Option<Response>,
    retries_used: u32,
}

impl BlobReader {
    /// GET the blob from [`Self::position`] on.
    fn open(&self) -> Result<Response> {
        let mut headers = Vec::new();
        if self.position > 0 {
            headers.push((RANGE, format!("bytes={}-", self.position)));
        }
        let what = format!("blob {} of {}", self.digest, self.reference.name());
        let path = format!("blobs/{}", self.digest);
        let mut response = self.inner.get(&self.reference, &path, &headers, &what)?;
        let url = response.url().to_string();
        if response.status() == StatusCode::PARTIAL_CONTENT {
            let start = format!("bytes {}-", self.position);
            let range = response.headers().get(CONTENT_RANGE);
            if !range
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with(&start))
            {
                return Err(RegistryError::Status {
                    url,
                    status: response.status(),
                    body: format!(
                        "Content-Range {range:?} does not start at byte {}",
                        self.position
                    ),
                });
            }
            return Ok(response);
        }
        if response
            .content_length()
            .is_some_and(|length| length > self.size)
        {
            return Err(self.too_long());
        }
        if self.position > 0 {
            // The registry ignored the range and sent the blob from its start.
            let skipped = io::copy(&mut (&mut response).take(self.position), &mut io::sink())
                .map_err(|source| RegistryError::Body {
                    url: url.clone(),
                    source,
                })?;
            if skipped < self.position {
                return Err(RegistryError::Body {
                    url,
                    source: io::ErrorKind::UnexpectedEof.into(),
                });
            }
        }
        Ok(response)
    }

    fn too_long(&self) -> RegistryError {
        RegistryError::BlobTooLong {
            digest: self.digest.clone(),
            repository: self.reference.name(),
            size: self.size,
        }
    }

    /// Counts a failed attempt and waits before the next, or fails for good when none is left.
    fn retry_after(&mut self, failure: String) -> io::Result<()> {
        if self.retries_used >= self.inner.retries {
            return Err(io::Error::other(RegistryError::Truncated {
                digest: self.digest.clone(),
                repository: self.reference.name(),
                received: self.position,
                size: self.size,
                attempts: self.retries_used + 1,
                last_error: failure,
            }));
        }
        std::thread::sleep(backoff::delay(self.retries_used));
        self.retries_used += 1;
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let response = match self.response.as_mut() {
                Some(response) => response,
                None => {
                    match self.open() {
                        Ok(response) => self.response = Some(response),
                        Err(e) if e.is_transient() => self.retry_after(e.to_string())?,
                        Err(e) => return Err(io::Error::other(e)),
                    }
                    continue;
                }
            };
            let failure = match response.read(buf) {
                Ok(0) if self.position == self.size => return Ok(0),
                Ok(n) if self.position + n as u64 > self.size => {
                    return Err(io::Error::other(self.too_long()))
                }
                Ok(0) => "the connection closed early".to_owned(),
                Ok(n) => {
                    self.position += n as u64;
                    return Ok(n);
                }
                // Every byte arrived; how the connection ended no longer matters.
                Err(_) if self.position == self.size => return Ok(0),
                Err(e) => e.to_string(),
            };
            self.response = None;
            self.retry_after(failure)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a> = (&'a [u8], Option<&'a str>, Result<&'a str, &'a str>);

    #[test]
    fn media_type_from_content_type_else_from_the_json() {
        let oci = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#;
        let cases: [Case; 6] = [
            (
                b"{}",
                Some(media_types::DOCKER_MANIFEST),
                Ok(media_types::DOCKER_MANIFEST),
            ),
            (
                oci,
                Some("application/octet-stream"),
                Ok(media_types::OCI_INDEX),
            ),
            (oci, None, Ok(media_types::OCI_INDEX)),
            (
                br#"{"schemaVersion":1,"name":"x"}"#,
                Some("application/json"),
                Ok(media_types::DOCKER_SCHEMA1),
            ),
            (
                br#"{"schemaVersion":2}"#,
                Some("text/plain"),
                Err(r#"Content-Type "text/plain", mediaType """#),
            ),
            (
                b"<html>",
                None,
                Err("not JSON: expected value at line 1 column 1"),
            ),
        ];
        for (bytes, content_type, expected) in cases {
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(
                media_type_of(bytes, content_type),
                expected,
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn host_of_endpoint_urls() {
        assert_eq!(
            host_of("https://registry-1.docker.io"),
            "registry-1.docker.io"
        );
        assert_eq!(host_of("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    }

    #[test]
    fn clients_are_shared_across_threads_and_readers_move_between_them() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Client>();
        send::<BlobReader>();
    }
}
