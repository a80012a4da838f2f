//! The records the cluster keeps in etcd, in the JSON shapes they are stored in.
//!
//! Every record is small, self-describing JSON with fleet's API field names where fleet had one
//! (`desiredState`, `machineID`, `primaryIP`, `systemdActiveState`, …), so `etcdctl get` output
//! reads like fleet's API. Who writes what (one writer per key family):
//! - [`UnitRecord`]: the API (`flotctl submit/start/stop/…`), at `units/<name>`;
//! - [`MachineRecord`]: each agent for itself, under its lease, at `machines/<id>`;
//! - [`Assignment`]: the elected scheduler only, at `schedule/<machine>/<unit>`;
//! - [`ReportedState`]: the agent of that machine, under its lease, at `states/<machine>/<unit>`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a user asked for a unit: fleet's three target states, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    /// Known to the cluster, placed nowhere.
    Inactive,
    /// Placed on a machine and loaded into its systemd, not started.
    Loaded,
    /// Placed, loaded and started.
    Launched,
}

impl DesiredState {
    /// The state's name as fleet prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredState::Inactive => "inactive",
            DesiredState::Loaded => "loaded",
            DesiredState::Launched => "launched",
        }
    }
}

impl fmt::Display for DesiredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the three desired states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid desired state {0:?}: expected inactive, loaded or launched")]
pub struct InvalidDesiredState(pub String);

impl FromStr for DesiredState {
    type Err = InvalidDesiredState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inactive" => Ok(DesiredState::Inactive),
            "loaded" => Ok(DesiredState::Loaded),
            "launched" => Ok(DesiredState::Launched),
            other => Err(InvalidDesiredState(other.to_owned())),
        }
    }
}

/// A unit as submitted: `units/<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitRecord {
    /// The unit's name (`web.service`, `app@1.service`).
    pub name: String,
    /// fleet's content hash: SHA-1 hex of the normalized unit file.
    pub hash: String,
    /// What the user asked for.
    pub desired_state: DesiredState,
    /// The normalized unit file, `[X-Fleet]` included (as `flotctl cat` prints it).
    pub contents: String,
}

/// A machine's registration: `machines/<id>`, under the machine's lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineRecord {
    /// `/etc/machine-id` (32 hex digits).
    #[serde(rename = "id")]
    pub id: String,
    /// The address other machines and `flotctl` reach this machine's agent at.
    #[serde(rename = "primaryIP")]
    pub public_ip: String,
    /// The metadata from the machine's configuration (`[metadata]`).
    pub metadata: BTreeMap<String, String>,
    /// The agent's version.
    pub version: String,
    /// The machine runs units but never schedules (`disable_engine`).
    #[serde(default)]
    pub disable_engine: bool,
    /// The `host:port` of the agent's TCP API, when it serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_address: Option<String>,
}

impl MachineRecord {
    /// The first 8 characters of the ID, as fleet prints machines and matches `MachineID=`.
    pub fn short_id(&self) -> &str {
        short_machine_id(&self.id)
    }
}

/// The first 8 characters of a machine ID (all of it if shorter).
pub fn short_machine_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The metadata `MachineMetadata=` matches: the configured metadata with the dynamic metadata
/// (`metadata/<id>`, set through the API) laid over it; a dynamic value of `""` removes the key,
/// as in fleet.
pub fn effective_metadata(
    configured: &BTreeMap<String, String>,
    dynamic: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged = configured.clone();
    for (key, value) in dynamic {
        if value.is_empty() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

/// The scheduler's decision that a unit runs on a machine: `schedule/<machine>/<unit>`.
///
/// It carries everything the machine's agent needs, so an agent reads only its own
/// `schedule/<machine>/` prefix and is woken only by changes to its own units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// The unit's content hash.
    pub hash: String,
    /// `loaded` or `launched` (an inactive unit has no assignment).
    pub desired_state: DesiredState,
    /// The normalized unit file, as in [`UnitRecord::contents`].
    pub contents: String,
    /// The etcd mod revision of `units/<name>` this assignment was made from. Every `flotctl start`
    /// rewrites the unit record, so a new revision asks the agent to start the unit again even
    /// when it was already `launched` and has since failed (fleet's issue #1091).
    pub unit_revision: i64,
}

/// What a machine's systemd says of a unit: `states/<machine>/<unit>`, under the machine's lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedState {
    /// The hash of the unit the machine has loaded.
    pub hash: String,
    /// systemd's `LoadState` (`loaded`, `not-found`, …).
    #[serde(rename = "systemdLoadState")]
    pub load_state: String,
    /// systemd's `ActiveState` (`active`, `inactive`, `failed`, …).
    #[serde(rename = "systemdActiveState")]
    pub active_state: String,
    /// systemd's `SubState` (`running`, `dead`, `exited`, …).
    #[serde(rename = "systemdSubState")]
    pub sub_state: String,
    /// The [`Assignment::unit_revision`] the agent last started the unit for (0: never).
    #[serde(default)]
    pub launched_revision: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_states_round_trip_and_order() {
        for state in [
            DesiredState::Inactive,
            DesiredState::Loaded,
            DesiredState::Launched,
        ] {
            assert_eq!(state.as_str().parse::<DesiredState>(), Ok(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{state}\"")
            );
        }
        assert!(DesiredState::Inactive < DesiredState::Loaded);
        assert!(DesiredState::Loaded < DesiredState::Launched);
        assert_eq!(
            "running".parse::<DesiredState>().unwrap_err().to_string(),
            "invalid desired state \"running\": expected inactive, loaded or launched"
        );
    }

    #[test]
    fn records_use_fleets_field_names() {
        let machine = MachineRecord {
            id: "0123456789abcdef0123456789abcdef".into(),
            public_ip: "10.0.0.5".into(),
            metadata: BTreeMap::from([("disk".into(), "ssd".into())]),
            version: "0.1.0".into(),
            disable_engine: false,
            api_address: None,
        };
        let json = serde_json::to_value(&machine).unwrap();
        assert_eq!(json["primaryIP"], "10.0.0.5");
        assert_eq!(json["id"], "0123456789abcdef0123456789abcdef");
        assert_eq!(machine.short_id(), "01234567");
        let state = ReportedState {
            hash: "h".into(),
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            launched_revision: 7,
        };
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["systemdActiveState"], "active");
        assert_eq!(json["launchedRevision"], 7);
    }

    #[test]
    fn dynamic_metadata_overrides_and_empty_removes() {
        let configured = BTreeMap::from([
            ("region".to_owned(), "eu".to_owned()),
            ("disk".to_owned(), "hdd".to_owned()),
        ]);
        let dynamic = BTreeMap::from([
            ("disk".to_owned(), "ssd".to_owned()),
            ("region".to_owned(), String::new()),
            ("rack".to_owned(), "r1".to_owned()),
        ]);
        assert_eq!(
            effective_metadata(&configured, &dynamic),
            BTreeMap::from([
                ("disk".to_owned(), "ssd".to_owned()),
                ("rack".to_owned(), "r1".to_owned()),
            ])
        );
    }
}
