//! Can this unit run on that machine? fleet's `AbleToRun`, one answer with its reason, and the
//! search for the least loaded machine where the answer is yes.
//!
//! The checks run in fleet's order and the first that fails is the answer: `MachineID`,
//! `MachineMetadata`, `MachineOf`, `Conflicts`, then `Replaces`. A unit is never checked
//! against itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::decision::Unplaceable;
use super::state::State;

/// The option names exclusions are counted under ([`Exclusion::option`]).
const METADATA: &str = "MachineMetadata";
const REPLACES: &str = "Replaces";

/// Whether a unit may be placed on a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<'v> {
    /// Every constraint holds.
    Eligible,
    /// Every constraint holds, and placing the unit here moves `unit` to another machine
    /// (`Replaces`, in either direction).
    Evicts {
        /// The unit that has to go.
        unit: &'v str,
    },
    /// The first constraint that rules the machine out.
    Excluded(Exclusion<'v>),
}

impl fmt::Display for Verdict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Eligible => f.write_str("can run here"),
            Verdict::Evicts { unit } => {
                write!(f, "can run here; Replaces: {unit} would move elsewhere")
            }
            Verdict::Excluded(exclusion) => exclusion.fmt(f),
        }
    }
}

/// Why a unit cannot run on a machine, in words a user understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exclusion<'v> {
    /// The machine holds no lease.
    Down,
    /// Templates (`foo@.service`) run nowhere.
    Template,
    /// `MachineID=` names another machine.
    MachineId {
        /// The ID the unit is pinned to.
        wanted: &'v str,
    },
    /// `MachineMetadata=` asks for a value the machine lacks.
    Metadata {
        /// The first key (in key order) that does not match.
        key: &'v str,
        /// The values allowed for it.
        wanted: &'v BTreeSet<String>,
        /// The machine's value, if it has the key.
        has: Option<&'v str>,
    },
    /// A `MachineOf=` peer is not assigned here.
    MachineOf {
        /// The missing peer.
        peer: &'v str,
    },
    /// A unit here conflicts with this one.
    Conflicts {
        /// The unit already here.
        unit: &'v str,
        /// The pattern that matched.
        pattern: &'v str,
        /// The pattern is the other unit's (it matched this unit's name), not this unit's.
        theirs: bool,
    },
    /// A unit here is tied to this one by `Replaces` and cannot move (nowhere else qualifies,
    /// or it was already moved in this pass).
    Replaces {
        /// The unit that stays.
        unit: &'v str,
    },
}

impl Exclusion<'_> {
    /// The option (or condition) responsible, to count exclusions by.
    pub fn option(&self) -> &'static str {
        match self {
            Exclusion::Down => "down",
            Exclusion::Template => "template",
            Exclusion::MachineId { .. } => "MachineID",
            Exclusion::Metadata { .. } => METADATA,
            Exclusion::MachineOf { .. } => "MachineOf",
            Exclusion::Conflicts { .. } => "Conflicts",
            Exclusion::Replaces { .. } => REPLACES,
        }
    }
}

impl fmt::Display for Exclusion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exclusion::Down => f.write_str("the machine is down (its lease expired)"),
            Exclusion::Template => f.write_str("templates are never placed"),
            Exclusion::MachineId { wanted } => {
                write!(f, "MachineID: the unit is pinned to {wanted}")
            }
            Exclusion::Metadata { key, wanted, has } => {
                let wanted: Vec<String> = wanted.iter().map(|value| format!("{key}={value}")).collect();
                write!(f, "MachineMetadata requires {}, ", wanted.join(" or "))?;
                match has {
                    Some(value) => write!(f, "machine has {key}={value}"),
                    None => write!(f, "machine has no {key}"),
                }
            }
            Exclusion::MachineOf { peer } => {
                write!(f, "MachineOf: peer {peer} is not scheduled here")
            }
            Exclusion::Conflicts {
                unit,
                pattern,
                theirs: false,
            } => write!(f, "Conflicts: {unit} is already there (pattern {pattern})"),
            Exclusion::Conflicts {
                unit,
                pattern,
                theirs: true,
            } => write!(
                f,
                "Conflicts: {unit} is already there and conflicts with this unit (its pattern {pattern})"
            ),
            Exclusion::Replaces { unit } => write!(
                f,
                "Replaces: {unit} is there and cannot be moved elsewhere"
            ),
        }
    }
}

/// May a placement move another unit away (`Replaces`)?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Evict {
    Allowed,
    /// Used when re-placing a unit that was just moved, so moves never chain.
    Forbidden,
}

impl<'v> State<'v> {
    /// Every check of a unit on a machine, `Replaces` included.
    ///
    /// A `Replaces` relation (one direction only; both directions is circular and ignored, as
    /// in fleet) between `unit` and a non-global unit already on the machine makes that unit
    /// move, with two limits that keep passes from undoing each other: a unit moves at most
    /// once per pass, and when the unit already there is the replacer (its pattern names the
    /// newcomer), it moves only if another machine qualifies for it.
    pub(super) fn fit(&self, unit: usize, machine: usize, evict: Evict) -> Verdict<'v> {
        if let Err(exclusion) = self.constraints_fit(unit, machine) {
            return Verdict::Excluded(exclusion);
        }
        if self.units[unit].global() {
            return Verdict::Eligible;
        }
        let Some((other, newcomer_replaces)) = self.replace_relation(unit, machine) else {
            return Verdict::Eligible;
        };
        let name = self.units[other].name;
        let movable = evict == Evict::Allowed
            && !self.moved.contains(&other)
            && (newcomer_replaces || self.search(other, Some(machine), Evict::Forbidden).is_ok());
        if movable {
            Verdict::Evicts { unit: name }
        } else {
            Verdict::Excluded(Exclusion::Replaces { unit: name })
        }
    }

    /// fleet's checks but `Replaces`: `MachineID`, `MachineMetadata`, `MachineOf`, `Conflicts`.
    pub(super) fn constraints_fit(&self, unit: usize, machine: usize) -> Result<(), Exclusion<'v>> {
        let entry = &self.units[unit];
        let here = &self.machines[machine];
        let constraints = &entry.spec.constraints;
        if entry.template {
            return Err(Exclusion::Template);
        }
        if let Some(wanted) = &constraints.machine_id {
            if !self.machines_with_id(wanted).contains(&machine) {
                return Err(Exclusion::MachineId { wanted });
            }
        }
        for (key, wanted) in &constraints.machine_metadata {
            let has = here.metadata.get(key).map(String::as_str);
            if !has.is_some_and(|value| wanted.contains(value)) {
                return Err(Exclusion::Metadata { key, wanted, has });
            }
        }
        for (peer, index) in constraints.machine_of.iter().zip(&entry.peers) {
            if !index.is_some_and(|index| here.units.contains(&index)) {
                return Err(Exclusion::MachineOf { peer });
            }
        }
        self.conflict(unit, machine)
    }

    /// The first unit on `machine` that conflicts with `unit`, either way round.
    fn conflict(&self, unit: usize, machine: usize) -> Result<(), Exclusion<'v>> {
        let entry = &self.units[unit];
        let here = &self.machines[machine];
        let conflict = |other: usize, pattern: &'v str, theirs: bool| Exclusion::Conflicts {
            unit: self.units[other].name,
            pattern,
            theirs,
        };
        for &(other, pattern) in &entry.conflict_names {
            if other != unit && here.units.contains(&other) {
                return Err(conflict(other, pattern, false));
            }
        }
        if !entry.conflict_globs.is_empty() {
            for &other in here.units.iter().filter(|&&other| other != unit) {
                let name = self.units[other].name;
                if let Some(glob) = entry.conflict_globs.iter().find(|g| g.matches(name)) {
                    return Err(conflict(other, glob.as_str(), false));
                }
            }
        }
        for &other in here.with_conflicts.iter().filter(|&&other| other != unit) {
            let theirs = &self.units[other].spec.constraints.conflicts;
            if let Some(glob) = theirs.iter().find(|g| g.matches(entry.name)) {
                return Err(conflict(other, glob.as_str(), true));
            }
        }
        Ok(())
    }

    /// The first non-global unit on `machine` tied to `unit` by `Replaces` in exactly one
    /// direction, and whether it is `unit` that replaces it.
    pub(super) fn replace_relation(&self, unit: usize, machine: usize) -> Option<(usize, bool)> {
        let entry = &self.units[unit];
        let here = &self.machines[machine];
        let replaces = |by: usize, name: &str| {
            let patterns = &self.units[by].spec.constraints.replaces;
            patterns.iter().any(|glob| glob.matches(name))
        };
        let candidates: Box<dyn Iterator<Item = &usize>> =
            if entry.spec.constraints.replaces.is_empty() {
                Box::new(here.with_replaces.iter())
            } else {
                Box::new(here.units.iter())
            };
        candidates
            .copied()
            .filter(|&other| other != unit && !self.units[other].global())
            .find_map(|other| {
                let forward = replaces(unit, self.units[other].name);
                let backward = replaces(other, entry.name);
                (forward != backward).then_some((other, forward))
            })
    }

    /// The least loaded machine (ties by ID) where `unit` may run, other than `exclude`.
    pub(super) fn search(
        &self,
        unit: usize,
        exclude: Option<usize>,
        evict: Evict,
    ) -> Result<(usize, Verdict<'v>), Unplaceable<'v>> {
        let entry = &self.units[unit];
        let constraints = &entry.spec.constraints;
        let mut first_peer = None;
        for (peer, index) in constraints.machine_of.iter().zip(&entry.peers) {
            match index {
                None => return Err(Unplaceable::PeerMissing { peer }),
                Some(index) if self.units[*index].machines.is_empty() => {
                    return Err(Unplaceable::PeerNotScheduled { peer })
                }
                Some(index) => {
                    first_peer.get_or_insert(*index);
                }
            }
        }
        let mut excluded: BTreeMap<&'static str, usize> = BTreeMap::new();
        let candidates: Box<dyn Iterator<Item = usize> + '_> = if let Some(first) = first_peer {
            // Only where the first peer is; `fit` checks the others.
            let machines = self.units[first].machines.iter().copied();
            Box::new(self.least_loaded(machines).into_iter())
        } else if let Some(wanted) = &constraints.machine_id {
            let machines = self.machines_with_id(wanted);
            if machines.is_empty() {
                return Err(Unplaceable::NoSuchMachine { wanted });
            }
            Box::new(self.least_loaded(machines.iter().copied()).into_iter())
        } else if let Some((others, machines)) = self.by_load_with_metadata(unit) {
            // The machines outside the group fail `MachineMetadata`: count them unvisited.
            if others > 0 {
                excluded.insert(METADATA, others);
            }
            Box::new(machines)
        } else {
            Box::new(self.by_load())
        };
        for machine in candidates {
            if Some(machine) == exclude {
                *excluded.entry(REPLACES).or_default() += 1;
                continue;
            }
            match self.fit(unit, machine, evict) {
                Verdict::Excluded(exclusion) => {
                    *excluded.entry(exclusion.option()).or_default() += 1
                }
                verdict => return Ok((machine, verdict)),
            }
        }
        Err(Unplaceable::NoMachine { excluded })
    }

    /// `machines` ordered by (load, ID).
    fn least_loaded(&self, machines: impl Iterator<Item = usize>) -> Vec<usize> {
        let mut ordered: Vec<(usize, usize)> = machines.map(|m| (self.load(m), m)).collect();
        ordered.sort_unstable();
        ordered.into_iter().map(|(_, machine)| machine).collect()
    }
}
