//! What the API shows, computed from what etcd holds: fleet's `currentState` and `machineID` of a
//! unit from its record, its assignment and the states machines report; fleet's `UnitState` and
//! `Machine` shapes. Pure: the server reads etcd, this decides.

use std::collections::BTreeMap;

use unitgen::fleet;
use unitgen::name::UnitName;
use unitgen::syntax::UnitFile;

use super::types::{options_of, Machine, Unit, UnitState};
use crate::cluster::model::{short_machine_id, DesiredState, ReportedState, UnitRecord};
use crate::cluster::sched;

/// A unit's record as read, with the mod revision of `units/<name>`.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt<'a> {
    /// The record.
    pub record: &'a UnitRecord,
    /// Its etcd mod revision.
    pub revision: i64,
}

/// systemd active states in which the unit's processes run (or are being started or stopped).
fn is_running(active_state: &str) -> bool {
    matches!(
        active_state,
        "active" | "activating" | "reloading" | "deactivating"
    )
}

/// fleet's current state of a unit from the report of the machine that has it: `inactive` until a
/// machine reports the unit's current content; `launched` once that machine started it for the
/// latest request (or it still runs while a stop is pending); `loaded` otherwise.
pub fn current_state(unit: RecordAt<'_>, report: Option<&ReportedState>) -> &'static str {
    let Some(report) = report.filter(|r| r.hash == unit.record.hash) else {
        return "inactive";
    };
    let running = is_running(&report.active_state);
    match unit.record.desired_state {
        DesiredState::Launched if report.launched_revision >= unit.revision => "launched",
        DesiredState::Launched => "loaded",
        _ if running => "launched",
        _ => "loaded",
    }
}

/// Everything the API knows of one unit.
#[derive(Debug, Clone, Copy)]
pub struct UnitFacts<'a> {
    /// Its record.
    pub unit: RecordAt<'a>,
    /// A machine the scheduler assigned it to (for a global unit, any of them: unused).
    pub assigned: Option<&'a str>,
    /// Each machine's report of it.
    pub reports: &'a BTreeMap<String, ReportedState>,
}

/// Whether the unit in `file` (named `name`) says `Global=true`; global units are on every
/// qualifying machine and have no single state or machine.
fn is_global(file: &UnitFile, name: &str) -> bool {
    UnitName::parse(name).is_ok_and(|name| fleet::constraints(file, &name).0.global)
}

/// fleet's `Unit` for a unit (its record parsed once, for its options and `Global=`).
pub fn unit(facts: UnitFacts<'_>) -> Unit {
    let record = facts.unit.record;
    let (file, _) = UnitFile::parse(record.name.as_str(), &record.contents);
    let global = is_global(&file, &record.name);
    let (current_state, machine_id) = if global {
        (String::new(), String::new())
    } else {
        // The assigned machine's report; while an unload is pending, the machine still reporting it.
        let reporter = facts
            .assigned
            .or_else(|| facts.reports.keys().next().map(String::as_str));
        let report = reporter.and_then(|machine| facts.reports.get(machine));
        (
            current_state(facts.unit, report).to_owned(),
            facts.assigned.unwrap_or_default().to_owned(),
        )
    };
    Unit {
        name: record.name.clone(),
        options: options_of(&file),
        desired_state: record.desired_state,
        current_state,
        machine_id,
        hash: record.hash.clone(),
        global,
    }
}

/// fleet's `UnitState` for a machine's report of a unit.
pub fn unit_state(machine: &str, unit: &str, report: &ReportedState) -> UnitState {
    UnitState {
        name: unit.to_owned(),
        hash: report.hash.clone(),
        machine_id: machine.to_owned(),
        systemd_load_state: report.load_state.clone(),
        systemd_active_state: report.active_state.clone(),
        systemd_sub_state: report.sub_state.clone(),
    }
}

/// fleet's `Machine`.
pub fn machine(id: &str, public_ip: &str, metadata: &BTreeMap<String, String>) -> Machine {
    Machine {
        id: id.to_owned(),
        primary_ip: public_ip.to_owned(),
        metadata: metadata.clone(),
    }
}

/// What `flotctl status` prints for a unit no machine runs: for each machine, whether the unit
/// could run there and if not, the first constraint that rules it out.
pub fn unplaced_status(
    view: &sched::View,
    unit: &str,
    addresses: &BTreeMap<String, String>,
) -> String {
    let mut text = format!("Unit {unit} is not running on any machine.\n");
    let verdicts = sched::explain(view, unit);
    if verdicts.is_empty() {
        text.push_str("No machine is in the cluster.\n");
        return text;
    }
    text.push_str("Machine by machine:\n");
    for (machine, verdict) in verdicts {
        let address = addresses.get(machine).map_or("", String::as_str);
        text.push_str(&format!(
            "  {}.../{address}: {verdict}\n",
            short_machine_id(machine)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(desired: DesiredState) -> UnitRecord {
        UnitRecord {
            name: "web.service".into(),
            hash: "h1".into(),
            desired_state: desired,
            contents: "[Service]\nExecStart=/bin/sleep 1000\n".into(),
        }
    }

    fn report(active: &str, launched_revision: i64) -> ReportedState {
        ReportedState {
            hash: "h1".into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: String::new(),
            launched_revision,
        }
    }

    #[test]
    fn current_state_follows_the_machines_report() {
        let launched = record(DesiredState::Launched);
        let at = |record, revision| RecordAt { record, revision };
        assert_eq!(current_state(at(&launched, 7), None), "inactive");
        assert_eq!(
            current_state(at(&launched, 7), Some(&report("inactive", 0))),
            "loaded",
            "loaded, start not yet issued"
        );
        assert_eq!(
            current_state(at(&launched, 7), Some(&report("failed", 7))),
            "launched",
            "started for this request, and then failed: systemd's state tells"
        );
        assert_eq!(
            current_state(at(&launched, 9), Some(&report("failed", 7))),
            "loaded",
            "a new start is pending"
        );
        let stale = ReportedState {
            hash: "h0".into(),
            ..report("active", 7)
        };
        assert_eq!(current_state(at(&launched, 7), Some(&stale)), "inactive");
        let loaded = record(DesiredState::Loaded);
        assert_eq!(
            current_state(at(&loaded, 8), Some(&report("active", 7))),
            "launched",
            "a stop is pending"
        );
        assert_eq!(
            current_state(at(&loaded, 8), Some(&report("inactive", 7))),
            "loaded"
        );
    }

    #[test]
    fn global_units_have_no_single_state_or_machine() {
        let global = UnitRecord {
            contents: "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n".into(),
            ..record(DesiredState::Launched)
        };
        let record = record(DesiredState::Launched);
        let reports = BTreeMap::from([("m1".to_owned(), report("active", 3))]);
        let shown = unit(UnitFacts {
            unit: RecordAt {
                record: &global,
                revision: 3,
            },
            assigned: Some("m1"),
            reports: &reports,
        });
        assert!(shown.global);
        assert_eq!(
            (shown.current_state.as_str(), shown.machine_id.as_str()),
            ("", "")
        );
        let shown = unit(UnitFacts {
            unit: RecordAt {
                record: &record,
                revision: 3,
            },
            assigned: Some("m1"),
            reports: &reports,
        });
        assert!(!shown.global);
        assert_eq!(shown.current_state, "launched");
        assert_eq!(shown.machine_id, "m1");
        assert_eq!(shown.options[0].name, "ExecStart");
    }

    #[test]
    fn an_unplaced_unit_says_why_for_every_machine() {
        let record = UnitRecord {
            contents: "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=disk=ssd\n"
                .into(),
            ..record(DesiredState::Launched)
        };
        let view = sched::View {
            machines: BTreeMap::from([(
                "1a2b3c4d5e6f".to_owned(),
                sched::Machine {
                    metadata: BTreeMap::from([("disk".to_owned(), "hdd".to_owned())]),
                    alive: true,
                },
            )]),
            units: BTreeMap::from([(
                "web.service".to_owned(),
                sched::UnitSpec::from_record(&record, 4).unwrap(),
            )]),
            assignments: BTreeMap::new(),
        };
        let addresses = BTreeMap::from([("1a2b3c4d5e6f".to_owned(), "10.0.0.5".to_owned())]);
        assert_eq!(
            unplaced_status(&view, "web.service", &addresses),
            "Unit web.service is not running on any machine.\nMachine by machine:\n  \
             1a2b3c4d.../10.0.0.5: MachineMetadata requires disk=ssd, machine has disk=hdd\n"
        );
    }
}
