//! The API's JSON shapes: fleet's v1 `Unit`, `UnitOption`, `UnitState`, `Machine` and error body,
//! and the conversion between a unit file and fleet's option list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use unitgen::syntax::{Section, UnitFile};

use crate::cluster::model::DesiredState;

/// The path every resource lives under.
pub const API_ROOT: &str = "/fleet/v1";

/// The path of a unit's resource: `/fleet/v1/units/<name>`, with the name percent-encoded where a
/// URL path needs it (`\x2d`-escaped names, spaces).
pub fn unit_path(name: &str) -> String {
    let mut path = format!("{API_ROOT}/units/");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@:".contains(&byte) {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path
}

/// One `Key=Value` of a unit file, with its section (fleet's `UnitOption`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitOption {
    /// `Unit`, `Service`, `X-Fleet`, …
    pub section: String,
    /// The key.
    pub name: String,
    /// The value.
    pub value: String,
}

/// A unit as the API shows it (fleet's `Unit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    /// `web.service`.
    pub name: String,
    /// The unit file, option by option.
    pub options: Vec<UnitOption>,
    /// What the user asked for.
    pub desired_state: DesiredState,
    /// Where the unit is: `inactive`, `loaded` or `launched`; empty for global units.
    pub current_state: String,
    /// The machine it is placed on; empty when unplaced and for global units.
    #[serde(rename = "machineID")]
    pub machine_id: String,
    /// fleet's content hash (an addition to fleet's shape).
    #[serde(default)]
    pub hash: String,
    /// True for `Global=true` units (an addition to fleet's shape).
    #[serde(default)]
    pub global: bool,
}

/// The body of `PUT /units/{name}`: create (with options), replace (different options) or set the
/// desired state (no options, or the same ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutUnit {
    /// Must equal the name in the URL when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The desired state; required unless the unit is being created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_state: Option<DesiredState>,
    /// The unit file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<UnitOption>>,
}

/// What a machine's systemd says of a unit (fleet's `UnitState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitState {
    /// The unit.
    pub name: String,
    /// The hash of the unit the machine loaded.
    pub hash: String,
    /// The machine.
    #[serde(rename = "machineID")]
    pub machine_id: String,
    /// systemd's LoadState.
    pub systemd_load_state: String,
    /// systemd's ActiveState.
    pub systemd_active_state: String,
    /// systemd's SubState.
    pub systemd_sub_state: String,
}

/// A machine of the cluster (fleet's `Machine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// `/etc/machine-id`.
    pub id: String,
    /// Its address.
    #[serde(rename = "primaryIP")]
    pub primary_ip: String,
    /// Its effective metadata.
    pub metadata: BTreeMap<String, String>,
}

/// `GET /units`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnitPage {
    /// Every unit, sorted by name.
    pub units: Vec<Unit>,
}

/// `GET /state`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatePage {
    /// One entry per (unit, machine), sorted by unit then machine.
    pub states: Vec<UnitState>,
}

/// `GET /machines`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachinePage {
    /// Every machine with a lease, sorted by ID.
    pub machines: Vec<Machine>,
}

/// `GET /units/{name}/status`: `systemctl status` of the unit on its machine, or, when no machine
/// runs it, why each machine cannot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The machine the output comes from; empty when the unit is not placed.
    #[serde(rename = "machineID")]
    pub machine_id: String,
    /// What to print.
    pub output: String,
    /// `systemctl status`'s exit status (3: not running); 1 for an unplaced unit.
    pub exit_code: i32,
}

/// Every error response: `{"error":{"code":N,"message":"..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The HTTP status code.
    pub code: u16,
    /// What went wrong, for a person.
    pub message: String,
}

/// A unit file as fleet's option list, in normalized order (sections merged in order of first
/// appearance).
pub fn options_of(file: &UnitFile) -> Vec<UnitOption> {
    let mut names: Vec<&str> = Vec::new();
    for section in file.sections() {
        if !names.contains(&section.name()) {
            names.push(section.name());
        }
    }
    names
        .iter()
        .flat_map(|name| {
            file.sections()
                .iter()
                .filter(move |section| section.name() == *name)
                .flat_map(|section| section.entries())
                .map(move |entry| UnitOption {
                    section: (*name).to_owned(),
                    name: entry.key().to_owned(),
                    value: entry.value().to_owned(),
                })
        })
        .collect()
}

/// The unit file an option list describes; its `normalized()` form is the stored unit.
pub fn file_of(name: &str, options: &[UnitOption]) -> UnitFile {
    let mut file = UnitFile::new(name);
    for option in options {
        let is_current = file
            .sections()
            .last()
            .is_some_and(|section| section.name() == option.section);
        if !is_current {
            file.push_section(Section::new(option.section.clone()));
        }
        file.sections_mut()
            .last_mut()
            .expect("a section was just pushed")
            .push(option.name.clone(), option.value.clone());
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_to_the_normalized_file() {
        let text = "[Unit]\nDescription=web\n# a comment\n[Service]\nExecStart=/bin/sleep 1000\n\
                    [X-Fleet]\nConflicts=web@*.service\n[Unit]\nAfter=db.service\n";
        let (file, diagnostics) = UnitFile::parse("web.service", text);
        assert!(diagnostics.is_empty());
        let options = options_of(&file);
        assert_eq!(options[0].section, "Unit");
        assert_eq!(options[1].name, "After");
        assert_eq!(options.last().unwrap().section, "X-Fleet");
        assert_eq!(
            file_of("web.service", &options).normalized(),
            file.normalized()
        );
    }

    #[test]
    fn unit_paths_encode_what_a_path_cannot_hold() {
        assert_eq!(unit_path("web@1.service"), "/fleet/v1/units/web@1.service");
        assert_eq!(
            unit_path("dev-disk\\x2dx.mount"),
            "/fleet/v1/units/dev-disk%5Cx2dx.mount"
        );
    }

    #[test]
    fn unit_uses_fleets_field_names() {
        let unit = Unit {
            name: "web.service".into(),
            options: vec![],
            desired_state: DesiredState::Launched,
            current_state: "launched".into(),
            machine_id: "m1".into(),
            hash: String::new(),
            global: false,
        };
        let json = serde_json::to_value(&unit).unwrap();
        assert_eq!(json["desiredState"], "launched");
        assert_eq!(json["machineID"], "m1");
        let put: PutUnit = serde_json::from_str(r#"{"desiredState":"loaded"}"#).unwrap();
        assert_eq!(put.desired_state, Some(DesiredState::Loaded));
        assert!(put.options.is_none());
    }
}
