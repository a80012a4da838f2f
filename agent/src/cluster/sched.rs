//! The elected scheduler's decisions: which unit runs on which machine.
//!
//! [`schedule`] is a pure function of a [`View`] (machines, units, current assignments) to the
//! [`Decision`]s that make the assignments right, each with a [`Reason`]; [`explain`] tells,
//! machine by machine, why a unit can or cannot run there (`flotctl status`). No I/O: the
//! caller reads etcd into a `View` and turns decisions into revision-guarded transactions.
//!
//! The semantics are fleet's engine (`AbleToRun`, least-loaded placement), with these changes:
//! - **one pass is enough.** A `MachineOf` follower is placed after its peers in the same pass,
//!   and follows a peer that moves in the same pass (fleet relied on later passes); peers that
//!   name each other form a cycle and stay unplaced, with that reason;
//! - **nothing healthy moves.** A unit that still qualifies where it is stays there, however
//!   loaded the machine (no rebalancing). One that no longer does (metadata changed, a peer
//!   moved, a conflicting unit arrived by a content change) is removed and placed again at
//!   once; fleet did this too (issue #959);
//! - **assignments are updated in place.** A new hash, desired state or unit revision rewrites
//!   the assignment on its machine (`Update`), never moves it;
//! - **`Replaces` moves are checked.** fleet put the moved unit on the least loaded other
//!   machine without any check; here it goes to the least loaded other machine where it
//!   qualifies (and where it moves nothing else), or stays unplaced. Placing X on a machine
//!   holding Y, where X replaces Y or Y replaces X (not both: circular, ignored), moves Y. To
//!   keep passes from undoing each other, a unit moves at most once per pass, and when Y is
//!   the replacer, X may take the machine only if Y qualifies elsewhere; when X and Y already
//!   share a machine, the replaced one moves. Global units take no part in `Replaces`;
//! - **globals are decided here**, once per machine and in name order (fleet left them to each
//!   agent and to Go's map order): the leader writes one assignment per machine that
//!   qualifies (metadata, no conflict with the units already there).
//!
//! Load is the number of units assigned to a machine, global ones included; ties go to the
//! lowest machine ID. Every decision is applied to the in-memory state as it is made, so the
//! next one sees the new load. The same view always gives the same decisions in the same order.

mod decision;
mod fit;
mod pass;
mod state;
mod view;

#[cfg(test)]
mod tests;

pub use decision::{Decision, Reason, Schedule, Staleness, Unplaceable, Unplaced};
pub use fit::{Exclusion, Verdict};
pub use view::{Machine, Placed, UnitSpec, View, ViewError};

/// Decides what to place, remove and rewrite so the assignments match the units.
pub fn schedule(view: &View) -> Schedule<'_> {
    pass::Pass::run(view)
}

/// For each machine of `view` (ID order), whether `unit` may run there as the cluster stands,
/// and if not, the first constraint that rules it out. Empty when the unit does not exist.
///
/// ```
/// use agent::cluster::sched::{explain, View};
/// assert!(explain(&View::default(), "web.service").is_empty());
/// ```
pub fn explain<'v>(view: &'v View, unit: &str) -> Vec<(&'v str, Verdict<'v>)> {
    let mut state = state::State::new(view);
    pass::load_wanted(view, &mut state);
    let Some(index) = state.unit(unit) else {
        return Vec::new();
    };
    view.machines
        .keys()
        .map(|id| {
            let verdict = match state.machine(id) {
                Some(machine) => state.fit(index, machine, fit::Evict::Allowed),
                None => Verdict::Excluded(Exclusion::Down),
            };
            (id.as_str(), verdict)
        })
        .collect()
}
