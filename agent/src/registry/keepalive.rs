//! Keeping a machine's lease alive, and telling the agent the moment it is lost.
//!
//! A task sends a keep-alive every third of the TTL on a keep-alive stream (reopened on another
//! endpoint when it breaks). The lease is lost when etcd says it no longer exists, or when no
//! keep-alive has been answered for a whole TTL: from then on etcd may have expired it, and the
//! agent must act as if it had. [`LeaseStatus`] carries the instant of the last answered
//! keep-alive so the agent can compute when the lease surely expired.

use std::time::Duration;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::client::Registry;
use super::counters::RequestKind;
use super::error::RegistryError;

/// Whether a lease is alive, as far as this process knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Kept alive; `renewed` is when etcd last answered a keep-alive (or granted the lease).
    Alive {
        /// The last answered keep-alive.
        renewed: Instant,
    },
    /// Lost: the keep-alive task has ended and the lease must be taken as gone.
    Lost {
        /// The last answered keep-alive.
        renewed: Instant,
        /// When the loss was noticed.
        detected: Instant,
        /// Why.
        cause: LossCause,
        /// By when etcd has surely expired the lease: the last answer plus the TTL (etcd
        /// renewed the lease before it answered). A new etcd leader extends leases, so after an
        /// etcd leader change this bound can be early by an election timeout.
        expired_by: Instant,
    },
}

/// Why a lease was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossCause {
    /// etcd answered that the lease does not exist (expired or revoked).
    Gone,
    /// No keep-alive was answered for a whole TTL.
    Unreachable,
}

impl LeaseStatus {
    /// Whether the lease is alive.
    pub fn is_alive(&self) -> bool {
        matches!(self, LeaseStatus::Alive { .. })
    }
}

/// A running keep-alive task; dropping it stops the keep-alives (the lease then expires after
/// its TTL, as when the agent crashes).
#[derive(Debug)]
pub(crate) struct KeepAlive {
    status: watch::Receiver<LeaseStatus>,
    task: JoinHandle<()>,
}

impl KeepAlive {
    /// Starts keeping `lease` (of TTL `ttl`) alive; `renewed` is when etcd last renewed it.
    pub(crate) fn start(
        registry: Registry,
        machine: String,
        lease: i64,
        ttl: Duration,
        renewed: Instant,
    ) -> KeepAlive {
        let (sender, status) = watch::channel(LeaseStatus::Alive { renewed });
        let keeper = Keeper {
            registry,
            machine,
            lease,
            ttl,
            renewed,
            stream: None,
        };
        let task = tokio::spawn(keeper.run(sender));
        KeepAlive { status, task }
    }

    /// Stops the keep-alives.
    pub(crate) fn stop(&self) {
        self.task.abort();
    }

    /// The status, to watch for a loss.
    pub(crate) fn status(&self) -> watch::Receiver<LeaseStatus> {
        self.status.clone()
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An open keep-alive stream and the endpoint it is on.
struct Stream {
    index: usize,
    keeper: LeaseKeeper,
    responses: LeaseKeepAliveStream,
}

/// What one keep-alive came to.
enum Renewal {
    /// etcd renewed the lease, whose TTL it told when it did.
    Renewed(Option<Duration>),
    /// etcd says the lease does not exist.
    Gone,
    /// No answer: the stream broke or etcd is unreachable.
    Failed,
}

struct Keeper {
    registry: Registry,
    machine: String,
    lease: i64,
    ttl: Duration,
    renewed: Instant,
    stream: Option<Stream>,
}

impl Keeper {
    async fn run(mut self, status: watch::Sender<LeaseStatus>) {
        loop {
            let deadline = self.renewed + self.ttl;
            let renewal = tokio::time::timeout_at(deadline, self.renew())
                .await
                .unwrap_or(Renewal::Failed);
            let failed = matches!(renewal, Renewal::Failed);
            let cause = match renewal {
                Renewal::Renewed(ttl) => {
                    self.renewed = Instant::now();
                    self.ttl = ttl.unwrap_or(self.ttl);
                    let renewed = self.renewed;
                    // Renewals update the status silently: watchers wake only for a loss.
                    status.send_if_modified(|status| {
                        *status = LeaseStatus::Alive { renewed };
                        false
                    });
                    None
                }
                Renewal::Gone => Some(LossCause::Gone),
                Renewal::Failed if Instant::now() >= deadline => Some(LossCause::Unreachable),
                Renewal::Failed => None,
            };
            if let Some(cause) = cause {
                let detected = Instant::now();
                tracing::warn!(machine = %self.machine, lease = format!("{:x}", self.lease), ?cause, "machine lease lost");
                status.send_replace(LeaseStatus::Lost {
                    renewed: self.renewed,
                    detected,
                    cause,
                    expired_by: (self.renewed + self.ttl).min(detected),
                });
                return;
            }
            // After a failure, try again soon: the TTL is all the time there is.
            let interval = if failed { self.ttl / 15 } else { self.ttl / 3 };
            let next = (Instant::now() + interval).min(self.renewed + self.ttl);
            tokio::time::sleep_until(next).await;
        }
    }

    /// One keep-alive: on the open stream if there is one, else (or when it breaks) on a new
    /// stream, whose opening sends the first keep-alive.
    async fn renew(&mut self) -> Renewal {
        if let Some(stream) = &mut self.stream {
            self.registry.count(RequestKind::LeaseKeepAlive);
            let answer = async {
                stream.keeper.keep_alive().await?;
                stream.responses.message().await
            };
            match tokio::time::timeout(self.registry.request_timeout(), answer).await {
                Ok(Ok(Some(response))) if response.ttl() > 0 => {
                    return Renewal::Renewed(Some(Duration::from_secs(
                        response.ttl().unsigned_abs(),
                    )))
                }
                Ok(Ok(Some(_))) => return Renewal::Gone,
                _ => {
                    self.registry.failed(stream.index);
                    self.stream = None;
                }
            }
        }
        self.open().await
    }

    async fn open(&mut self) -> Renewal {
        let lease = self.lease;
        let key = format!("lease {lease:x}");
        let opened = self
            .registry
            .call_indexed(RequestKind::LeaseKeepAlive, &key, |client| async move {
                client.lease_client().keep_alive(lease).await
            })
            .await;
        match opened {
            Ok(((keeper, responses), index)) => {
                // etcd-client has read the first answer and checked its TTL, but keeps it.
                self.stream = Some(Stream {
                    index,
                    keeper,
                    responses,
                });
                Renewal::Renewed(None)
            }
            Err(RegistryError::Etcd {
                source: etcd_client::Error::LeaseKeepAliveError(_),
                ..
            }) => Renewal::Gone,
            Err(error) => {
                tracing::warn!(machine = %self.machine, %error, "keep-alive of the machine lease failed");
                Renewal::Failed
            }
        }
    }
}
