//! What can go wrong talking to etcd, each error naming the key, endpoint or machine involved.

use std::path::PathBuf;

use super::counters::RequestKind;

/// The registry's errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The configuration names no endpoint.
    #[error("no etcd endpoint configured")]
    NoEndpoints,
    /// An endpoint that is not a usable URL.
    #[error("invalid etcd endpoint {endpoint}: {reason}")]
    InvalidEndpoint {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A TLS file could not be read.
    #[error("read etcd TLS file {}: {source}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A TLS client key was given without its certificate, or the other way round.
    #[error("etcd TLS needs both a client certificate and its key (got only the {given})")]
    TlsPair {
        /// `certificate` or `key`.
        given: &'static str,
    },
    /// A unit name or machine ID that cannot be a key segment.
    #[error("invalid {what} {name:?}: must be non-empty and contain no '/'")]
    InvalidName {
        /// `unit name` or `machine id`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// etcd answered a request with an error that another try would not change.
    #[error("etcd {kind} request on {key} failed at {endpoint}: {source}")]
    Etcd {
        /// The request.
        kind: RequestKind,
        /// The key (or prefix) it was about.
        key: String,
        /// The endpoint that answered.
        endpoint: String,
        /// etcd-client's error.
        source: etcd_client::Error,
    },
    /// No endpoint answered within every try.
    #[error(
        "etcd unreachable: {kind} request on {key} failed {attempts} times over {endpoints}; \
         last error: {last}"
    )]
    Unavailable {
        /// The request.
        kind: RequestKind,
        /// The key (or prefix) it was about.
        key: String,
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// How many tries were made.
        attempts: usize,
        /// The last try's failure.
        last: String,
    },
    /// A stored value is not the JSON record its key calls for.
    #[error("decode {key}: {source}")]
    Decode {
        /// The key.
        key: String,
        /// Why.
        source: serde_json::Error,
    },
    /// `create` of a unit that exists.
    #[error("unit {name} already exists")]
    UnitExists {
        /// The unit.
        name: String,
    },
    /// A change to a unit that does not exist.
    #[error("unit {name} not found")]
    UnitNotFound {
        /// The unit.
        name: String,
    },
    /// A read-modify-write lost to other writers too many times in a row.
    #[error("{key} changed under every one of {tries} tries to update it")]
    Contended {
        /// The key.
        key: String,
        /// How many tries were made.
        tries: usize,
    },
    /// Another lease holds this machine's registration.
    #[error(
        "machine {id} is already registered by {holder_ip}: another machine has the same \
         /etc/machine-id, or this machine registered before a restart and its lease has not \
         expired yet (it does within the agent TTL)"
    )]
    DuplicateMachine {
        /// The machine ID.
        id: String,
        /// The public IP the registration holds.
        holder_ip: String,
    },
    /// The machine's lease no longer exists in etcd (expired or revoked).
    #[error("lease {lease:x} of machine {id} is gone (expired or revoked)")]
    LeaseLost {
        /// The machine ID.
        id: String,
        /// The lease.
        lease: i64,
    },
    /// Two scheduler operations on the same key in one `apply`.
    #[error("two schedule operations on {key} in one apply")]
    DuplicateOperation {
        /// The key.
        key: String,
    },
    /// The leader key is no longer the one this leadership created: another machine leads
    /// (or nobody). Batches before `batch` were written.
    #[error(
        "scheduler deposed: batch {batch} not written ({applied} operations in earlier batches \
         were), the leader key is no longer ours (now {now})"
    )]
    Deposed {
        /// The batch that failed (0-based).
        batch: usize,
        /// Operations written by earlier batches.
        applied: usize,
        /// Who leads now, as the leader key says (`nobody` when it is gone).
        now: String,
    },
    /// Units changed since the decision was made. Batches before `batch` were written.
    #[error(
        "schedule batch {batch} not written ({applied} operations in earlier batches were): \
         stale units {}",
        stale.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    StaleUnits {
        /// The batch that failed (0-based).
        batch: usize,
        /// Operations written by earlier batches.
        applied: usize,
        /// The units whose revision moved.
        stale: Vec<StaleUnit>,
    },
}

impl RegistryError {
    /// Whether etcd answered "requested lease not found" (the lease expired or was revoked).
    pub(crate) fn is_lease_not_found(&self) -> bool {
        matches!(
            self,
            RegistryError::Etcd {
                source: etcd_client::Error::GRpcStatus(status),
                ..
            } if status.code() == tonic::Code::NotFound
                && status.message().contains("lease not found")
        )
    }

    /// [`RegistryError::LeaseLost`] (of machine `id`'s `lease`) for etcd's "requested lease not
    /// found", else the error itself.
    pub(crate) fn or_lease_lost(self, id: &str, lease: i64) -> RegistryError {
        if self.is_lease_not_found() {
            RegistryError::LeaseLost {
                id: id.to_owned(),
                lease,
            }
        } else {
            self
        }
    }
}

/// A unit whose record moved since a scheduling decision was made from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleUnit {
    /// The unit.
    pub name: String,
    /// The mod revision the decision was made from.
    pub expected: i64,
    /// The mod revision now; `None` when the unit was destroyed.
    pub actual: Option<i64>,
}

impl std::fmt::Display for StaleUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.actual {
            Some(actual) => write!(
                f,
                "{} (decided at revision {}, now {actual})",
                self.name, self.expected
            ),
            None => write!(
                f,
                "{} (decided at revision {}, now destroyed)",
                self.name, self.expected
            ),
        }
    }
}

/// The registry's result.
pub type Result<T> = std::result::Result<T, RegistryError>;
