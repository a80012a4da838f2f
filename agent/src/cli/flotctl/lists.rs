//! `list-units`, `list-unit-files` and `list-machines`: fleetctl's tables from the API.

use std::process::ExitCode;

use super::table::{parse_fields, render};
use super::{List, Result};
use crate::api::client::Client;
use crate::api::types::{Machine, MachinePage, StatePage, Unit, UnitPage, API_ROOT};
use crate::cluster::model::short_machine_id;

/// fleetctl's machine column: `<first 8 of the ID>.../<ip>`, or the full ID with `--full`.
pub fn machine_legend(id: &str, machines: &[Machine], full: bool) -> String {
    let mut legend = if full {
        id.to_owned()
    } else {
        format!("{}...", short_machine_id(id))
    };
    if let Some(machine) = machines.iter().find(|m| m.id == id) {
        if !machine.primary_ip.is_empty() {
            legend = format!("{legend}/{}", machine.primary_ip);
        }
    }
    legend
}

/// Every machine of the cluster.
pub async fn machines(client: &Client) -> Result<Vec<Machine>> {
    Ok(client
        .get::<MachinePage>(&format!("{API_ROOT}/machines"))
        .await?
        .machines)
}

/// Every unit of the cluster.
pub async fn units(client: &Client) -> Result<Vec<Unit>> {
    Ok(client
        .get::<UnitPage>(&format!("{API_ROOT}/units"))
        .await?
        .units)
}

fn hash_text(hash: &str, full: bool) -> String {
    if full {
        hash.to_owned()
    } else {
        hash.chars().take(7).collect()
    }
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

fn print(fields: &[&str], rows: &[Vec<String>], list: &List) -> ExitCode {
    print!("{}", render(fields, rows, list.no_legend));
    ExitCode::SUCCESS
}

/// `list-units`: one row per unit and machine that reports it.
pub async fn list_units(client: &Client, list: &List) -> Result<ExitCode> {
    let known = ["unit", "load", "active", "sub", "machine", "hash"];
    let fields = parse_fields(
        list.fields.as_deref().unwrap_or("unit,machine,active,sub"),
        &known,
    )?;
    let mut states = client
        .get::<StatePage>(&format!("{API_ROOT}/state"))
        .await?
        .states;
    states.sort_by(|a, b| (&a.name, &a.machine_id).cmp(&(&b.name, &b.machine_id)));
    let machines = machines(client).await?;
    let rows: Vec<Vec<String>> = states
        .iter()
        .map(|state| {
            fields
                .iter()
                .map(|field| match *field {
                    "unit" => state.name.clone(),
                    "load" => state.systemd_load_state.clone(),
                    "active" => state.systemd_active_state.clone(),
                    "sub" => state.systemd_sub_state.clone(),
                    "machine" => machine_legend(&state.machine_id, &machines, list.full),
                    _ => hash_text(&state.hash, list.full),
                })
                .collect()
        })
        .collect();
    Ok(print(&fields, &rows, list))
}

/// `list-unit-files`: one row per unit in the cluster.
pub async fn list_unit_files(client: &Client, list: &List) -> Result<ExitCode> {
    let known = [
        "unit", "global", "dstate", "state", "target", "tmachine", "hash", "desc",
    ];
    let fields = parse_fields(
        list.fields
            .as_deref()
            .unwrap_or("unit,hash,dstate,state,target"),
        &known,
    )?;
    if fields.contains(&"tmachine") {
        eprintln!("WARNING: the tmachine field is deprecated: use target");
    }
    let mut units = units(client).await?;
    units.sort_by(|a, b| a.name.cmp(&b.name));
    let machines = machines(client).await?;
    let rows: Vec<Vec<String>> = units
        .iter()
        .map(|unit| {
            fields
                .iter()
                .map(|field| match *field {
                    "unit" => unit.name.clone(),
                    "global" => unit.global.to_string(),
                    "dstate" => unit.desired_state.to_string(),
                    "state" if unit.global => "-".to_owned(),
                    "state" => dash_if_empty(&unit.current_state),
                    "target" | "tmachine" if unit.global => "global".to_owned(),
                    "target" | "tmachine" if unit.machine_id.is_empty() => "-".to_owned(),
                    "target" | "tmachine" => machine_legend(&unit.machine_id, &machines, list.full),
                    "hash" => hash_text(&unit.hash, list.full),
                    _ => dash_if_empty(&description(unit)),
                })
                .collect()
        })
        .collect();
    Ok(print(&fields, &rows, list))
}

fn description(unit: &Unit) -> String {
    unit.options
        .iter()
        .rfind(|o| o.section == "Unit" && o.name == "Description")
        .map(|o| o.value.clone())
        .unwrap_or_default()
}

/// `list-machines`: one row per machine with a lease.
pub async fn list_machines(client: &Client, list: &List) -> Result<ExitCode> {
    let fields = parse_fields(
        list.fields.as_deref().unwrap_or("machine,ip,metadata"),
        &["machine", "ip", "metadata"],
    )?;
    let machines = machines(client).await?;
    let rows: Vec<Vec<String>> = machines
        .iter()
        .map(|machine| {
            fields
                .iter()
                .map(|field| match *field {
                    "machine" if list.full => machine.id.clone(),
                    "machine" => format!("{}...", short_machine_id(&machine.id)),
                    "ip" => dash_if_empty(&machine.primary_ip),
                    _ => dash_if_empty(
                        &machine
                            .metadata
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                })
                .collect()
        })
        .collect();
    Ok(print(&fields, &rows, list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_legends_are_fleetctls() {
        let machines = [Machine {
            id: "113f16a7d3ef4a2d8a0f1e2d3c4b5a69".into(),
            primary_ip: "172.17.8.103".into(),
            metadata: Default::default(),
        }];
        assert_eq!(
            machine_legend(&machines[0].id, &machines, false),
            "113f16a7.../172.17.8.103"
        );
        assert_eq!(
            machine_legend(&machines[0].id, &machines, true),
            "113f16a7d3ef4a2d8a0f1e2d3c4b5a69/172.17.8.103"
        );
        assert_eq!(
            machine_legend("deadbeefcafe", &machines, false),
            "deadbeef..."
        );
    }
}
