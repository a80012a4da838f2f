//! The scheduler's writes: assignments `schedule/<machine>/<unit>` put and deleted in
//! transactions that each hold only while this machine still leads and every unit they assign
//! is still at the revision the decision was made from.
//!
//! Each transaction compares `create_revision(leader)` with the leadership's, and
//! `mod_revision(units/<name>)` with the assignment's `unit_revision` for every unit it puts.
//! When one fails, its ranges say why: [`RegistryError::Deposed`] or
//! [`RegistryError::StaleUnits`]; the transactions before it were written, none after it is
//! tried, and the caller re-reads and decides again.

use std::collections::BTreeMap;

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp};

use crate::cluster::model::Assignment;

use super::batch;
use super::client::Registry;
use super::election::{LeaderRecord, Leadership};
use super::error::{RegistryError, Result, StaleUnit};
use super::keys::is_segment;
use super::kv::{decode, encode, ranges_of, revision_of};

/// One scheduler write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleOp {
    /// Assign `unit` to `machine`. The write holds only while `units/<unit>` is still at
    /// `assignment.unit_revision`, the revision the decision was made from.
    Put {
        /// The machine.
        machine: String,
        /// The unit.
        unit: String,
        /// What the machine's agent gets.
        assignment: Assignment,
    },
    /// Take `unit` off `machine`.
    Delete {
        /// The machine.
        machine: String,
        /// The unit.
        unit: String,
    },
}

/// What [`Registry::apply`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The transactions.
    pub batches: usize,
    /// The revision of the last one (0 when there was nothing to write).
    pub revision: i64,
}

/// A write ready to send.
struct Write {
    key: String,
    value: Option<Vec<u8>>,
    /// The unit the write assigns and the revision it must still be at.
    guard: Option<(String, i64)>,
}

impl ScheduleOp {
    fn write(&self, registry: &Registry) -> Result<Write> {
        let (machine, unit) = match self {
            ScheduleOp::Put { machine, unit, .. } | ScheduleOp::Delete { machine, unit } => {
                (machine, unit)
            }
        };
        for (what, name) in [("machine id", machine), ("unit name", unit)] {
            if !is_segment(name) {
                return Err(RegistryError::InvalidName {
                    what,
                    name: name.clone(),
                });
            }
        }
        let key = registry.keys().assignment(machine, unit);
        Ok(match self {
            ScheduleOp::Put { assignment, .. } => Write {
                key,
                value: Some(encode(assignment)),
                guard: Some((unit.clone(), assignment.unit_revision)),
            },
            ScheduleOp::Delete { .. } => Write {
                key,
                value: None,
                guard: None,
            },
        })
    }
}

impl Registry {
    /// Writes `ops` as `leadership`, in transactions of at most 100 writes, in order; see the
    /// module's documentation for what makes one fail.
    pub async fn apply(&self, leadership: &Leadership, ops: &[ScheduleOp]) -> Result<Applied> {
        let writes = ops
            .iter()
            .map(|op| op.write(self))
            .collect::<Result<Vec<_>>>()?;
        let batches = batch::transactions(
            writes
                .iter()
                .map(|write| (write.key.as_str(), write.value.as_ref().map_or(0, Vec::len))),
        )?;
        let mut applied = Applied {
            batches: 0,
            revision: 0,
        };
        let mut written = 0;
        for (index, range) in batches.into_iter().enumerate() {
            let writes = &writes[range];
            applied.revision = self
                .apply_batch(leadership, writes)
                .await?
                .map_err(|why| why.into_error(index, written))?;
            applied.batches += 1;
            written += writes.len();
        }
        Ok(applied)
    }

    /// One transaction: `Ok(Ok(revision))` written, `Ok(Err(why))` a compare failed.
    async fn apply_batch(
        &self,
        leadership: &Leadership,
        writes: &[Write],
    ) -> Result<std::result::Result<i64, Failure>> {
        let leader = self.keys().leader();
        // unit → the revisions writes expect it at (two differing ones can only fail).
        let mut guards: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for (unit, revision) in writes.iter().filter_map(|write| write.guard.as_ref()) {
            let expected = guards.entry(unit.as_str()).or_default();
            if !expected.contains(revision) {
                expected.push(*revision);
            }
        }
        let mut compares = vec![Compare::create_revision(
            leader.as_str(),
            CompareOp::Equal,
            leadership.create_revision(),
        )];
        let mut failure = vec![TxnOp::get(leader.as_str(), None)];
        for (unit, revisions) in &guards {
            let key = self.keys().unit(unit);
            for &revision in revisions {
                compares.push(Compare::mod_revision(
                    key.as_str(),
                    CompareOp::Equal,
                    revision,
                ));
            }
            failure.push(TxnOp::get(key, Some(GetOptions::new().with_keys_only())));
        }
        let success: Vec<TxnOp> = writes
            .iter()
            .map(|write| match &write.value {
                Some(value) => TxnOp::put(write.key.as_str(), value.clone(), None),
                None => TxnOp::delete(write.key.as_str(), None),
            })
            .collect();
        let txn = Txn::new().when(compares).and_then(success).or_else(failure);
        let response = self.txn(&self.keys().schedule(), txn).await?;
        if response.succeeded() {
            return Ok(Ok(revision_of(response.header())));
        }
        let mut ranges = ranges_of(&response).into_iter();
        let held = ranges.next().unwrap_or_default();
        if let Some(now) = deposed(leadership, held.first())? {
            return Ok(Err(Failure::Deposed { now }));
        }
        let stale = guards
            .iter()
            .zip(ranges)
            .flat_map(|((unit, revisions), kvs)| {
                let actual = kvs.first().map(KeyValue::mod_revision);
                revisions
                    .iter()
                    .filter(move |&&expected| actual != Some(expected))
                    .map(move |&expected| StaleUnit {
                        name: (*unit).to_owned(),
                        expected,
                        actual,
                    })
            })
            .collect();
        Ok(Err(Failure::Stale(stale)))
    }
}

/// `Some(who leads now)` if the leader key `held` is not `leadership`'s.
fn deposed(leadership: &Leadership, held: Option<&KeyValue>) -> Result<Option<String>> {
    match held {
        None => Ok(Some("nobody".to_owned())),
        Some(kv) if kv.create_revision() == leadership.create_revision() => Ok(None),
        Some(kv) => Ok(Some(decode::<LeaderRecord>(kv)?.value.machine_id)),
    }
}

/// Why a transaction's compares failed.
enum Failure {
    Deposed { now: String },
    Stale(Vec<StaleUnit>),
}

impl Failure {
    fn into_error(self, batch: usize, applied: usize) -> RegistryError {
        match self {
            Failure::Deposed { now } => RegistryError::Deposed {
                batch,
                applied,
                now,
            },
            Failure::Stale(stale) => RegistryError::StaleUnits {
                batch,
                applied,
                stale,
            },
        }
    }
}
