//! Waiting for units to reach a state, as fleetctl's `--block-attempts`/`--no-block` define it:
//! attempts of 2 seconds each (0: no limit), polling the API with two requests per round whatever
//! the number of units (fleetctl made one per unit), every 50 ms at first and less often as the
//! wait goes on (every 500 ms at most; fleetctl polled every 250 ms).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::lists::{machine_legend, units};
use super::{Blocking, Result};
use crate::api::client::Client;
use crate::api::types::{Machine, StatePage, Unit, UnitState, API_ROOT};

/// The first pause between polls: most changes land within a second.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between polls, so a long wait costs the agent little.
const LONGEST_PAUSE: Duration = Duration::from_millis(500);
/// fleetctl's length of one attempt.
const ATTEMPT: Duration = Duration::from_secs(2);
/// After this long, say how to find out why a unit is not placed.
const HINT_AFTER: Duration = Duration::from_secs(5);

/// The pause between polls: [`FIRST_PAUSE`], then half as long again each time, up to
/// [`LONGEST_PAUSE`].
struct Pause(Duration);

impl Pause {
    fn new() -> Pause {
        Pause(FIRST_PAUSE)
    }

    async fn sleep(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 3 / 2).min(LONGEST_PAUSE);
    }
}

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Unscheduled (`unload`).
    Inactive,
    /// Placed and loaded, not running (`load`, `stop`).
    Loaded,
    /// Placed, started, and systemd says `active` (`start`, `restart`).
    Running,
}

impl Goal {
    /// The current state (fleet's words) that reaches the goal.
    fn current_state(self) -> &'static str {
        match self {
            Goal::Inactive => "inactive",
            Goal::Loaded => "loaded",
            Goal::Running => "launched",
        }
    }
}

/// A unit to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its name.
    pub name: String,
    /// Global units are not waited for (they have no single machine or state).
    pub global: bool,
}

impl Target {
    /// The target for a unit as the API shows it.
    pub fn of(unit: &Unit) -> Target {
        Target {
            name: unit.name.clone(),
            global: unit.global,
        }
    }
}

/// The outcome of one unit's wait in one round.
enum Progress {
    Waiting,
    Reached(String),
    Failed(String),
}

fn progress(unit: &Unit, goal: Goal, states: &[UnitState], legend: &str) -> Progress {
    let current = if unit.current_state.is_empty() {
        "inactive"
    } else {
        unit.current_state.as_str()
    };
    if current != goal.current_state() {
        return Progress::Waiting;
    }
    if goal == Goal::Inactive {
        return Progress::Reached(format!("Unit {} inactive", unit.name));
    }
    let reached = Progress::Reached(format!("Unit {} {current} on {legend}", unit.name));
    if goal != Goal::Running {
        return reached;
    }
    let state = states
        .iter()
        .find(|s| s.name == unit.name && s.machine_id == unit.machine_id);
    match state.map(|s| (s.systemd_active_state.as_str(), s.systemd_sub_state.as_str())) {
        Some(("active", _)) => reached,
        Some(("failed", sub)) => Progress::Failed(format!(
            "Unit {} failed to start on {legend}: systemd says failed ({sub}); see `flotctl status {}` and `flotctl journal {}`",
            unit.name, unit.name, unit.name
        )),
        _ => Progress::Waiting,
    }
}

/// Waits until every unit of `wanted` reaches `goal`, printing fleetctl's lines (`verb` is the
/// command's, as in `Triggered unit X start`); exit status 1 when a unit failed or the attempts
/// ran out.
pub async fn until(
    client: &Client,
    wanted: &[Target],
    (goal, verb): (Goal, &str),
    blocking: Blocking,
) -> Result<ExitCode> {
    let mut pending: Vec<&Target> = Vec::new();
    for unit in wanted {
        if unit.global {
            println!("Triggered global unit {} {}", unit.name, verb);
        } else if blocking.no_block {
            println!("Triggered unit {} {}", unit.name, verb);
        } else {
            pending.push(unit);
        }
    }
    let started = Instant::now();
    let deadline =
        (blocking.block_attempts > 0).then(|| started + ATTEMPT * blocking.block_attempts);
    let mut hinted = false;
    let mut failed = false;
    let mut machines: Vec<Machine> = Vec::new();
    let mut pause = Pause::new();
    while !pending.is_empty() {
        let current: BTreeMap<String, Unit> = units(client)
            .await?
            .into_iter()
            .map(|u| (u.name.clone(), u))
            .collect();
        let states = if goal == Goal::Running {
            client
                .get::<StatePage>(&format!("{API_ROOT}/state"))
                .await?
                .states
        } else {
            Vec::new()
        };
        let mut still = Vec::new();
        for unit in pending {
            let Some(now) = current.get(&unit.name) else {
                anyhow::bail!("unit {} was destroyed while waiting for it", unit.name);
            };
            if !now.machine_id.is_empty() && !machines.iter().any(|m| m.id == now.machine_id) {
                // A machine not seen yet (or none read yet): its address names it.
                machines = super::lists::machines(client).await?;
            }
            let legend = machine_legend(&now.machine_id, &machines, false);
            match progress(now, goal, &states, &legend) {
                Progress::Reached(line) => println!("{line}"),
                Progress::Failed(line) => {
                    eprintln!("{line}");
                    failed = true;
                }
                Progress::Waiting => {
                    if !hinted
                        && now.machine_id.is_empty()
                        && goal != Goal::Inactive
                        && started.elapsed() >= HINT_AFTER
                    {
                        eprintln!(
                            "Unit {} is not placed on any machine yet: `flotctl status {}` says why",
                            unit.name, unit.name
                        );
                        hinted = true;
                    }
                    still.push(unit);
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            for unit in &pending {
                eprintln!(
                    "timed out waiting for unit {} to report state {}",
                    unit.name,
                    goal.current_state()
                );
            }
            return Ok(ExitCode::FAILURE);
        }
        pause.sleep().await;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Waits until no machine reports any of the destroyed units any more.
pub async fn until_gone(client: &Client, names: &[String], blocking: Blocking) -> Result<()> {
    let names: Vec<String> = names
        .iter()
        .map(|n| super::files::argument(n).name)
        .collect();
    let deadline =
        (blocking.block_attempts > 0).then(|| Instant::now() + ATTEMPT * blocking.block_attempts);
    let mut pause = Pause::new();
    loop {
        let states = client
            .get::<StatePage>(&format!("{API_ROOT}/state"))
            .await?
            .states;
        let left: Vec<&UnitState> = states.iter().filter(|s| names.contains(&s.name)).collect();
        if left.is_empty() {
            return Ok(());
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            anyhow::bail!(
                "timed out waiting for {} to be unloaded from its machine",
                left[0].name
            );
        }
        pause.sleep().await;
    }
}
