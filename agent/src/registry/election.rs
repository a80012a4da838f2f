//! Electing the one scheduler: the `leader` key, created under the candidate's machine lease by
//! a transaction that succeeds only if the key does not exist.
//!
//! The leadership is the key's create revision: every scheduler write compares it (see
//! [`super::schedule`]), so a deposed leader can never write, even before it notices. It ends
//! when the lease ends (machine lost or gone) or the key is deleted ([`Registry::resign`]).

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use super::client::Registry;
use super::error::{RegistryError, Result};
use super::keys::is_segment;
use super::kv::{decode, encode, first_kv, revision_of};
use super::watch::{Change, WatchUpdate};

/// The value of the `leader` key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaderRecord {
    /// The leader's machine ID.
    #[serde(rename = "machineID")]
    pub(crate) machine_id: String,
}

/// This machine's leadership, won by [`Registry::campaign`]. It is over when
/// [`Registry::leadership_lost`] returns, and must be taken as over as soon as the machine's
/// [`super::Presence::status`] says its lease is lost (etcd may not have noticed yet, but it
/// will, and [`Registry::apply`] refuses writes from then on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    machine_id: String,
    create_revision: i64,
}

impl Leadership {
    /// The leader's machine ID.
    pub fn machine_id(&self) -> &str {
        &self.machine_id
    }

    /// The create revision of the `leader` key this leadership made: every scheduler write
    /// compares it.
    pub fn create_revision(&self) -> i64 {
        self.create_revision
    }
}

/// Who leads, as the `leader` key says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// The leader's machine ID.
    pub machine_id: String,
    /// The lease the key is under (the leader's machine lease).
    pub lease: i64,
    /// The key's create revision.
    pub create_revision: i64,
}

impl Registry {
    /// Becomes the scheduler: creates the `leader` key under `lease` (the machine's presence
    /// lease), or waits until it is deleted and tries again. A key already under `lease` (this
    /// agent led before it restarted and adopted its lease) is this leadership. Cancel by
    /// dropping the future; [`RegistryError::LeaseLost`] if `lease` is gone.
    pub async fn campaign(&self, machine_id: &str, lease: i64) -> Result<Leadership> {
        if !is_segment(machine_id) {
            return Err(RegistryError::InvalidName {
                what: "machine id",
                name: machine_id.to_owned(),
            });
        }
        let key = self.keys().leader();
        let record = LeaderRecord {
            machine_id: machine_id.to_owned(),
        };
        loop {
            let txn = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.as_str(),
                    encode(&record),
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key.as_str(), None)]);
            let response = self
                .txn(&key, txn)
                .await
                .map_err(|error| error.or_lease_lost(machine_id, lease))?;
            let revision = revision_of(response.header());
            let held = first_kv(&response);
            let create_revision = match held {
                None => Some(revision),
                Some(kv) if kv.lease() == lease => Some(kv.create_revision()),
                Some(_) => None,
            };
            if let Some(create_revision) = create_revision {
                tracing::info!(machine = machine_id, create_revision, "elected scheduler");
                return Ok(Leadership {
                    machine_id: machine_id.to_owned(),
                    create_revision,
                });
            }
            self.leader_deleted_after(revision).await?;
        }
    }

    /// Who leads now, if anyone.
    pub async fn leader(&self) -> Result<Option<Leader>> {
        let Some(kv) = self.get_one(&self.keys().leader()).await? else {
            return Ok(None);
        };
        let record: LeaderRecord = decode(&kv)?.value;
        Ok(Some(Leader {
            machine_id: record.machine_id,
            lease: kv.lease(),
            create_revision: kv.create_revision(),
        }))
    }

    /// Returns once `leadership` is over: the `leader` key is gone or was made anew (by a lease
    /// expiry, a revoke or [`Registry::resign`]).
    pub async fn leadership_lost(&self, leadership: &Leadership) -> Result<()> {
        loop {
            let response = self.range(&self.keys().leader(), None).await?;
            let current = response.kvs().first().map(|kv| kv.create_revision());
            if current != Some(leadership.create_revision) {
                return Ok(());
            }
            self.leader_deleted_after(revision_of(response.header()))
                .await?;
        }
    }

    /// Gives up `leadership` (deletes the `leader` key if it is still this leadership's).
    pub async fn resign(&self, leadership: &Leadership) -> Result<()> {
        let key = self.keys().leader();
        let txn = Txn::new()
            .when([Compare::create_revision(
                key.as_str(),
                CompareOp::Equal,
                leadership.create_revision,
            )])
            .and_then([TxnOp::delete(key.as_str(), None)]);
        self.txn(&key, txn).await.map(|_| ())
    }

    /// Waits until the `leader` key is deleted after `revision`, or the watch must resync
    /// (the caller reads the key again either way).
    async fn leader_deleted_after(&self, revision: i64) -> Result<()> {
        let mut watch = self.watch(&self.keys().leader(), revision + 1).await?;
        loop {
            match watch.next().await? {
                WatchUpdate::Resync(_) => return Ok(()),
                WatchUpdate::Events(events) => {
                    if events
                        .iter()
                        .any(|event| matches!(event.change, Change::Leader { machine: None }))
                    {
                        return Ok(());
                    }
                }
            }
        }
    }
}
