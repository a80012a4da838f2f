//! A machine's presence in the cluster: its registration `machines/<id>` under a lease of its
//! own, kept alive while the agent runs, and the unit states it reports under the same lease.
//!
//! A registration is created only if none exists (a transaction on `create_revision == 0`), so
//! two machines with the same `/etc/machine-id` cannot both register. An agent that restarts
//! within its TTL passes the lease it saved before (`adopt`) and keeps it: the registration and
//! the reported states stay, and no unit moves. `leave` revokes the lease, which deletes the
//! registration, the states and a leadership at once (how SIGTERM makes units move immediately).

use std::time::Duration;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cluster::model::{MachineRecord, ReportedState};

use super::batch;
use super::client::Registry;
use super::counters::RequestKind;
use super::error::{RegistryError, Result};
use super::keepalive::{KeepAlive, LeaseStatus};
use super::keys::is_segment;
use super::kv::{decode, encode, first_kv, revision_of};

/// A change of a unit's state on this machine, for [`Presence::report`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateReport<'a> {
    /// The unit's state is now `state`.
    Put {
        /// The unit.
        unit: &'a str,
        /// Its state.
        state: &'a ReportedState,
    },
    /// The unit is no longer on this machine.
    Withdraw {
        /// The unit.
        unit: &'a str,
    },
}

impl StateReport<'_> {
    fn unit(&self) -> &str {
        match self {
            StateReport::Put { unit, .. } | StateReport::Withdraw { unit } => unit,
        }
    }
}

/// This machine's registration, kept alive until it is dropped (the lease then expires after its
/// TTL, as when the agent crashes) or [`Presence::leave`] revokes it.
#[derive(Debug)]
pub struct Presence {
    registry: Registry,
    id: String,
    lease: i64,
    keep_alive: KeepAlive,
}

impl Presence {
    /// Registers `record` under a lease of `ttl` (whole seconds, at least etcd's minimum) and
    /// starts keeping it alive. With `adopt`, the lease this machine's agent held before it
    /// restarted: if the registration is still under it, that lease is kept. A registration under
    /// any other lease is [`RegistryError::DuplicateMachine`].
    pub async fn register(
        registry: &Registry,
        record: &MachineRecord,
        ttl: Duration,
        adopt: Option<i64>,
    ) -> Result<Presence> {
        if !is_segment(&record.id) {
            return Err(RegistryError::InvalidName {
                what: "machine id",
                name: record.id.clone(),
            });
        }
        if let Some(lease) = adopt {
            if registry.readopt(record, lease).await? {
                return Ok(Presence::start(registry, &record.id, lease, ttl));
            }
        }
        let key = registry.keys().machine(&record.id);
        let whole_seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let seconds = i64::try_from(whole_seconds).unwrap_or(i64::MAX).max(1);
        let granted = registry
            .call(RequestKind::LeaseGrant, &key, |client| async move {
                client.lease_client().grant(seconds, None).await
            })
            .await?;
        let lease = granted.id();
        let ttl = Duration::from_secs(granted.ttl().max(1).unsigned_abs());
        let txn = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.as_str(),
                encode(record),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key.as_str(), None)]);
        let response = registry.txn(&key, txn).await?;
        if response.succeeded() {
            return Ok(Presence::start(registry, &record.id, lease, ttl));
        }
        // Someone else holds the registration: give our lease back before saying who.
        registry.revoke(lease).await?;
        let holder_ip = first_kv(&response)
            .and_then(|kv| decode::<MachineRecord>(&kv).ok())
            .map_or_else(
                || "an unknown address".to_owned(),
                |held| held.value.public_ip,
            );
        Err(RegistryError::DuplicateMachine {
            id: record.id.clone(),
            holder_ip,
        })
    }

    fn start(registry: &Registry, id: &str, lease: i64, ttl: Duration) -> Presence {
        Presence {
            registry: registry.clone(),
            id: id.to_owned(),
            lease,
            keep_alive: KeepAlive::start(
                registry.clone(),
                id.to_owned(),
                lease,
                ttl,
                Instant::now(),
            ),
        }
    }

    /// The machine ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The lease, to save (in `/run`) for adoption after an agent restart.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The lease's status; `changed()` wakes only when it is lost.
    pub fn status(&self) -> watch::Receiver<LeaseStatus> {
        self.keep_alive.status()
    }

    /// Writes this machine's state of `unit` (`states/<self>/<unit>`) under the lease. Returns
    /// the write's revision.
    pub async fn put_state(&self, unit: &str, state: &ReportedState) -> Result<i64> {
        self.report(&[StateReport::Put { unit, state }]).await
    }

    /// Writes and withdraws this machine's unit states under the lease, as few transactions as
    /// etcd takes (a hundred units that changed at once are one write). Returns the revision of
    /// the last write, 0 when there was nothing to write.
    pub async fn report(&self, reports: &[StateReport<'_>]) -> Result<i64> {
        let writes = reports
            .iter()
            .map(|report| {
                let key = self.state_key(report.unit())?;
                let value = match report {
                    StateReport::Put { state, .. } => Some(encode(state)),
                    StateReport::Withdraw { .. } => None,
                };
                Ok((key, value))
            })
            .collect::<Result<Vec<_>>>()?;
        let batches = batch::transactions(
            writes
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_ref().map_or(0, Vec::len))),
        )?;
        let mut revision = 0;
        for range in batches {
            // Errors name the batch's first key.
            let key = writes[range.start].0.clone();
            let ops = writes[range].iter().map(|(key, value)| match value {
                Some(value) => TxnOp::put(
                    key.as_str(),
                    value.clone(),
                    Some(PutOptions::new().with_lease(self.lease)),
                ),
                None => TxnOp::delete(key.as_str(), None),
            });
            let response = self
                .registry
                .txn(&key, Txn::new().and_then(ops.collect::<Vec<_>>()))
                .await
                .map_err(|error| error.or_lease_lost(&self.id, self.lease))?;
            revision = revision_of(response.header());
        }
        Ok(revision)
    }

    fn state_key(&self, unit: &str) -> Result<String> {
        if !is_segment(unit) {
            return Err(RegistryError::InvalidName {
                what: "unit name",
                name: unit.to_owned(),
            });
        }
        Ok(self.registry.keys().state(&self.id, unit))
    }

    /// Leaves the cluster: stops the keep-alives and revokes the lease, which deletes the
    /// registration, every reported state and a leadership at once.
    pub async fn leave(self) -> Result<()> {
        self.keep_alive.stop();
        self.registry.revoke(self.lease).await
    }
}

impl Registry {
    /// Puts `record` back under `lease` if the registration is still under it; `false` if it is
    /// not (gone, under another lease, or the lease expired meanwhile).
    async fn readopt(&self, record: &MachineRecord, lease: i64) -> Result<bool> {
        let key = self.keys().machine(&record.id);
        let txn = Txn::new()
            .when([Compare::lease(key.as_str(), CompareOp::Equal, lease)])
            .and_then([TxnOp::put(
                key.as_str(),
                encode(record),
                Some(PutOptions::new().with_lease(lease)),
            )]);
        match self.txn(&key, txn).await {
            Ok(response) => Ok(response.succeeded()),
            Err(error) if error.is_lease_not_found() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Revokes `lease`; a lease that is already gone is no error.
    async fn revoke(&self, lease: i64) -> Result<()> {
        let key = format!("lease {lease:x}");
        let revoked = self
            .call(RequestKind::LeaseRevoke, &key, |client| async move {
                client.lease_client().revoke(lease).await
            })
            .await;
        match revoked {
            Err(error) if !error.is_lease_not_found() => Err(error),
            _ => Ok(()),
        }
    }
}
