//! The registry handle: one etcd client per endpoint, the endpoint in use, and every request's
//! tries.
//!
//! etcd-client balances over the endpoints it is given but keeps sending to a member that died
//! (DESIGN §6). So each endpoint gets its own plain channel (see
//! [`RegistryConfig::channel`]) and client, and all requests go to
//! the endpoint in use until one fails in a way another member could answer
//! ([`retry::is_retryable`], or no answer within the request timeout); then the registry moves to
//! the next endpoint and tries again, pausing between full passes ([`retry::pause_before`]).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Channel, Client, ConnectOptions};
use tokio::sync::OnceCell;

use super::config::RegistryConfig;
use super::counters::{Counters, RequestCounts, RequestKind};
use super::error::{RegistryError, Result};
use super::keys::Keys;
use super::retry;

/// A clonable handle on the cluster's etcd; clones share clients, the endpoint in use and the
/// request counters.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Keys,
    members: Vec<Member>,
    /// The index in `members` of the endpoint in use.
    current: AtomicUsize,
    options: ConnectOptions,
    request_timeout: Duration,
    counters: Counters,
}

/// One endpoint, its channel and its client, made on first use (with credentials, making the
/// client is a request).
struct Member {
    endpoint: String,
    channel: Channel,
    client: OnceCell<Client>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("prefix", &self.inner.keys.prefix())
            .field("endpoints", &self.endpoints())
            .field("current", &self.inner.current.load(Ordering::Relaxed))
            .finish()
    }
}

impl Registry {
    /// A handle on the etcd cluster `config` names, checked with one read (so a wrong endpoint,
    /// certificate or password is reported here, naming the endpoint).
    pub async fn connect(config: &RegistryConfig) -> Result<Registry> {
        if config.endpoints.is_empty() {
            return Err(RegistryError::NoEndpoints);
        }
        let members = config
            .endpoints
            .iter()
            .map(|endpoint| {
                Ok(Member {
                    endpoint: endpoint.clone(),
                    channel: config.channel(endpoint)?,
                    client: OnceCell::new(),
                })
            })
            .collect::<Result<_>>()?;
        let registry = Registry {
            inner: Arc::new(Inner {
                keys: Keys::new(&config.key_prefix),
                members,
                current: AtomicUsize::new(0),
                options: config.connect_options(),
                request_timeout: config.request_timeout,
                counters: Counters::default(),
            }),
        };
        let leader = registry.keys().leader();
        registry
            .range(
                &leader,
                Some(etcd_client::GetOptions::new().with_count_only()),
            )
            .await?;
        Ok(registry)
    }

    /// The key layout under this registry's prefix.
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// The etcd requests this process has sent through this registry (and its clones), by kind.
    pub fn request_counts(&self) -> RequestCounts {
        self.inner.counters.snapshot()
    }

    /// The configured endpoints.
    pub fn endpoints(&self) -> Vec<&str> {
        self.inner
            .members
            .iter()
            .map(|member| member.endpoint.as_str())
            .collect()
    }

    /// The per-try timeout.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// Counts one request that was not sent through [`Registry::call`] (keep-alives on an open
    /// stream).
    pub(crate) fn count(&self, kind: RequestKind) {
        self.inner.counters.count(kind);
    }

    /// Moves off the endpoint at `index` after a failure seen outside [`Registry::call`] (a
    /// broken stream), unless another task already did.
    pub(crate) fn failed(&self, index: usize) {
        let next = (index + 1) % self.inner.members.len();
        let _ =
            self.inner
                .current
                .compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The client of the endpoint at `index`, connected on first use.
    async fn client(&self, index: usize) -> std::result::Result<Client, etcd_client::Error> {
        let member = &self.inner.members[index];
        member
            .client
            .get_or_try_init(|| {
                Client::from_channel(member.channel.clone(), Some(self.inner.options.clone()))
            })
            .await
            .cloned()
    }

    /// Sends one request (`op` on a client), trying the endpoints in turn until one answers:
    /// the answer, or the first error that is etcd's answer to the request. `key` names what
    /// the request is about, for errors.
    pub(crate) async fn call<T, F, Fut>(&self, kind: RequestKind, key: &str, op: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        self.call_indexed(kind, key, op)
            .await
            .map(|(value, _)| value)
    }

    /// [`Registry::call`], also telling the index of the endpoint that answered (streams report
    /// a later failure with [`Registry::failed`]).
    pub(crate) async fn call_indexed<T, F, Fut>(
        &self,
        kind: RequestKind,
        key: &str,
        mut op: F,
    ) -> Result<(T, usize)>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let endpoints = self.inner.members.len();
        let attempts = retry::attempts(endpoints);
        let mut last = String::new();
        for attempt in 0..attempts {
            let pause = retry::pause_before(attempt, endpoints);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let index = self.inner.current.load(Ordering::Relaxed);
            self.count(kind);
            let tried = tokio::time::timeout(self.inner.request_timeout, async {
                let client = self.client(index).await?;
                op(client).await
            })
            .await;
            let endpoint = &self.inner.members[index].endpoint;
            match tried {
                Ok(Ok(value)) => return Ok((value, index)),
                Ok(Err(source)) if !retry::is_retryable(&source) => {
                    return Err(RegistryError::Etcd {
                        kind,
                        key: key.to_owned(),
                        endpoint: endpoint.clone(),
                        source,
                    })
                }
                Ok(Err(error)) => last = format!("{endpoint}: {error}"),
                Err(_) => {
                    last = format!(
                        "{endpoint}: no answer within {:?}",
                        self.inner.request_timeout
                    )
                }
            }
            tracing::debug!(%kind, key, attempt, error = %last, "etcd request failed; trying the next endpoint");
            self.failed(index);
        }
        Err(RegistryError::Unavailable {
            kind,
            key: key.to_owned(),
            endpoints: self.endpoints().join(","),
            attempts,
            last,
        })
    }
}
