//! What the scheduler decides: assignments to write, remove or rewrite, each with its reason,
//! and the units it could not place, with why.
//!
//! Everything borrows names from the [`super::View`] it was decided from, so a pass allocates
//! little; the caller turns decisions into etcd transactions right away.

use std::collections::BTreeMap;
use std::fmt;

use super::fit::Exclusion;
use crate::cluster::model::{short_machine_id, DesiredState};

/// One change to `schedule/<machine>/<unit>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision<'v> {
    /// Write a new assignment.
    Place {
        unit: &'v str,
        machine: &'v str,
        reason: Reason<'v>,
    },
    /// Delete an assignment.
    Unplace {
        unit: &'v str,
        machine: &'v str,
        reason: Reason<'v>,
    },
    /// Rewrite an assignment in place with the unit's current hash, desired state and revision.
    Update {
        unit: &'v str,
        machine: &'v str,
        reason: Reason<'v>,
    },
}

impl<'v> Decision<'v> {
    /// The unit concerned.
    pub fn unit(&self) -> &'v str {
        match self {
            Decision::Place { unit, .. }
            | Decision::Unplace { unit, .. }
            | Decision::Update { unit, .. } => unit,
        }
    }

    /// The machine concerned.
    pub fn machine(&self) -> &'v str {
        match self {
            Decision::Place { machine, .. }
            | Decision::Unplace { machine, .. }
            | Decision::Update { machine, .. } => machine,
        }
    }

    /// Why.
    pub fn reason(&self) -> &Reason<'v> {
        match self {
            Decision::Place { reason, .. }
            | Decision::Unplace { reason, .. }
            | Decision::Update { reason, .. } => reason,
        }
    }
}

impl fmt::Display for Decision<'_> {
    /// `place web.service on 1a2b3c4d: least loaded machine that qualifies (0 units)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self {
            Decision::Place { .. } => "place",
            Decision::Unplace { .. } => "unplace",
            Decision::Update { .. } => "update",
        };
        write!(
            f,
            "{verb} {} on {}: {}",
            self.unit(),
            short_machine_id(self.machine()),
            self.reason()
        )
    }
}

/// Why a decision was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason<'v> {
    /// Placed on the least loaded machine that qualifies; `load` is its load before.
    LeastLoaded { load: usize },
    /// A global unit placed on a machine that qualifies.
    Global,
    /// Re-placed after `Replaces` moved it off `from` for `by`.
    Moved { from: &'v str, by: &'v str },
    /// The user unloaded it.
    Inactive,
    /// The unit no longer exists.
    Destroyed,
    /// The machine's lease expired.
    MachineGone,
    /// It can no longer run there.
    Excluded(Exclusion<'v>),
    /// `Replaces` ties it to `by`, which keeps this machine.
    Evicted { by: &'v str },
    /// A non-global unit keeps one assignment; this is another one (left from when it was
    /// global).
    Duplicate,
    /// The assignment is out of date.
    Stale(Staleness<'v>),
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::LeastLoaded { load } => {
                write!(f, "least loaded machine that qualifies ({load} units)")
            }
            Reason::Global => f.write_str("global unit; the machine qualifies"),
            Reason::Moved { from, by } => write!(
                f,
                "moved off {} for {by} (Replaces)",
                short_machine_id(from)
            ),
            Reason::Inactive => f.write_str("desired state is inactive"),
            Reason::Destroyed => f.write_str("the unit was destroyed"),
            Reason::MachineGone => f.write_str("the machine went away (its lease expired)"),
            Reason::Excluded(exclusion) => exclusion.fmt(f),
            Reason::Evicted { by } => write!(f, "Replaces: {by} takes this machine"),
            Reason::Duplicate => f.write_str("the unit is not global and keeps only one machine"),
            Reason::Stale(staleness) => staleness.fmt(f),
        }
    }
}

/// What changed since an assignment was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staleness<'v> {
    /// Old and new hash.
    pub hash: Option<(&'v str, &'v str)>,
    /// Old and new desired state.
    pub desired: Option<(DesiredState, DesiredState)>,
    /// Old and new unit revision.
    pub revision: Option<(i64, i64)>,
}

impl fmt::Display for Staleness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |hash: &'_ str| hash.get(..7).unwrap_or(hash).to_owned();
        let mut changes = Vec::new();
        if let Some((old, new)) = self.hash {
            changes.push(format!("hash {} → {}", short(old), short(new)));
        }
        if let Some((old, new)) = self.desired {
            changes.push(format!("desired state {old} → {new}"));
        }
        if let Some((old, new)) = self.revision {
            changes.push(format!("unit revision {old} → {new}"));
        }
        f.write_str(&changes.join(", "))
    }
}

/// A unit that wants a machine and got none in this pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unplaced<'v> {
    pub unit: &'v str,
    pub reason: Unplaceable<'v>,
}

/// Why a unit could not be placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unplaceable<'v> {
    /// Every candidate machine was ruled out; how many by each option. Empty: no machine is up.
    NoMachine {
        excluded: BTreeMap<&'static str, usize>,
    },
    /// `MachineID=` names no alive machine.
    NoSuchMachine { wanted: &'v str },
    /// A `MachineOf=` peer does not exist.
    PeerMissing { peer: &'v str },
    /// A `MachineOf=` peer is placed nowhere (inactive, or unplaceable itself).
    PeerNotScheduled { peer: &'v str },
    /// The unit's `MachineOf=` peers lead back to it: none of them can go first.
    Cycle { units: Vec<&'v str> },
}

impl fmt::Display for Unplaceable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unplaceable::NoMachine { excluded } if excluded.is_empty() => {
                f.write_str("no machine is up")
            }
            Unplaceable::NoMachine { excluded } => {
                let counts: Vec<String> = excluded
                    .iter()
                    .map(|(option, count)| format!("{option}: {count}"))
                    .collect();
                write!(
                    f,
                    "no machine qualifies (machines excluded by {})",
                    counts.join(", ")
                )
            }
            Unplaceable::NoSuchMachine { wanted } => {
                write!(f, "MachineID: no machine that is up matches {wanted}")
            }
            Unplaceable::PeerMissing { peer } => {
                write!(f, "MachineOf: peer {peer} does not exist")
            }
            Unplaceable::PeerNotScheduled { peer } => {
                write!(f, "MachineOf: peer {peer} is not scheduled anywhere")
            }
            Unplaceable::Cycle { units } => write!(
                f,
                "MachineOf: {} form a cycle, so none can be placed first",
                units.join(" → ")
            ),
        }
    }
}

/// The outcome of one scheduling pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule<'v> {
    /// In the order made: removals of assignments that are no longer wanted, removals found by
    /// re-checking the rest, global units, placements (with the moves they cause), then
    /// in-place updates.
    pub decisions: Vec<Decision<'v>>,
    /// Units left without a machine, by name.
    pub unplaced: Vec<Unplaced<'v>>,
}
