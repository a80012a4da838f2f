//! The elected scheduler: campaign for the `leader` key under this machine's lease; while leading,
//! keep the assignments right: read the cluster at one revision, decide (`cluster::sched`), write
//! the decisions in guarded transactions, then sleep until a unit or machine changes.
//!
//! Reads happen on change only (a watch on `units/`, `machines/` and `metadata/` from the
//! snapshot's revision, debounced), plus a slow resync; nothing is polled. A write refused because
//! a unit moved on is decided again from a fresh read; a write refused because another machine
//! leads ends the leadership, and the campaign starts over.

use std::time::Duration;

use crate::cluster::model::Assignment;
use crate::cluster::sched::{self, Decision};
use crate::registry::{
    ClusterSnapshot, Leadership, Registry, RegistryError, ScheduleOp, Watch, WatchUpdate,
};

/// How long to gather more changes before deciding (a `flotctl start` of 50 units is one pass).
const DEBOUNCE: Duration = Duration::from_millis(20);
/// A full re-read even when nothing was heard, in case a watch was lost without notice.
const RESYNC: Duration = Duration::from_secs(300);
/// After an etcd error, wait this long before reading again.
const RETRY: Duration = Duration::from_secs(1);

/// Campaigns, leads until deposed, and campaigns again; returns only with the error that made
/// the lease unusable (the caller registers again and restarts this).
pub async fn run(registry: Registry, machine_id: String, lease: i64) -> RegistryError {
    loop {
        let leadership = match registry.campaign(&machine_id, lease).await {
            Ok(leadership) => leadership,
            Err(error) => return error,
        };
        tracing::info!("this machine is now the cluster's scheduler");
        let error = lead(&registry, &leadership).await;
        tracing::warn!("no longer the cluster's scheduler: {error}");
        if matches!(error, RegistryError::LeaseLost { .. }) {
            return error;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Leads until deposed or etcd fails; returns why it stopped.
async fn lead(registry: &Registry, leadership: &Leadership) -> RegistryError {
    let lost = registry.leadership_lost(leadership);
    tokio::pin!(lost);
    loop {
        let (snapshot, mut watches) = match read(registry).await {
            Ok(read) => read,
            Err(error) => return error,
        };
        match reconcile(registry, leadership, &snapshot).await {
            Ok(()) => {}
            Err(RegistryError::StaleUnits { .. }) => continue,
            Err(error) => return error,
        }
        tokio::select! {
            update = next_change(&mut watches) => {
                if let Err(error) = update {
                    tracing::warn!("scheduler: watch failed, reading the cluster again: {error}");
                    tokio::time::sleep(RETRY).await;
                }
                tokio::time::sleep(DEBOUNCE).await;
            }
            () = tokio::time::sleep(RESYNC) => {}
            result = &mut lost => {
                return match result {
                    Err(error) => error,
                    Ok(()) => RegistryError::Deposed {
                        batch: 0,
                        applied: 0,
                        now: "another machine, or nobody".into(),
                    },
                };
            }
        }
    }
}

/// The cluster at one revision, and watches on what the scheduler decides from, from the next.
async fn read(registry: &Registry) -> Result<(ClusterSnapshot, Vec<Watch>), RegistryError> {
    let snapshot = registry.snapshot_cluster().await?;
    let keys = registry.keys();
    let mut watches = Vec::new();
    for prefix in [keys.units(), keys.machines(), keys.metadata_all()] {
        watches.push(registry.watch(&prefix, snapshot.revision + 1).await?);
    }
    Ok((snapshot, watches))
}

/// Waits for the first change on any watch (a resync request counts as a change).
async fn next_change(watches: &mut [Watch]) -> Result<(), RegistryError> {
    let futures = watches.iter_mut().map(|watch| Box::pin(watch.next()));
    let (update, _, _) = futures_util::future::select_all(futures).await;
    match update? {
        WatchUpdate::Events(_) | WatchUpdate::Resync(_) => Ok(()),
    }
}

/// Decides on `snapshot` and writes the decisions.
async fn reconcile(
    registry: &Registry,
    leadership: &Leadership,
    snapshot: &ClusterSnapshot,
) -> Result<(), RegistryError> {
    let (view, invalid) = snapshot.view();
    for error in &invalid {
        tracing::warn!("scheduler: {error}");
    }
    let schedule = sched::schedule(&view);
    for unplaced in &schedule.unplaced {
        tracing::debug!(
            "scheduler: {} not placed: {}",
            unplaced.unit,
            unplaced.reason
        );
    }
    let ops: Vec<ScheduleOp> = schedule
        .decisions
        .iter()
        .map(|decision| op(snapshot, decision))
        .collect();
    if ops.is_empty() {
        return Ok(());
    }
    for decision in &schedule.decisions {
        tracing::info!(
            unit = decision.unit(),
            machine = decision.machine(),
            "scheduler: {}: {}",
            verb(decision),
            decision.reason()
        );
    }
    registry.apply(leadership, &ops).await.map(|_| ())
}

fn verb(decision: &Decision<'_>) -> &'static str {
    match decision {
        Decision::Place { .. } => "place",
        Decision::Unplace { .. } => "unplace",
        Decision::Update { .. } => "update",
    }
}

/// The etcd write of a decision.
fn op(snapshot: &ClusterSnapshot, decision: &Decision<'_>) -> ScheduleOp {
    let (machine, unit) = (decision.machine().to_owned(), decision.unit().to_owned());
    match decision {
        Decision::Unplace { .. } => ScheduleOp::Delete { machine, unit },
        Decision::Place { .. } | Decision::Update { .. } => {
            let record = &snapshot.units[&unit];
            ScheduleOp::Put {
                assignment: Assignment {
                    hash: record.value.hash.clone(),
                    desired_state: record.value.desired_state,
                    contents: record.value.contents.clone(),
                    unit_revision: record.mod_revision,
                },
                machine,
                unit,
            }
        }
    }
}
