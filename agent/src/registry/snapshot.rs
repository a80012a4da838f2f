//! Consistent reads to start (or resync) a watch from: the scheduler's whole view of the
//! cluster, and one agent's own assignments, each read at one etcd revision in one request.

use std::collections::BTreeMap;

use etcd_client::{GetOptions, KeyValue, Txn, TxnOp};

use crate::cluster::model::{Assignment, UnitRecord};
use crate::cluster::sched;

use super::client::Registry;
use super::error::{RegistryError, Result};
use super::keys::{is_segment, Key};
use super::kv::{decode, key_text, ranges_of, revision_of, Versioned};
use super::machines::{join_machines, Machine};
use super::watch::Watch;

/// Everything the scheduler decides from, at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// The revision it was read at: watch from the next one.
    pub revision: i64,
    /// Every unit with its revisions, by name.
    pub units: BTreeMap<String, Versioned<UnitRecord>>,
    /// Every registered machine with its effective metadata, by ID.
    pub machines: BTreeMap<String, Machine>,
    /// Every assignment, by (machine, unit).
    pub assignments: BTreeMap<(String, String), Assignment>,
}

/// One machine's assignments, at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleSnapshot {
    /// The revision it was read at.
    pub revision: i64,
    /// The machine's assignments, by unit.
    pub assignments: BTreeMap<String, Assignment>,
}

impl ClusterSnapshot {
    /// What the scheduler decides from: every registered machine (alive: it holds a lease),
    /// every unit whose record checks, every assignment. Units that no longer check come back
    /// as errors and are left out.
    pub fn view(&self) -> (sched::View, Vec<sched::ViewError>) {
        let mut invalid = Vec::new();
        let units = self
            .units
            .iter()
            .filter_map(|(name, unit)| {
                match sched::UnitSpec::from_record(&unit.value, unit.mod_revision) {
                    Ok(spec) => Some((name.clone(), spec)),
                    Err(error) => {
                        invalid.push(error);
                        None
                    }
                }
            })
            .collect();
        let machines = self
            .machines
            .iter()
            .map(|(id, machine)| {
                let view = sched::Machine {
                    metadata: machine.metadata.clone(),
                    alive: true,
                };
                (id.clone(), view)
            })
            .collect();
        let mut assignments: BTreeMap<String, BTreeMap<String, sched::Placed>> = BTreeMap::new();
        for ((machine, unit), assignment) in &self.assignments {
            assignments
                .entry(unit.clone())
                .or_default()
                .insert(machine.clone(), sched::Placed::from(assignment));
        }
        let view = sched::View {
            machines,
            units,
            assignments,
        };
        (view, invalid)
    }
}

impl Registry {
    /// Units, machines (with dynamic metadata) and assignments, read in one transaction.
    pub async fn snapshot_cluster(&self) -> Result<ClusterSnapshot> {
        let keys = self.keys();
        let prefix = GetOptions::new().with_prefix();
        let txn = Txn::new().and_then(
            [
                keys.units(),
                keys.machines(),
                keys.metadata_all(),
                keys.schedule(),
            ]
            .map(|key| TxnOp::get(key, Some(prefix.clone()))),
        );
        let response = self.txn(keys.prefix(), txn).await?;
        let mut ranges = ranges_of(&response).into_iter();
        let mut next = || ranges.next().unwrap_or_default();
        let (units, machines, metadata, schedule) = (next(), next(), next(), next());
        Ok(ClusterSnapshot {
            revision: revision_of(response.header()),
            units: units
                .iter()
                .map(|kv| {
                    let unit: Versioned<UnitRecord> = decode(kv)?;
                    Ok((unit.value.name.clone(), unit))
                })
                .collect::<Result<_>>()?,
            machines: join_machines(self, &machines, &metadata)?
                .into_iter()
                .map(|machine| (machine.record.id.clone(), machine))
                .collect(),
            assignments: self
                .assignments(&schedule)?
                .into_iter()
                .map(|(machine, unit, assignment)| ((machine, unit), assignment))
                .collect(),
        })
    }

    /// Machine `machine`'s assignments, and a watch on them from the revision after.
    pub async fn schedule_for(&self, machine: &str) -> Result<(ScheduleSnapshot, Watch)> {
        if !is_segment(machine) {
            return Err(RegistryError::InvalidName {
                what: "machine id",
                name: machine.to_owned(),
            });
        }
        let prefix = self.keys().schedule_of(machine);
        let mut response = self
            .range(&prefix, Some(GetOptions::new().with_prefix()))
            .await?;
        let snapshot = ScheduleSnapshot {
            revision: revision_of(response.header()),
            assignments: self
                .assignments(&response.take_kvs())?
                .into_iter()
                .map(|(_, unit, assignment)| (unit, assignment))
                .collect(),
        };
        let watch = self.watch(&prefix, snapshot.revision + 1).await?;
        Ok((snapshot, watch))
    }

    /// The assignments `kvs` hold, as (machine, unit, assignment); keys outside the layout are
    /// skipped.
    fn assignments(&self, kvs: &[KeyValue]) -> Result<Vec<(String, String, Assignment)>> {
        kvs.iter()
            .filter_map(|kv| match self.keys().parse(&key_text(kv)) {
                Some(Key::Assignment { machine, unit }) => {
                    Some(decode(kv).map(|assignment| (machine, unit, assignment.value)))
                }
                _ => None,
            })
            .collect()
    }
}
