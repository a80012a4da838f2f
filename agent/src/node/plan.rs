//! What the agent does on its machine: desired (its assignments) and current (its units
//! directory and systemd) become ordered tasks, each with its reason.
//!
//! Tasks come in fleet's order, Unload < Load < Reload < Stop < Start, then [`Task::Record`];
//! within a kind, by unit name; one Reload (daemon-reload) whenever anything was loaded or
//! unloaded. The rules, per unit:
//! - not assigned here: Unload (stop, disable, remove the file, reset-failed);
//! - assigned, no file, or a file systemd does not know: Load, and Start if launched;
//! - assigned, a file with another hash: Unload, Load, and Start if launched;
//! - desired loaded, and systemd has it active, activating or reloading: Stop;
//! - desired launched, the assignment's unit revision newer than the revision the agent last
//!   started it for (a new `flotctl start`, or never started), and not active or activating:
//!   Start. A unit that failed on its own after being started for that revision is left alone:
//!   systemd's `Restart=` does restarts, and a user's `flotctl start` bumps the revision
//!   (fleet's issue #1091: there a crashed unit stayed `launched` and `start` did nothing);
//! - desired launched, running, and a newer unit revision: no Start, but the agent records the
//!   new revision as launched.
//!
//! So an agent restarted with every unit running and recorded plans nothing: no unit is
//! started, stopped or reloaded because the agent restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use unitgen::fleet;
use unitgen::unit::Unit;

use crate::cluster::model::{Assignment, DesiredState};

/// The first line of every unit file the agent writes, before the hash.
pub const HASH_PREFIX: &str = "# flotilla-hash: ";

/// The file the agent writes for a unit: a `# flotilla-hash: <hash>` line, then the unit as
/// systemd loads it (`[Container]` expanded), without `[X-Fleet]`.
pub fn render_unit_file(hash: &str, unit: &Unit) -> String {
    let mut systemd = unit.systemd_unit().clone();
    systemd.take_sections(fleet::SECTION);
    format!("{HASH_PREFIX}{hash}\n{systemd}")
}

/// The hash a unit file written by [`render_unit_file`] carries; `None` for any other file.
pub fn file_hash(text: &str) -> Option<&str> {
    let first_line = text.lines().next()?;
    let hash = first_line.strip_prefix(HASH_PREFIX)?.trim_end();
    (!hash.is_empty() && !hash.contains(char::is_whitespace)).then_some(hash)
}

/// What systemd says of a unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemdState {
    /// `LoadState`: `loaded`, `not-found`, `error`, `masked`…
    pub load_state: String,
    /// `ActiveState`: `active`, `activating`, `reloading`, `deactivating`, `inactive`,
    /// `failed`.
    pub active_state: String,
    /// `SubState`: `running`, `dead`, `exited`…
    pub sub_state: String,
}

impl SystemdState {
    /// systemd knows the unit (a unit file was found for it).
    fn knows(&self) -> bool {
        self.load_state != "not-found"
    }

    /// Running or on its way: `active`, `activating` or `reloading`.
    fn running(&self) -> bool {
        matches!(
            self.active_state.as_str(),
            "active" | "activating" | "reloading"
        )
    }
}

/// A unit file in the units directory, and what is known of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalUnit {
    /// The hash from the file's first line ([`file_hash`]); `None`: not a file the agent wrote.
    pub file_hash: Option<String>,
    /// systemd's state of the unit; `None`: systemd does not list it.
    pub systemd: Option<SystemdState>,
    /// The unit revision the agent last started the unit for, as it reported it (0: never).
    pub launched_revision: i64,
}

/// One thing for the agent to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Task {
    /// Stop, disable, remove the file, reset-failed.
    Unload { unit: String, why: Why },
    /// Write the file ([`render_unit_file`]) and link it.
    Load { unit: String, why: Why },
    /// daemon-reload, once for every Load and Unload.
    Reload,
    /// Stop the unit.
    Stop { unit: String, why: Why },
    /// Start the unit, then report `revision` as its launched revision.
    Start {
        unit: String,
        revision: i64,
        why: Why,
    },
    /// Report `revision` as the unit's launched revision, without starting it.
    Record {
        unit: String,
        revision: i64,
        why: Why,
    },
}

impl fmt::Display for Task {
    /// `start web.service: unit revision 7 is newer than the one started (5)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Task::Unload { unit, why } => write!(f, "unload {unit}: {why}"),
            Task::Load { unit, why } => write!(f, "load {unit}: {why}"),
            Task::Reload => f.write_str("reload systemd's unit files"),
            Task::Stop { unit, why } => write!(f, "stop {unit}: {why}"),
            Task::Start { unit, why, .. } => write!(f, "start {unit}: {why}"),
            Task::Record { unit, why, .. } => write!(f, "record {unit}: {why}"),
        }
    }
}

/// Why a task is planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// The unit is not assigned to this machine.
    NotAssigned,
    /// The unit is assigned but not in the units directory.
    NoFile,
    /// The file is there but systemd does not know the unit.
    UnknownToSystemd,
    /// The file was written for other contents (`None`: a file the agent did not write).
    HashChanged {
        file: Option<String>,
        wanted: String,
    },
    /// Desired state loaded, but systemd has the unit running.
    DesiredLoaded { active_state: String },
    /// The unit was (re)loaded and its desired state is launched.
    Loaded,
    /// The assignment's unit revision is newer than the one the unit was started for.
    NewRevision { revision: i64, launched: i64 },
    /// A newer unit revision, but the unit already runs.
    AlreadyRunning { revision: i64, active_state: String },
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::NotAssigned => f.write_str("not scheduled on this machine"),
            Why::NoFile => f.write_str("not in the units directory"),
            Why::UnknownToSystemd => f.write_str("systemd does not know the unit"),
            Why::HashChanged {
                file: Some(file),
                wanted,
            } => write!(f, "contents changed (hash {file} → {wanted})"),
            Why::HashChanged { file: None, wanted } => {
                write!(f, "the file has no flotilla hash line (wanted {wanted})")
            }
            Why::DesiredLoaded { active_state } => {
                write!(f, "desired state is loaded and the unit is {active_state}")
            }
            Why::Loaded => f.write_str("loaded with desired state launched"),
            Why::NewRevision {
                revision,
                launched: 0,
            } => write!(f, "never started; unit revision {revision}"),
            Why::NewRevision { revision, launched } => write!(
                f,
                "unit revision {revision} is newer than the one started ({launched})"
            ),
            Why::AlreadyRunning {
                revision,
                active_state,
            } => write!(
                f,
                "already {active_state}; unit revision {revision} counts as launched"
            ),
        }
    }
}

/// The tasks that take this machine from `current` (unit name → its file) to `desired` (unit
/// name → this machine's assignment), in the order to run them.
pub fn plan(
    desired: &BTreeMap<String, Assignment>,
    current: &BTreeMap<String, LocalUnit>,
) -> Vec<Task> {
    let mut tasks = Tasks::default();
    let names: BTreeSet<&String> = desired.keys().chain(current.keys()).collect();
    for name in names {
        match desired.get(name) {
            Some(assignment) => tasks.plan_unit(name, assignment, current.get(name)),
            None => tasks.unload.push(Task::Unload {
                unit: name.clone(),
                why: Why::NotAssigned,
            }),
        }
    }
    tasks.into_ordered()
}

/// Tasks sorted by kind as they are planned.
#[derive(Default)]
struct Tasks {
    unload: Vec<Task>,
    load: Vec<Task>,
    stop: Vec<Task>,
    start: Vec<Task>,
    record: Vec<Task>,
}

impl Tasks {
    fn plan_unit(&mut self, name: &str, assignment: &Assignment, local: Option<&LocalUnit>) {
        let unit = name.to_owned();
        let launched = assignment.desired_state == DesiredState::Launched;
        let revision = assignment.unit_revision;
        let load_why = match local {
            None => Some(Why::NoFile),
            Some(local) if local.file_hash.as_deref() != Some(assignment.hash.as_str()) => {
                let why = Why::HashChanged {
                    file: local.file_hash.clone(),
                    wanted: assignment.hash.clone(),
                };
                self.unload.push(Task::Unload {
                    unit: unit.clone(),
                    why: why.clone(),
                });
                Some(why)
            }
            Some(local) if !local.systemd.as_ref().is_some_and(SystemdState::knows) => {
                Some(Why::UnknownToSystemd)
            }
            Some(_) => None,
        };
        if let Some(why) = load_why {
            self.load.push(Task::Load {
                unit: unit.clone(),
                why,
            });
            if launched {
                self.start.push(Task::Start {
                    unit,
                    revision,
                    why: Why::Loaded,
                });
            }
            return;
        }
        let Some(local) = local else { return };
        let Some(systemd) = &local.systemd else {
            return;
        };
        let newer = revision > local.launched_revision;
        match (launched, systemd.running()) {
            (false, true) => self.stop.push(Task::Stop {
                unit,
                why: Why::DesiredLoaded {
                    active_state: systemd.active_state.clone(),
                },
            }),
            (true, false) if newer => self.start.push(Task::Start {
                unit,
                revision,
                why: Why::NewRevision {
                    revision,
                    launched: local.launched_revision,
                },
            }),
            (true, true) if newer => self.record.push(Task::Record {
                unit,
                revision,
                why: Why::AlreadyRunning {
                    revision,
                    active_state: systemd.active_state.clone(),
                },
            }),
            _ => {}
        }
    }

    fn into_ordered(self) -> Vec<Task> {
        let reload = (!self.unload.is_empty() || !self.load.is_empty()).then_some(Task::Reload);
        let mut ordered = self.unload;
        ordered.extend(self.load);
        ordered.extend(reload);
        ordered.extend(self.stop);
        ordered.extend(self.start);
        ordered.extend(self.record);
        ordered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOADED: DesiredState = DesiredState::Loaded;
    const LAUNCHED: DesiredState = DesiredState::Launched;

    fn assigned(hash: &str, desired: DesiredState, unit_revision: i64) -> Assignment {
        Assignment {
            hash: hash.to_owned(),
            desired_state: desired,
            contents: String::new(),
            unit_revision,
        }
    }

    /// A file with `hash` (`""`: no hash line) that systemd has in `active_state`
    /// (`""`: systemd does not list it; `not-found`: listed, no unit file).
    fn local(hash: &str, active_state: &str, launched_revision: i64) -> LocalUnit {
        let systemd = match active_state {
            "" => None,
            "not-found" => Some(SystemdState {
                load_state: "not-found".into(),
                active_state: "inactive".into(),
                sub_state: "dead".into(),
            }),
            active => Some(SystemdState {
                load_state: "loaded".into(),
                active_state: active.into(),
                sub_state: if active == "active" {
                    "running"
                } else {
                    "dead"
                }
                .into(),
            }),
        };
        LocalUnit {
            file_hash: (!hash.is_empty()).then(|| hash.to_owned()),
            systemd,
            launched_revision,
        }
    }

    /// The plan, one word per task: `unload a`, `reload`, `start a@5`, `record a@5`.
    fn planned(desired: &[(&str, Assignment)], current: &[(&str, LocalUnit)]) -> Vec<String> {
        let desired = desired
            .iter()
            .map(|(name, a)| (format!("{name}.service"), a.clone()))
            .collect();
        let current = current
            .iter()
            .map(|(name, l)| (format!("{name}.service"), l.clone()))
            .collect();
        plan(&desired, &current)
            .iter()
            .map(|task| match task {
                Task::Unload { unit, .. } => format!("unload {unit}"),
                Task::Load { unit, .. } => format!("load {unit}"),
                Task::Reload => "reload".to_owned(),
                Task::Stop { unit, .. } => format!("stop {unit}"),
                Task::Start { unit, revision, .. } => format!("start {unit}@{revision}"),
                Task::Record { unit, revision, .. } => format!("record {unit}@{revision}"),
            })
            .map(|task| task.replace(".service", ""))
            .collect()
    }

    /// (case, desired, current, expected plan).
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, Assignment)],
        &'a [(&'a str, LocalUnit)],
        &'a [&'a str],
    );

    #[test]
    fn every_rule_for_one_unit() {
        let cases: &[Case] = &[
            (
                "not assigned here",
                &[],
                &[("a", local("h1", "active", 3))],
                &["unload a", "reload"],
            ),
            (
                "no file, loaded",
                &[("a", assigned("h1", LOADED, 4))],
                &[],
                &["load a", "reload"],
            ),
            (
                "no file, launched",
                &[("a", assigned("h1", LAUNCHED, 4))],
                &[],
                &["load a", "reload", "start a@4"],
            ),
            (
                "new contents, launched",
                &[("a", assigned("h2", LAUNCHED, 4))],
                &[("a", local("h1", "active", 4))],
                &["unload a", "load a", "reload", "start a@4"],
            ),
            (
                "new contents, loaded",
                &[("a", assigned("h2", LOADED, 4))],
                &[("a", local("h1", "active", 4))],
                &["unload a", "load a", "reload"],
            ),
            (
                "a file without a hash line",
                &[("a", assigned("h1", LAUNCHED, 4))],
                &[("a", local("", "active", 4))],
                &["unload a", "load a", "reload", "start a@4"],
            ),
            (
                "a file systemd does not list",
                &[("a", assigned("h1", LAUNCHED, 4))],
                &[("a", local("h1", "", 4))],
                &["load a", "reload", "start a@4"],
            ),
            (
                "a file systemd did not find",
                &[("a", assigned("h1", LOADED, 4))],
                &[("a", local("h1", "not-found", 4))],
                &["load a", "reload"],
            ),
            (
                "loaded and active",
                &[("a", assigned("h1", LOADED, 4))],
                &[("a", local("h1", "active", 4))],
                &["stop a"],
            ),
            (
                "loaded and activating",
                &[("a", assigned("h1", LOADED, 4))],
                &[("a", local("h1", "activating", 4))],
                &["stop a"],
            ),
            (
                "loaded and reloading",
                &[("a", assigned("h1", LOADED, 4))],
                &[("a", local("h1", "reloading", 4))],
                &["stop a"],
            ),
            (
                "loaded and deactivating",
                &[("a", assigned("h1", LOADED, 4))],
                &[("a", local("h1", "deactivating", 4))],
                &[],
            ),
            (
                "loaded and stopped",
                &[("a", assigned("h1", LOADED, 4))],
                &[("a", local("h1", "inactive", 4))],
                &[],
            ),
            (
                "never started",
                &[("a", assigned("h1", LAUNCHED, 4))],
                &[("a", local("h1", "inactive", 0))],
                &["start a@4"],
            ),
            (
                "started again after a stop",
                &[("a", assigned("h1", LAUNCHED, 6))],
                &[("a", local("h1", "inactive", 4))],
                &["start a@6"],
            ),
            (
                "started again after a failure",
                &[("a", assigned("h1", LAUNCHED, 6))],
                &[("a", local("h1", "failed", 4))],
                &["start a@6"],
            ),
            (
                "failed on its own: not restarted",
                &[("a", assigned("h1", LAUNCHED, 4))],
                &[("a", local("h1", "failed", 4))],
                &[],
            ),
            (
                "stopped by hand: not restarted",
                &[("a", assigned("h1", LAUNCHED, 4))],
                &[("a", local("h1", "inactive", 4))],
                &[],
            ),
            (
                "started again while running: recorded",
                &[("a", assigned("h1", LAUNCHED, 6))],
                &[("a", local("h1", "active", 4))],
                &["record a@6"],
            ),
            (
                "started again while activating: recorded",
                &[("a", assigned("h1", LAUNCHED, 6))],
                &[("a", local("h1", "activating", 4))],
                &["record a@6"],
            ),
        ];
        for (case, desired, current, expected) in cases {
            assert_eq!(planned(desired, current), *expected, "{case}");
        }
    }

    #[test]
    fn an_agent_restarted_with_every_unit_running_plans_nothing() {
        let desired = [
            ("a", assigned("h1", LAUNCHED, 4)),
            ("b", assigned("h2", LAUNCHED, 9)),
            ("c", assigned("h3", LOADED, 2)),
        ];
        let current = [
            ("a", local("h1", "active", 4)),
            ("b", local("h2", "active", 9)),
            ("c", local("h3", "inactive", 0)),
        ];
        assert!(planned(&desired, &current).is_empty());
    }

    #[test]
    fn tasks_come_in_fleets_order_with_one_reload() {
        let desired = [
            ("b", assigned("h", LAUNCHED, 3)),
            ("c", assigned("new", LOADED, 3)),
            ("d", assigned("h", LOADED, 3)),
            ("e", assigned("h", LAUNCHED, 3)),
            ("f", assigned("h", LAUNCHED, 3)),
        ];
        let current = [
            ("a", local("h", "active", 1)),
            ("c", local("old", "active", 1)),
            ("d", local("h", "active", 1)),
            ("e", local("h", "inactive", 1)),
            ("f", local("h", "active", 1)),
        ];
        assert_eq!(
            planned(&desired, &current),
            [
                "unload a",
                "unload c",
                "load b",
                "load c",
                "reload",
                "stop d",
                "start b@3",
                "start e@3",
                "record f@3"
            ]
        );
    }

    #[test]
    fn tasks_say_why() {
        let desired = BTreeMap::from([("a.service".to_owned(), assigned("h2", LAUNCHED, 7))]);
        let current = BTreeMap::from([
            ("a.service".to_owned(), local("h1", "active", 5)),
            ("b.service".to_owned(), local("h1", "active", 5)),
        ]);
        let tasks: Vec<String> = plan(&desired, &current)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            tasks,
            [
                "unload a.service: contents changed (hash h1 → h2)",
                "unload b.service: not scheduled on this machine",
                "load a.service: contents changed (hash h1 → h2)",
                "reload systemd's unit files",
                "start a.service: loaded with desired state launched",
            ]
        );
        let restart = BTreeMap::from([("a.service".to_owned(), assigned("h1", LAUNCHED, 7))]);
        let failed = BTreeMap::from([("a.service".to_owned(), local("h1", "failed", 5))]);
        assert_eq!(
            plan(&restart, &failed)[0].to_string(),
            "start a.service: unit revision 7 is newer than the one started (5)"
        );
    }

    #[test]
    fn the_written_file_carries_the_hash_and_no_x_fleet() {
        let text = "[Unit]\nDescription=web\n[Service]\nExecStart=/bin/true\n\
                    [X-Fleet]\nMachineMetadata=disk=ssd\n";
        let unit = Unit::check("web.service", "web.service", text.as_bytes()).expect("valid");
        let hash = unit.hash().to_string();
        let file = render_unit_file(&hash, &unit);
        assert_eq!(
            file,
            format!("# flotilla-hash: {hash}\n[Unit]\nDescription=web\n[Service]\nExecStart=/bin/true\n")
        );
        assert_eq!(file_hash(&file), Some(hash.as_str()));

        let container = "[Container]\nImage=nginx\n[X-Fleet]\nMachineMetadata=disk=ssd\n";
        let unit = Unit::check("web.service", "web.service", container.as_bytes()).expect("valid");
        let file = render_unit_file("abc", &unit);
        assert!(file.starts_with("# flotilla-hash: abc\n"), "{file}");
        assert!(
            file.contains("ExecStart=/usr/bin/flotilla run --name web "),
            "{file}"
        );
        assert!(
            !file.contains("X-Fleet") && !file.contains("MachineMetadata"),
            "{file}"
        );
    }

    #[test]
    fn only_a_hash_line_first_is_a_hash() {
        let cases = [
            ("# flotilla-hash: abc\n[Unit]\n", Some("abc")),
            ("# flotilla-hash: abc\r\n[Unit]\n", Some("abc")),
            ("# flotilla-hash: abc", Some("abc")),
            ("# flotilla-hash: \n", None),
            ("# flotilla-hash: a b\n", None),
            ("[Unit]\n# flotilla-hash: abc\n", None),
            ("", None),
        ];
        for (text, hash) in cases {
            assert_eq!(file_hash(text), hash, "{text:?}");
        }
    }
}
