//! One scheduling pass: from a [`View`] to the decisions that make it right.
//!
//! The steps, each applied to the in-memory state at once so later steps see the result:
//! 1. drop assignments nobody wants any more: the unit was destroyed, is a template, is
//!    inactive, or its machine went away;
//! 2. re-check every remaining assignment where it is (name order): a unit that no longer
//!    qualifies there is removed (fleet did this too, issue #959), and so are its `MachineOf`
//!    followers on that machine; a unit that still qualifies stays, whatever the load;
//! 3. place global units (name order) on every alive machine that qualifies;
//! 4. place every non-global unit that has no machine on the least loaded machine that
//!    qualifies: the most constrained first (fewest machines left by `MachineID` and
//!    `MachineMetadata`), then in name order, and a unit's `MachineOf` peers before it. So a unit
//!    that can run on one machine only gets it before a unit that `Conflicts` with it, whatever
//!    order they arrived in;
//! 5. rewrite assignments whose hash, desired state or unit revision is out of date.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::decision::{Decision, Reason, Schedule, Staleness, Unplaceable, Unplaced};
use super::fit::{Evict, Exclusion, Verdict};
use super::state::State;
use super::view::View;
use crate::cluster::model::DesiredState;

pub(super) struct Pass<'v> {
    view: &'v View,
    state: State<'v>,
    decisions: Vec<Decision<'v>>,
    unplaced: Vec<Unplaced<'v>>,
    /// Units that want a machine and have none yet.
    pending: BTreeSet<usize>,
    /// Unit moved by `Replaces` → (the machine it left, the unit it left for).
    moved_from: HashMap<usize, (usize, usize)>,
    /// (unit, machine) pairs placed or removed in this pass.
    touched: HashSet<(usize, usize)>,
    /// Units on a `MachineOf` cycle → the cycle.
    cycles: HashMap<usize, Vec<&'v str>>,
}

impl<'v> Pass<'v> {
    pub(super) fn run(view: &'v View) -> Schedule<'v> {
        let mut pass = Pass {
            view,
            state: State::new(view),
            decisions: Vec::new(),
            unplaced: Vec::new(),
            pending: BTreeSet::new(),
            moved_from: HashMap::new(),
            touched: HashSet::new(),
            cycles: HashMap::new(),
        };
        pass.keep_wanted();
        pass.recheck();
        pass.place_globals();
        pass.place_pending();
        pass.update_stale();
        pass.unplaced.sort_by(|a, b| a.unit.cmp(b.unit));
        Schedule {
            decisions: pass.decisions,
            unplaced: pass.unplaced,
        }
    }

    /// Step 1: loads the assignments that are still wanted, removes the others.
    fn keep_wanted(&mut self) {
        let dropped = load_wanted(self.view, &mut self.state);
        self.decisions.extend(dropped);
    }

    /// Step 2: every assignment re-checked where it is.
    fn recheck(&mut self) {
        for unit in 0..self.state.units.len() {
            let machines: Vec<usize> = self.state.units[unit].machines.iter().copied().collect();
            let mut kept = false;
            for machine in machines {
                if !self.state.is_on(unit, machine) {
                    continue;
                }
                let global = self.state.units[unit].global();
                let reason = if kept && !global {
                    Some(Reason::Duplicate)
                } else if let Err(exclusion) = self.state.constraints_fit(unit, machine) {
                    Some(Reason::Excluded(exclusion))
                } else if global {
                    None
                } else {
                    self.replaced_here(unit, machine)
                };
                match reason {
                    None => kept = true,
                    Some(reason) => self.unplace(unit, machine, reason),
                }
            }
        }
    }

    /// A unit that another unit on the same machine replaces (and not the other way round)
    /// must move: the replacer keeps the machine.
    fn replaced_here(&mut self, unit: usize, machine: usize) -> Option<Reason<'v>> {
        match self.state.replace_relation(unit, machine) {
            Some((by, false)) => {
                self.state.moved.insert(unit);
                self.moved_from.insert(unit, (machine, by));
                Some(Reason::Evicted {
                    by: self.state.units[by].name,
                })
            }
            _ => None,
        }
    }

    /// Step 3: global units on every machine where they qualify and are not yet.
    fn place_globals(&mut self) {
        for unit in 0..self.state.units.len() {
            if !self.state.units[unit].wants_every_machine() {
                continue;
            }
            for machine in 0..self.state.machines.len() {
                if !self.state.is_on(unit, machine)
                    && self.state.fit(unit, machine, Evict::Forbidden) == Verdict::Eligible
                {
                    self.place(unit, machine, Reason::Global);
                }
            }
        }
    }

    /// Step 4: every unit that wants a machine and has none.
    fn place_pending(&mut self) {
        for (unit, entry) in self.state.units.iter().enumerate() {
            if entry.wants_one_machine() && entry.machines.is_empty() {
                self.pending.insert(unit);
            }
        }
        let mut order: Vec<usize> = self.pending.iter().copied().collect();
        order.sort_by_key(|&unit| (self.state.candidates(unit), unit));
        for unit in order {
            if self.pending.remove(&unit) {
                self.place_with_peers(unit);
            }
        }
    }

    /// Places `root` after its pending `MachineOf` peers (depth first), so a follower lands
    /// next to peers placed in this very pass. Peers that lead back to a unit on the current
    /// path form a cycle: those units are left unplaced.
    fn place_with_peers(&mut self, root: usize) {
        let mut stack = vec![(root, false)];
        let mut path: Vec<usize> = Vec::new();
        while let Some((unit, peers_done)) = stack.pop() {
            if peers_done {
                path.pop();
                self.place_one(unit);
                continue;
            }
            path.push(unit);
            stack.push((unit, true));
            let peers: Vec<usize> = self.state.units[unit]
                .peers
                .iter()
                .flatten()
                .copied()
                .collect();
            for peer in peers.into_iter().rev() {
                if let Some(start) = path.iter().position(|&on_path| on_path == peer) {
                    let mut cycle: Vec<&'v str> = path[start..]
                        .iter()
                        .map(|&u| self.state.units[u].name)
                        .collect();
                    cycle.push(self.state.units[peer].name);
                    for &member in &path[start..] {
                        self.cycles.insert(member, cycle.clone());
                    }
                } else if self.pending.remove(&peer) {
                    stack.push((peer, false));
                }
            }
        }
    }

    /// Places one unit on the least loaded machine that qualifies, moving a unit it is tied to
    /// by `Replaces`; records why when no machine qualifies.
    fn place_one(&mut self, unit: usize) {
        let name = self.state.units[unit].name;
        if let Some(cycle) = self.cycles.get(&unit) {
            let reason = Unplaceable::Cycle {
                units: cycle.clone(),
            };
            self.unplaced.push(Unplaced { unit: name, reason });
            return;
        }
        let moved_from = self.moved_from.get(&unit).copied();
        let (exclude, evict) = match moved_from {
            Some((from, _)) => (Some(from), Evict::Forbidden),
            None => (None, Evict::Allowed),
        };
        match self.state.search(unit, exclude, evict) {
            Err(reason) => self.unplaced.push(Unplaced { unit: name, reason }),
            Ok((machine, verdict)) => {
                let reason = match moved_from {
                    Some((from, by)) => Reason::Moved {
                        from: self.state.machines[from].id,
                        by: self.state.units[by].name,
                    },
                    None => Reason::LeastLoaded {
                        load: self.state.load(machine),
                    },
                };
                self.place(unit, machine, reason);
                if let Verdict::Evicts { unit: other } = verdict {
                    if let Some(other) = self.state.unit(other) {
                        self.evict(other, machine, unit);
                    }
                }
            }
        }
    }

    /// Moves `unit` off `machine` for `by`, at once to the least loaded other machine that
    /// qualifies without moving anything else; its followers go back to pending.
    fn evict(&mut self, unit: usize, machine: usize, by: usize) {
        self.state.moved.insert(unit);
        self.moved_from.insert(unit, (machine, by));
        let reason = Reason::Evicted {
            by: self.state.units[by].name,
        };
        self.unplace(unit, machine, reason);
        self.pending.remove(&unit);
        self.place_one(unit);
    }

    fn place(&mut self, unit: usize, machine: usize, reason: Reason<'v>) {
        self.state.assign(unit, machine);
        self.touched.insert((unit, machine));
        self.decisions.push(Decision::Place {
            unit: self.state.units[unit].name,
            machine: self.state.machines[machine].id,
            reason,
        });
    }

    /// Removes `unit` from `machine`, and its `MachineOf` followers there with it.
    fn unplace(&mut self, unit: usize, machine: usize, reason: Reason<'v>) {
        let mut work = vec![(unit, reason)];
        while let Some((unit, reason)) = work.pop() {
            if !self.state.is_on(unit, machine) {
                continue;
            }
            self.state.unassign(unit, machine);
            self.touched.insert((unit, machine));
            self.decisions.push(Decision::Unplace {
                unit: self.state.units[unit].name,
                machine: self.state.machines[machine].id,
                reason,
            });
            let entry = &self.state.units[unit];
            if entry.wants_one_machine() && entry.machines.is_empty() {
                self.pending.insert(unit);
            }
            for &follower in self.state.followers[unit].iter().rev() {
                let peer = self.state.units[unit].name;
                work.push((follower, Reason::Excluded(Exclusion::MachineOf { peer })));
            }
        }
    }

    /// Step 5: assignments kept as they were but written from an older unit record.
    fn update_stale(&mut self) {
        let view = self.view;
        for (unit_name, machines) in &view.assignments {
            let Some(unit) = self.state.unit(unit_name) else {
                continue;
            };
            let spec = self.state.units[unit].spec;
            for (machine_id, placed) in machines {
                let Some(machine) = self.state.machine(machine_id) else {
                    continue;
                };
                if self.touched.contains(&(unit, machine)) || !self.state.is_on(unit, machine) {
                    continue;
                }
                let staleness = Staleness {
                    hash: (placed.hash != spec.hash)
                        .then_some((placed.hash.as_str(), spec.hash.as_str())),
                    desired: (placed.desired != spec.desired)
                        .then_some((placed.desired, spec.desired)),
                    revision: (placed.unit_revision != spec.unit_revision)
                        .then_some((placed.unit_revision, spec.unit_revision)),
                };
                if staleness.hash.is_some()
                    || staleness.desired.is_some()
                    || staleness.revision.is_some()
                {
                    self.decisions.push(Decision::Update {
                        unit: unit_name,
                        machine: machine_id,
                        reason: Reason::Stale(staleness),
                    });
                }
            }
        }
    }
}

/// Assigns in `state` every assignment of `view` that is still wanted; returns the removal of
/// each other one: its unit was destroyed, is a template or inactive, or its machine is gone.
pub(super) fn load_wanted<'v>(view: &'v View, state: &mut State<'v>) -> Vec<Decision<'v>> {
    let mut dropped = Vec::new();
    for (unit_name, machines) in &view.assignments {
        let unit = state.unit(unit_name);
        for machine_id in machines.keys() {
            let reason = match (unit, state.machine(machine_id)) {
                (None, _) => Reason::Destroyed,
                (Some(unit), _) if state.units[unit].template => {
                    Reason::Excluded(Exclusion::Template)
                }
                (Some(unit), _) if state.units[unit].spec.desired == DesiredState::Inactive => {
                    Reason::Inactive
                }
                (Some(_), None) => Reason::MachineGone,
                (Some(unit), Some(machine)) => {
                    state.assign(unit, machine);
                    continue;
                }
            };
            dropped.push(Decision::Unplace {
                unit: unit_name,
                machine: machine_id,
                reason,
            });
        }
    }
    dropped
}
