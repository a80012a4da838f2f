//! What the scheduler is given: the cluster as read from etcd, reduced to what placement needs.
//!
//! The caller builds a [`View`] from `machines/`, `metadata/`, `units/` and `schedule/` (with
//! [`UnitSpec::from_record`] for each unit record); the scheduler never reads anything else.

use std::collections::BTreeMap;

use unitgen::fleet::Constraints;
use unitgen::unit::Unit;

use crate::cluster::model::{Assignment, DesiredState, UnitRecord};

/// A unit record in etcd whose contents no longer pass [`Unit::check`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The unit's contents are not a valid unit (the API checks them, so this means a record
    /// written by something else, or by an older flotilla with other rules).
    #[error("unit {name} in etcd is invalid: {problems}")]
    InvalidUnit {
        /// The unit's name.
        name: String,
        /// Every problem, `; `-separated, each with its line and column.
        problems: String,
    },
}

/// A machine as the scheduler sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    /// The effective metadata ([`crate::cluster::model::effective_metadata`]).
    pub metadata: BTreeMap<String, String>,
    /// The machine holds a lease. A machine that is not alive runs nothing: its assignments
    /// are moved elsewhere.
    pub alive: bool,
}

/// A unit as the scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitSpec {
    /// The content hash ([`UnitRecord::hash`]).
    pub hash: String,
    /// What the user asked for.
    pub desired: DesiredState,
    /// Where it may run (`[X-Fleet]`).
    pub constraints: Constraints,
    /// The etcd mod revision of `units/<name>`.
    pub unit_revision: i64,
}

impl UnitSpec {
    /// Reads a unit record: its `[X-Fleet]` constraints come from checking its contents.
    pub fn from_record(record: &UnitRecord, unit_revision: i64) -> Result<UnitSpec, ViewError> {
        let label = format!("units/{}", record.name);
        let unit = Unit::check(label, &record.name, record.contents.as_bytes()).map_err(
            |diagnostics| ViewError::InvalidUnit {
                name: record.name.clone(),
                problems: diagnostics
                    .sorted()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        )?;
        Ok(UnitSpec {
            hash: record.hash.clone(),
            desired: record.desired_state,
            constraints: unit.constraints().clone(),
            unit_revision,
        })
    }
}

/// What an existing assignment (`schedule/<machine>/<unit>`) says, as far as the scheduler
/// cares: whether it is still current.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The hash the assignment carries.
    pub hash: String,
    /// The desired state the assignment carries.
    pub desired: DesiredState,
    /// The unit revision the assignment was made from.
    pub unit_revision: i64,
}

impl From<&Assignment> for Placed {
    fn from(assignment: &Assignment) -> Placed {
        Placed {
            hash: assignment.hash.clone(),
            desired: assignment.desired_state,
            unit_revision: assignment.unit_revision,
        }
    }
}

impl From<&UnitSpec> for Placed {
    /// The assignment a placement of `spec` writes.
    fn from(spec: &UnitSpec) -> Placed {
        Placed {
            hash: spec.hash.clone(),
            desired: spec.desired,
            unit_revision: spec.unit_revision,
        }
    }
}

/// The cluster: every machine, every unit, every assignment. Sorted maps, so every pass over
/// the same view decides the same things in the same order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Machine ID → machine. A machine missing here counts as down.
    pub machines: BTreeMap<String, Machine>,
    /// Unit name → unit.
    pub units: BTreeMap<String, UnitSpec>,
    /// Unit name → machine ID → assignment (a global unit has one per machine).
    pub assignments: BTreeMap<String, BTreeMap<String, Placed>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_checked_and_their_constraints_read() {
        let record = UnitRecord {
            name: "web.service".into(),
            hash: "abc".into(),
            desired_state: DesiredState::Launched,
            contents: "[Service]\nExecStart=/bin/true\n[X-Fleet]\nX-Conflicts=web*\n".into(),
        };
        let spec = UnitSpec::from_record(&record, 7).expect("valid");
        assert_eq!(spec.hash, "abc");
        assert_eq!(spec.unit_revision, 7);
        assert_eq!(spec.constraints.conflicts[0].as_str(), "web*");

        let broken = UnitRecord {
            contents: "[X-Fleet]\nMachineId=x\n".into(),
            ..record
        };
        assert_eq!(
            UnitSpec::from_record(&broken, 1).unwrap_err().to_string(),
            "unit web.service in etcd is invalid: units/web.service:2:1: error: \
             unrecognized requirement in [X-Fleet] section: \"MachineId\""
        );
    }
}
