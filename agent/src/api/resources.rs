//! fleet's v1 resources: `units` (list, get, create/replace/set state, destroy), `state` and
//! `machines` (list, patch dynamic metadata).

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use unitgen::name::UnitName;
use unitgen::unit::Unit as CheckedUnit;

use super::server::{ApiError, ApiState};
use super::types::{file_of, Machine, MachinePage, PutUnit, StatePage, Unit, UnitPage};
use super::view::{self, RecordAt, UnitFacts};
use crate::cluster::model::{DesiredState, ReportedState, UnitRecord};
use crate::registry::{ClusterSnapshot, StateFilter};

/// Each unit's reports, by unit then machine.
async fn reports_by_unit(
    state: &ApiState,
    filter: StateFilter<'_>,
) -> Result<BTreeMap<String, BTreeMap<String, ReportedState>>, ApiError> {
    let mut by_unit: BTreeMap<String, BTreeMap<String, ReportedState>> = BTreeMap::new();
    for entry in state.registry()?.states(filter).await?.states {
        by_unit
            .entry(entry.unit)
            .or_default()
            .insert(entry.machine, entry.state);
    }
    Ok(by_unit)
}

fn shown_units(
    snapshot: &ClusterSnapshot,
    reports: &BTreeMap<String, BTreeMap<String, ReportedState>>,
    only: Option<&str>,
) -> Vec<Unit> {
    let assigned: BTreeMap<&str, &str> = snapshot
        .assignments
        .keys()
        .map(|(machine, unit)| (unit.as_str(), machine.as_str()))
        .collect();
    let none = BTreeMap::new();
    snapshot
        .units
        .iter()
        .filter(|(name, _)| only.is_none_or(|only| only == name.as_str()))
        .map(|(name, versioned)| {
            view::unit(UnitFacts {
                unit: RecordAt {
                    record: &versioned.value,
                    revision: versioned.mod_revision,
                },
                assigned: assigned.get(name.as_str()).copied(),
                reports: reports.get(name).unwrap_or(&none),
            })
        })
        .collect()
}

/// `GET /units`.
pub async fn list_units(State(state): State<ApiState>) -> Result<Json<UnitPage>, ApiError> {
    let snapshot = state.registry()?.snapshot_cluster().await?;
    let reports = reports_by_unit(&state, StateFilter::All).await?;
    Ok(Json(UnitPage {
        units: shown_units(&snapshot, &reports, None),
    }))
}

/// `GET /units/{name}`.
pub async fn get_unit(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Unit>, ApiError> {
    let registry = state.registry()?;
    // Asking before a `flotctl start` of a new unit is the common case: answer it from the one
    // key, and read the whole cluster (for the unit's machine) only for a unit that exists.
    if registry.unit(&name).await?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "unit does not exist"));
    }
    let snapshot = registry.snapshot_cluster().await?;
    let reports = reports_by_unit(&state, StateFilter::Unit(&name)).await?;
    shown_units(&snapshot, &reports, Some(&name))
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unit does not exist"))
}

/// `PUT /units/{name}`: create (options, unit absent), replace (options with another hash), or set
/// the desired state (no options, or the same ones).
pub async fn put_unit(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Result<Json<PutUnit>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    if let Some(given) = body.name.as_deref().filter(|given| *given != name) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("name in URL {name:?} differs from unit name in request body {given:?}"),
        ));
    }
    let registry = state.registry()?;
    let existing = registry.unit(&name).await?;
    if let Some(options) = &body.options {
        let text = file_of(&name, options).normalized();
        let checked = CheckedUnit::check(name.as_str(), &name, text.as_bytes()).map_err(|d| {
            let problems: Vec<String> = d.sorted().iter().map(ToString::to_string).collect();
            ApiError::new(StatusCode::BAD_REQUEST, problems.join("\n"))
        })?;
        let desired = body.desired_state.unwrap_or(DesiredState::Inactive);
        refuse_template_activation(&name, desired)?;
        let record = UnitRecord {
            name: name.clone(),
            hash: checked.hash().to_string(),
            desired_state: desired,
            contents: text,
        };
        match &existing {
            None => {
                registry.create_unit(&record).await?;
                return Ok(StatusCode::CREATED);
            }
            Some(current) if current.value.hash != record.hash => {
                registry.replace_unit(&record).await?;
                return Ok(StatusCode::CREATED);
            }
            Some(_) => {}
        }
    }
    let Some(current) = existing else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "unit does not exist and options field empty",
        ));
    };
    let Some(desired) = body.desired_state else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "must provide DesiredState to update existing unit",
        ));
    };
    refuse_template_activation(&current.value.name, desired)?;
    registry.set_desired_state(&name, desired).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// fleet's rule: a template (`foo@.service`) can only be `inactive`; its instances run.
fn refuse_template_activation(name: &str, desired: DesiredState) -> Result<(), ApiError> {
    let template = UnitName::parse(name).is_ok_and(|name| name.is_template());
    if template && desired != DesiredState::Inactive {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot activate template {name:?}"),
        ));
    }
    Ok(())
}

/// `DELETE /units/{name}`.
pub async fn delete_unit(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.registry()?.destroy_unit(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "unit does not exist"))
    }
}

/// The filters of `GET /state`.
#[derive(Debug, Deserialize)]
pub struct StateQuery {
    #[serde(rename = "machineID")]
    machine_id: Option<String>,
    #[serde(rename = "unitName")]
    unit_name: Option<String>,
}

/// `GET /state[?machineID=&unitName=]`.
pub async fn list_states(
    State(state): State<ApiState>,
    Query(query): Query<StateQuery>,
) -> Result<Json<StatePage>, ApiError> {
    let filter = match (&query.machine_id, &query.unit_name) {
        (Some(machine), _) => StateFilter::Machine(machine),
        (None, Some(unit)) => StateFilter::Unit(unit),
        (None, None) => StateFilter::All,
    };
    let states = state.registry()?.states(filter).await?.states;
    Ok(Json(StatePage {
        states: states
            .iter()
            .filter(|entry| query.unit_name.as_ref().is_none_or(|u| *u == entry.unit))
            .map(|entry| view::unit_state(&entry.machine, &entry.unit, &entry.state))
            .collect(),
    }))
}

/// `GET /machines`.
pub async fn list_machines(State(state): State<ApiState>) -> Result<Json<MachinePage>, ApiError> {
    let machines = state.registry()?.machines().await?.machines;
    Ok(Json(MachinePage {
        machines: machines
            .iter()
            .map(|m| view::machine(&m.record.id, &m.record.public_ip, &m.metadata))
            .collect::<Vec<Machine>>(),
    }))
}

/// One operation of `PATCH /machines` (fleet's shape: `value` is `{"value": "..."}`).
#[derive(Debug, Deserialize)]
pub struct MachineOp {
    op: String,
    path: String,
    #[serde(default)]
    value: Option<PatchValue>,
}

/// The value of a [`MachineOp`].
#[derive(Debug, Deserialize)]
pub struct PatchValue {
    value: String,
}

/// A checked metadata operation: machine, key, and the value (`None`: remove).
type MetadataChange = (String, String, Option<String>);

fn check_op(op: &MachineOp) -> Result<MetadataChange, ApiError> {
    let bad = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, message);
    let parts: Vec<&str> = op.path.trim_start_matches('/').split('/').collect();
    let [machine, "metadata", key] = parts.as_slice() else {
        return Err(bad("machine metadata path invalid"));
    };
    let valid_key = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if machine.is_empty() || !valid_key {
        return Err(bad("machine metadata path invalid"));
    }
    let value = match op.op.as_str() {
        "add" | "replace" => Some(
            op.value
                .as_ref()
                .map(|v| v.value.clone())
                .ok_or_else(|| bad("invalid value: add and replace require a value"))?,
        ),
        "remove" => None,
        _ => return Err(bad("invalid op: expect add, remove, or replace")),
    };
    Ok(((*machine).to_owned(), (*key).to_owned(), value))
}

/// `PATCH /machines`: every operation is checked first, then applied in order. `remove` hides
/// the key, configured or dynamic, as fleet did.
pub async fn patch_machines(
    State(state): State<ApiState>,
    body: Result<Json<Vec<MachineOp>>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(ops) = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let changes = ops.iter().map(check_op).collect::<Result<Vec<_>, _>>()?;
    let registry = state.registry()?;
    for (machine, key, value) in changes {
        registry
            .set_metadata(&machine, &key, value.as_deref().unwrap_or(""))
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: &str, path: &str, value: Option<&str>) -> MachineOp {
        MachineOp {
            op: op.into(),
            path: path.into(),
            value: value.map(|v| PatchValue { value: v.into() }),
        }
    }

    #[test]
    fn machine_patches_are_checked_as_fleet_did() {
        assert_eq!(
            check_op(&op("add", "/m1/metadata/disk", Some("ssd"))).unwrap(),
            ("m1".into(), "disk".into(), Some("ssd".into()))
        );
        assert_eq!(
            check_op(&op("remove", "/m1/metadata/disk", None))
                .unwrap()
                .2,
            None
        );
        let message = |op| check_op(&op).unwrap_err().message().to_owned();
        assert_eq!(
            message(op("add", "/m1/metadata/disk", None)),
            "invalid value: add and replace require a value"
        );
        assert_eq!(
            message(op("move", "/m1/metadata/disk", Some("x"))),
            "invalid op: expect add, remove, or replace"
        );
        assert_eq!(
            message(op("add", "/m1/labels/disk", Some("x"))),
            "machine metadata path invalid"
        );
        assert_eq!(
            message(op("add", "/m1/metadata/d!sk", Some("x"))),
            "machine metadata path invalid"
        );
    }
}
