//! The scheduler's working copy of the cluster: a [`View`] indexed so that every check is cheap.
//!
//! Units and alive machines are numbered in name/ID order, so a `BTreeSet` of numbers iterates
//! in name/ID order. Each machine knows its units (for `MachineOf` and literal `Conflicts`
//! lookups) and, separately, the few units that carry `Conflicts`/`Replaces` patterns (the only
//! ones a newcomer must be matched against); machines sit in a set ordered by (load, ID), so the
//! least loaded one is the first, and so do the machines that meet each distinct
//! `MachineMetadata` requirement, so a unit that needs rare metadata does not walk past every
//! less loaded machine that lacks it. Placing or removing a unit updates all of it at once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use unitgen::glob::Glob;
use unitgen::name::UnitName;

use super::view::{UnitSpec, View};
use crate::cluster::model::{short_machine_id, DesiredState};

/// Machines ordered by (load, number): least loaded first, ties by ID.
type ByLoad = BTreeSet<(usize, usize)>;

/// One unit, with its constraints resolved against the other units.
#[derive(Debug)]
pub(super) struct UnitEntry<'v> {
    pub(super) name: &'v str,
    pub(super) spec: &'v UnitSpec,
    pub(super) template: bool,
    /// `MachineOf` peers, in the order of `spec.constraints.machine_of`; `None`: no such unit.
    pub(super) peers: Vec<Option<usize>>,
    /// `Conflicts` patterns without wildcards that name a known unit: (that unit, pattern).
    pub(super) conflict_names: Vec<(usize, &'v str)>,
    /// `Conflicts` patterns with wildcards.
    pub(super) conflict_globs: Vec<&'v Glob>,
    /// Its `MachineMetadata` requirement's group of machines, if it has one.
    pub(super) metadata_group: Option<usize>,
    /// The machines it is assigned to.
    pub(super) machines: BTreeSet<usize>,
}

impl UnitEntry<'_> {
    pub(super) fn global(&self) -> bool {
        self.spec.constraints.global
    }

    /// A unit that should sit on exactly one machine.
    pub(super) fn wants_one_machine(&self) -> bool {
        !self.global() && !self.template && self.spec.desired != DesiredState::Inactive
    }

    /// A global unit that should sit on every machine that qualifies.
    pub(super) fn wants_every_machine(&self) -> bool {
        self.global() && !self.template && self.spec.desired != DesiredState::Inactive
    }
}

/// One alive machine and what is assigned to it.
#[derive(Debug)]
pub(super) struct MachineEntry<'v> {
    pub(super) id: &'v str,
    pub(super) metadata: &'v BTreeMap<String, String>,
    pub(super) units: BTreeSet<usize>,
    /// The units here that have `Conflicts` patterns.
    pub(super) with_conflicts: BTreeSet<usize>,
    /// The non-global units here that have `Replaces` patterns.
    pub(super) with_replaces: BTreeSet<usize>,
}

/// The indexed cluster.
#[derive(Debug)]
pub(super) struct State<'v> {
    pub(super) units: Vec<UnitEntry<'v>>,
    pub(super) machines: Vec<MachineEntry<'v>>,
    unit_index: HashMap<&'v str, usize>,
    machine_index: HashMap<&'v str, usize>,
    /// Full and 8-character IDs → machines (what `MachineID=` may name).
    by_id: HashMap<&'v str, Vec<usize>>,
    by_load: ByLoad,
    /// Per distinct `MachineMetadata` requirement: the machines that meet it, by (load, ID).
    groups: Vec<ByLoad>,
    /// Machine → the groups it belongs to.
    machine_groups: Vec<Vec<usize>>,
    /// Unit → the units whose `MachineOf` names it.
    pub(super) followers: Vec<Vec<usize>>,
    /// Units moved by a `Replaces` in this pass: they are not moved twice.
    pub(super) moved: HashSet<usize>,
}

impl<'v> State<'v> {
    /// Every unit and every alive machine of `view`, with nothing assigned yet.
    pub(super) fn new(view: &'v View) -> State<'v> {
        let unit_index: HashMap<&str, usize> = view
            .units
            .keys()
            .enumerate()
            .map(|(index, name)| (name.as_str(), index))
            .collect();
        let mut followers = vec![Vec::new(); view.units.len()];
        let mut units: Vec<UnitEntry> = view
            .units
            .iter()
            .enumerate()
            .map(|(index, (name, spec))| {
                let peers: Vec<Option<usize>> = spec
                    .constraints
                    .machine_of
                    .iter()
                    .map(|peer| unit_index.get(peer.as_str()).copied())
                    .collect();
                for peer in peers.iter().flatten() {
                    followers[*peer].push(index);
                }
                let (literal, globs): (Vec<&Glob>, Vec<&Glob>) = spec
                    .constraints
                    .conflicts
                    .iter()
                    .partition(|glob| is_literal(glob.as_str()));
                UnitEntry {
                    name,
                    spec,
                    template: UnitName::parse(name).is_ok_and(|name| name.is_template()),
                    peers,
                    conflict_names: literal
                        .iter()
                        .filter_map(|glob| {
                            let unit = unit_index.get(glob.as_str())?;
                            Some((*unit, glob.as_str()))
                        })
                        .collect(),
                    conflict_globs: globs,
                    metadata_group: None,
                    machines: BTreeSet::new(),
                }
            })
            .collect();
        let machines: Vec<MachineEntry> = view
            .machines
            .iter()
            .filter(|(_, machine)| machine.alive)
            .map(|(id, machine)| MachineEntry {
                id,
                metadata: &machine.metadata,
                units: BTreeSet::new(),
                with_conflicts: BTreeSet::new(),
                with_replaces: BTreeSet::new(),
            })
            .collect();
        let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, machine) in machines.iter().enumerate() {
            by_id.entry(machine.id).or_default().push(index);
            let short = short_machine_id(machine.id);
            if short != machine.id {
                by_id.entry(short).or_default().push(index);
            }
        }
        let (groups, machine_groups) = metadata_groups(&mut units, &machines);
        State {
            units,
            groups,
            machine_groups,
            machine_index: machines
                .iter()
                .enumerate()
                .map(|(index, machine)| (machine.id, index))
                .collect(),
            by_load: (0..machines.len()).map(|index| (0, index)).collect(),
            machines,
            unit_index,
            by_id,
            followers,
            moved: HashSet::new(),
        }
    }

    /// The number of a unit.
    pub(super) fn unit(&self, name: &str) -> Option<usize> {
        self.unit_index.get(name).copied()
    }

    /// The number of an alive machine.
    pub(super) fn machine(&self, id: &str) -> Option<usize> {
        self.machine_index.get(id).copied()
    }

    /// The alive machines `MachineID=wanted` names: the one with that full ID, or those whose
    /// first 8 characters are `wanted` (fleet's `MatchID`).
    pub(super) fn machines_with_id(&self, wanted: &str) -> &[usize] {
        self.by_id.get(wanted).map_or(&[], Vec::as_slice)
    }

    /// Alive machines, least loaded first, ties by ID.
    pub(super) fn by_load(&self) -> impl Iterator<Item = usize> + '_ {
        self.by_load.iter().map(|(_, machine)| *machine)
    }

    /// The alive machines that meet a unit's `MachineMetadata`, least loaded first, ties by
    /// ID, with how many alive machines do not; `None` when it has no such requirement.
    pub(super) fn by_load_with_metadata(
        &self,
        unit: usize,
    ) -> Option<(usize, impl Iterator<Item = usize> + '_)> {
        let group = &self.groups[self.units[unit].metadata_group?];
        let others = self.machines.len() - group.len();
        Some((others, group.iter().map(|(_, machine)| *machine)))
    }

    /// How many alive machines a unit's `MachineID` and `MachineMetadata` leave it, before
    /// conflicts and load: what orders placement, the most constrained units first.
    pub(super) fn candidates(&self, unit: usize) -> usize {
        let entry = &self.units[unit];
        let by_metadata = entry
            .metadata_group
            .map_or(self.machines.len(), |group| self.groups[group].len());
        match &entry.spec.constraints.machine_id {
            Some(wanted) => self
                .by_id
                .get(wanted.as_str())
                .map_or(0, Vec::len)
                .min(by_metadata),
            None => by_metadata,
        }
    }

    /// How many units are assigned to a machine (global ones included).
    pub(super) fn load(&self, machine: usize) -> usize {
        self.machines[machine].units.len()
    }

    pub(super) fn is_on(&self, unit: usize, machine: usize) -> bool {
        self.machines[machine].units.contains(&unit)
    }

    pub(super) fn assign(&mut self, unit: usize, machine: usize) {
        let load = self.load(machine);
        let entry = &mut self.machines[machine];
        if !entry.units.insert(unit) {
            return;
        }
        let constraints = &self.units[unit].spec.constraints;
        if !constraints.conflicts.is_empty() {
            entry.with_conflicts.insert(unit);
        }
        if !constraints.replaces.is_empty() && !constraints.global {
            entry.with_replaces.insert(unit);
        }
        self.units[unit].machines.insert(machine);
        self.reorder(machine, load, load + 1);
    }

    pub(super) fn unassign(&mut self, unit: usize, machine: usize) {
        let load = self.load(machine);
        let entry = &mut self.machines[machine];
        if !entry.units.remove(&unit) {
            return;
        }
        entry.with_conflicts.remove(&unit);
        entry.with_replaces.remove(&unit);
        self.reorder(machine, load, load - 1);
        self.units[unit].machines.remove(&machine);
    }

    /// Moves a machine in every load-ordered set it is in.
    fn reorder(&mut self, machine: usize, old: usize, new: usize) {
        self.by_load.remove(&(old, machine));
        self.by_load.insert((new, machine));
        for &group in &self.machine_groups[machine] {
            self.groups[group].remove(&(old, machine));
            self.groups[group].insert((new, machine));
        }
    }
}

/// Groups the units' distinct `MachineMetadata` requirements, each with the machines that meet
/// it (found through a (key, value) → machines index, not by trying every machine); sets each
/// unit's group. Returns the groups (all loads 0) and each machine's groups.
fn metadata_groups(
    units: &mut [UnitEntry<'_>],
    machines: &[MachineEntry<'_>],
) -> (Vec<ByLoad>, Vec<Vec<usize>>) {
    let mut with_value: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (index, machine) in machines.iter().enumerate() {
        for (key, value) in machine.metadata {
            with_value.entry((key, value)).or_default().push(index);
        }
    }
    let mut group_of: HashMap<&BTreeMap<String, BTreeSet<String>>, usize> = HashMap::new();
    let mut groups: Vec<ByLoad> = Vec::new();
    let mut machine_groups = vec![Vec::new(); machines.len()];
    for unit in units.iter_mut() {
        let spec = unit.spec;
        let requirement = &spec.constraints.machine_metadata;
        if requirement.is_empty() {
            continue;
        }
        let group = *group_of.entry(requirement).or_insert_with(|| {
            let members = requirement
                .iter()
                .map(|(key, wanted)| {
                    wanted
                        .iter()
                        .filter_map(|value| with_value.get(&(key.as_str(), value.as_str())))
                        .flatten()
                        .copied()
                        .collect::<BTreeSet<usize>>()
                })
                .reduce(|all, these| &all & &these)
                .unwrap_or_default();
            for &machine in &members {
                machine_groups[machine].push(groups.len());
            }
            groups.push(members.into_iter().map(|machine| (0, machine)).collect());
            groups.len() - 1
        });
        unit.metadata_group = Some(group);
    }
    (groups, machine_groups)
}

/// A pattern without wildcards or escapes matches exactly the name it spells.
fn is_literal(pattern: &str) -> bool {
    !pattern.contains(['*', '?', '[', '\\'])
}
