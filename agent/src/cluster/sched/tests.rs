//! Table tests of the scheduler: small clusters of real unit texts (checked by `Unit::check`),
//! and the decisions a pass makes on them, written `+unit machine` (place), `-unit machine`
//! (unplace) and `~unit machine` (update).

use std::collections::BTreeMap;

use unitgen::fleet::Constraints;
use unitgen::unit::Unit;

use super::*;
use crate::cluster::model::{short_machine_id, DesiredState, UnitRecord};

const A: &str = "0123456789abcdef0123456789abcdef";
const B: &str = "89abcdef0123456789abcdef01234567";
const C: &str = "fedcba9876543210fedcba9876543210";

/// A cluster under test.
#[derive(Clone, Default)]
struct Cluster {
    view: View,
}

impl Cluster {
    /// Alive machines, each `"id"` or `"id key=value,key=value"`.
    fn new(machines: &[&str]) -> Cluster {
        let mut cluster = Cluster::default();
        for machine in machines {
            let (id, metadata) = machine.split_once(' ').unwrap_or((machine, ""));
            cluster.view.machines.insert(
                id.to_owned(),
                Machine {
                    metadata: metadata
                        .split(',')
                        .filter_map(|pair| pair.split_once('='))
                        .map(|(key, value)| (key.to_owned(), value.to_owned()))
                        .collect(),
                    alive: true,
                },
            );
        }
        cluster
    }

    /// A launched unit at revision 1; `fleet` is the body of its `[X-Fleet]` section.
    fn unit(self, name: &str, fleet: &str) -> Cluster {
        self.unit_with(name, fleet, DesiredState::Launched, 1)
    }

    fn unit_with(
        mut self,
        name: &str,
        fleet: &str,
        desired: DesiredState,
        revision: i64,
    ) -> Cluster {
        let mut contents =
            format!("[Unit]\nDescription={name}\n[Service]\nExecStart=/usr/bin/sleep infinity\n");
        if !fleet.is_empty() {
            contents.push_str(&format!("[X-Fleet]\n{fleet}\n"));
        }
        self.view
            .units
            .insert(name.to_owned(), spec(name, &contents, desired, revision));
        self
    }

    /// Assigns a unit as the scheduler would have: with its current hash, state and revision.
    fn on(mut self, unit: &str, machine: &str) -> Cluster {
        let placed = Placed::from(&self.view.units[unit]);
        self.view
            .assignments
            .entry(unit.to_owned())
            .or_default()
            .insert(machine.to_owned(), placed);
        self
    }

    fn destroy(mut self, unit: &str) -> Cluster {
        self.view.units.remove(unit);
        self
    }

    fn down(mut self, machine: &str) -> Cluster {
        self.view
            .machines
            .get_mut(machine)
            .expect("known machine")
            .alive = false;
        self
    }

    fn metadata(mut self, machine: &str, metadata: &str) -> Cluster {
        let changed = Cluster::new(&[&format!("{machine} {metadata}")]);
        self.view.machines.extend(changed.view.machines);
        self
    }

    fn decisions(&self) -> Vec<String> {
        schedule(&self.view).decisions.iter().map(short).collect()
    }

    fn unplaced(&self) -> Vec<String> {
        let schedule = schedule(&self.view);
        schedule
            .unplaced
            .iter()
            .map(|unplaced| format!("{}: {}", unplaced.unit, unplaced.reason))
            .collect()
    }

    /// Runs a pass and applies its decisions; returns them.
    fn settle(&mut self) -> Vec<String> {
        let schedule = schedule(&self.view);
        let decisions: Vec<String> = schedule.decisions.iter().map(short).collect();
        let changes: Vec<(bool, String, String)> = schedule
            .decisions
            .iter()
            .map(|d| {
                let keep = !matches!(d, Decision::Unplace { .. });
                (keep, d.unit().to_owned(), d.machine().to_owned())
            })
            .collect();
        for (keep, unit, machine) in changes {
            let machines = self.view.assignments.entry(unit.clone()).or_default();
            if keep {
                machines.insert(machine, Placed::from(&self.view.units[&unit]));
            } else {
                machines.remove(&machine);
            }
        }
        self.view
            .assignments
            .retain(|_, machines| !machines.is_empty());
        decisions
    }

    /// Unit → the machines it is assigned to.
    fn placement(&self) -> BTreeMap<&str, Vec<&str>> {
        self.view
            .assignments
            .iter()
            .map(|(unit, machines)| (unit.as_str(), machines.keys().map(String::as_str).collect()))
            .collect()
    }
}

fn spec(name: &str, contents: &str, desired: DesiredState, revision: i64) -> UnitSpec {
    let unit = Unit::check(name, name, contents.as_bytes()).expect("valid unit");
    let record = UnitRecord {
        name: name.to_owned(),
        hash: unit.hash().to_string(),
        desired_state: desired,
        contents: contents.to_owned(),
    };
    UnitSpec::from_record(&record, revision).expect("valid record")
}

fn short(decision: &Decision<'_>) -> String {
    let sign = match decision {
        Decision::Place { .. } => '+',
        Decision::Unplace { .. } => '-',
        Decision::Update { .. } => '~',
    };
    format!(
        "{sign}{} {}",
        decision.unit(),
        short_machine_id(decision.machine())
    )
}

fn explained(cluster: &Cluster, unit: &str) -> Vec<String> {
    explain(&cluster.view, unit)
        .iter()
        .map(|(machine, verdict)| format!("machine {}: {verdict}", short_machine_id(machine)))
        .collect()
}

#[test]
fn least_loaded_machine_first_ties_by_id_and_nothing_healthy_moves() {
    let cluster = Cluster::new(&["m1", "m2", "m3"])
        .unit("a.service", "")
        .unit("b.service", "")
        .unit("c.service", "")
        .unit("d.service", "")
        .unit("e.service", "")
        .unit("f.service", "")
        .unit("g.service", "")
        .on("a.service", "m1")
        .on("b.service", "m1")
        .on("c.service", "m2");
    assert_eq!(
        cluster.decisions(),
        [
            "+d.service m3",
            "+e.service m2",
            "+f.service m3",
            "+g.service m1"
        ]
    );
    let schedule = schedule(&cluster.view);
    assert_eq!(
        schedule.decisions[0].to_string(),
        "place d.service on m3: least loaded machine that qualifies (0 units)"
    );

    let crowded = Cluster::new(&["m1", "m2"])
        .unit("a.service", "")
        .unit("b.service", "")
        .unit("c.service", "")
        .on("a.service", "m1")
        .on("b.service", "m1")
        .on("c.service", "m1");
    assert!(crowded.decisions().is_empty(), "no rebalancing");
}

#[test]
fn machine_id_matches_the_full_id_or_its_first_8_characters() {
    let cluster = Cluster::new(&[A, B, C])
        .unit("full.service", &format!("MachineID={B}"))
        .unit("short.service", "MachineID=89abcdef")
        .unit("legacy.service", "X-ConditionMachineID=fedcba98")
        .unit("boot.service", "X-ConditionMachineBootID=01234567")
        .unit("nowhere.service", "MachineID=deadbeef")
        .unit("prefix.service", "MachineID=0123");
    assert_eq!(
        cluster.decisions(),
        [
            "+boot.service 01234567",
            "+full.service 89abcdef",
            "+legacy.service fedcba98",
            "+short.service 89abcdef"
        ]
    );
    assert_eq!(
        cluster.unplaced(),
        [
            "nowhere.service: MachineID: no machine that is up matches deadbeef",
            "prefix.service: MachineID: no machine that is up matches 0123",
        ]
    );
    let pinned_to_a_dead_machine = cluster
        .clone()
        .unit("pin.service", "MachineID=fedcba98")
        .down(C);
    assert!(pinned_to_a_dead_machine
        .unplaced()
        .contains(&"pin.service: MachineID: no machine that is up matches fedcba98".to_owned()));
}

#[test]
fn machine_metadata_is_and_across_keys_and_or_within_a_key() {
    let cluster = Cluster::new(&[
        "m1 disk=ssd,region=eu",
        "m2 disk=hdd,region=eu",
        "m3 disk=ssd,region=us",
        "m4 region=eu",
    ])
    .unit(
        "either.service",
        "MachineMetadata=disk=hdd\nMachineMetadata=disk=ssd",
    )
    .unit(
        "grouped.service",
        "MachineMetadata=\"region=eu\" \"disk=hdd\"\nMachineMetadata=\"region=us\" \"disk=ssd\"",
    )
    .unit("legacy.service", "X-ConditionMachineMetadata=region=eu")
    .unit(
        "ssd-us.service",
        "MachineMetadata=\"disk=ssd\" \"region=us\"",
    )
    .unit("ssd.service", "MachineMetadata=disk=ssd")
    .unit("nothing.service", "MachineMetadata=disk=nvme");
    assert_eq!(
        cluster.decisions(),
        // The most constrained first: ssd-us (one machine), then ssd (two), then the rest.
        [
            "+ssd-us.service m3",
            "+ssd.service m1",
            "+either.service m2",
            "+grouped.service m1",
            "+legacy.service m4"
        ]
    );
    assert_eq!(
        cluster.unplaced(),
        ["nothing.service: no machine qualifies (machines excluded by MachineMetadata: 4)"]
    );
}

#[test]
fn the_unit_with_one_possible_machine_gets_it_before_a_unit_conflicting_with_it() {
    // Arriving together, in name order `a-free` would take m2 first (the least loaded) and
    // leave `eu` nowhere to go.
    let cluster = Cluster::new(&["m1", "m2 region=eu"])
        .unit("anchor.service", "")
        .on("anchor.service", "m1")
        .unit("a-free.service", "Conflicts=eu.service")
        .unit("eu.service", "MachineMetadata=region=eu");
    assert_eq!(
        cluster.decisions(),
        ["+eu.service m2", "+a-free.service m1"]
    );
    assert!(cluster.unplaced().is_empty());
}

#[test]
fn a_unit_whose_machine_no_longer_qualifies_moves_in_the_same_pass() {
    // fleet #959: changing a machine's metadata unschedules the units that needed it.
    let cluster = Cluster::new(&["m1 disk=ssd", "m2 disk=ssd"])
        .unit("db.service", "MachineMetadata=disk=ssd")
        .on("db.service", "m1")
        .metadata("m1", "disk=hdd");
    assert_eq!(cluster.decisions(), ["-db.service m1", "+db.service m2"]);
    assert_eq!(
        schedule(&cluster.view).decisions[0].to_string(),
        "unplace db.service on m1: MachineMetadata requires disk=ssd, machine has disk=hdd"
    );
}

#[test]
fn machine_of_followers_are_placed_after_their_peers_in_one_pass() {
    let cases: &[(&str, Cluster, &[&str])] = &[
        (
            "a follower named before its peer",
            Cluster::new(&["m1", "m2"])
                .unit("x.service", "")
                .on("x.service", "m1")
                .unit("app.service", "MachineOf=zdb.service")
                .unit("zdb.service", ""),
            &["+zdb.service m2", "+app.service m2"],
        ),
        (
            "a chain",
            Cluster::new(&["m1", "m2"])
                .unit("a.service", "MachineOf=b.service")
                .unit("b.service", "MachineOf=c.service")
                .unit("c.service", ""),
            &["+c.service m1", "+b.service m1", "+a.service m1"],
        ),
        (
            "every peer, quoted on one line",
            Cluster::new(&["m1", "m2"])
                .unit("p.service", "")
                .unit("q.service", "")
                .on("p.service", "m1")
                .on("q.service", "m2")
                .unit("both.service", "MachineOf=\"p.service\" \"q.service\"")
                .unit("r.service", "MachineOf=q.service"),
            &["+r.service m2"],
        ),
        (
            "a global peer: the least loaded machine that has it",
            Cluster::new(&["m1 role=web", "m2 role=web", "m3 role=db"])
                .unit("x.service", "")
                .on("x.service", "m1")
                .unit("f.service", "MachineOf=g.service")
                .unit("g.service", "Global=true\nMachineMetadata=role=web"),
            &["+g.service m1", "+g.service m2", "+f.service m2"],
        ),
    ];
    for (case, cluster, expected) in cases {
        assert_eq!(cluster.decisions(), *expected, "{case}");
    }
}

#[test]
fn the_fleet_tutorials_units_land_together() {
    let mongo = "[Unit]\nDescription=General MongoDB Service\n[Service]\n\
                 ExecStart=/usr/bin/flotilla run --name mongo-ins mongo\n\
                 ExecStop=/usr/bin/flotilla stop mongo-ins\n";
    let employees = "[Unit]\nAfter=mongo.service\n[Service]\n\
                     ExecStart=/usr/bin/flotilla run -p 3000:3000 --link mongo-ins:mongo --name node-app node-app node /app/app.js\n\
                     ExecStop=/usr/bin/flotilla stop node-app\n\
                     [X-Fleet]\nX-ConditionMachineOf=mongo.service\n";
    let mut cluster = Cluster::new(&["m1", "m2", "m3"])
        .unit("other.service", "")
        .on("other.service", "m1");
    for (name, text) in [("mongo.service", mongo), ("employees.service", employees)] {
        let unit = spec(name, text, DesiredState::Launched, 3);
        cluster.view.units.insert(name.to_owned(), unit);
    }
    assert_eq!(
        cluster.decisions(),
        ["+mongo.service m2", "+employees.service m2"]
    );
}

#[test]
fn followers_move_with_their_peer() {
    let cluster = Cluster::new(&["m1 disk=ssd", "m2 disk=ssd", "m3"])
        .unit("db.service", "MachineMetadata=disk=ssd")
        .unit("api.service", "MachineOf=db.service")
        .unit("web.service", "MachineOf=db.service")
        .on("db.service", "m1")
        .on("api.service", "m1")
        .on("web.service", "m1")
        .metadata("m1", "disk=hdd");
    assert_eq!(
        cluster.decisions(),
        [
            "-db.service m1",
            "-api.service m1",
            "-web.service m1",
            "+db.service m2",
            "+api.service m2",
            "+web.service m2"
        ]
    );
    assert_eq!(
        schedule(&cluster.view).decisions[1].to_string(),
        "unplace api.service on m1: MachineOf: peer db.service is not scheduled here"
    );
}

#[test]
fn machine_of_cycles_and_missing_peers_stay_unplaced_with_a_reason() {
    let cluster = Cluster::new(&["m1", "m2"])
        .unit("a.service", "MachineOf=b.service")
        .unit("b.service", "MachineOf=a.service")
        .unit("c.service", "MachineOf=a.service")
        .unit("x.service", "MachineOf=ghost.service")
        .unit_with("idle.service", "", DesiredState::Inactive, 1)
        .unit("y.service", "MachineOf=idle.service");
    assert!(cluster.decisions().is_empty());
    let cycle =
        "MachineOf: a.service → b.service → a.service form a cycle, so none can be placed first";
    assert_eq!(
        cluster.unplaced(),
        [
            format!("a.service: {cycle}"),
            format!("b.service: {cycle}"),
            "c.service: MachineOf: peer a.service is not scheduled anywhere".to_owned(),
            "x.service: MachineOf: peer ghost.service does not exist".to_owned(),
            "y.service: MachineOf: peer idle.service is not scheduled anywhere".to_owned(),
        ]
    );
}

#[test]
fn conflicts_spread_units_and_work_both_ways() {
    let mut spread = Cluster::new(&["m1", "m2", "m3"]);
    for n in 1..=4 {
        spread = spread.unit(&format!("web@{n}.service"), "Conflicts=web@*.service");
    }
    assert_eq!(
        spread.decisions(),
        [
            "+web@1.service m1",
            "+web@2.service m2",
            "+web@3.service m3"
        ]
    );
    assert_eq!(
        spread.unplaced(),
        ["web@4.service: no machine qualifies (machines excluded by Conflicts: 3)"]
    );

    let one_sided = Cluster::new(&["m1", "m2"])
        .unit("a.service", "Conflicts=b.service")
        .unit("x.service", "")
        .unit("y.service", "")
        .on("a.service", "m1")
        .on("x.service", "m2")
        .on("y.service", "m2")
        .unit("b.service", "");
    assert_eq!(one_sided.decisions(), ["+b.service m2"]);
    assert_eq!(
        explained(&one_sided, "b.service"),
        [
            "machine m1: Conflicts: a.service is already there and conflicts with this unit (its pattern b.service)",
            "machine m2: can run here",
        ]
    );

    let legacy_and_split = Cluster::new(&["m1", "m2", "m3"])
        .unit("a.service", "")
        .unit("b.service", "")
        .unit("x.service", "")
        .unit("y.service", "")
        .on("a.service", "m1")
        .on("b.service", "m2")
        .on("x.service", "m3")
        .on("y.service", "m3")
        .unit("c.service", "X-Conflicts=a.service b.service");
    assert_eq!(legacy_and_split.decisions(), ["+c.service m3"]);

    let itself = Cluster::new(&["m1"]).unit("foo.1.service", "Conflicts=foo*.service");
    assert_eq!(itself.decisions(), ["+foo.1.service m1"]);
}

#[test]
fn global_units_take_part_in_conflicts() {
    let cluster = Cluster::new(&["m1", "m2"])
        .unit("legacy.service", "")
        .on("legacy.service", "m1")
        .unit("agent.service", "Global=true\nConflicts=batch*.service")
        .unit("monitor.service", "Global=true\nConflicts=legacy.service")
        .unit("batch1.service", "");
    assert_eq!(
        cluster.decisions(),
        [
            "+agent.service m1",
            "+agent.service m2",
            "+monitor.service m2"
        ]
    );
    assert_eq!(
        cluster.unplaced(),
        ["batch1.service: no machine qualifies (machines excluded by Conflicts: 2)"]
    );
}

#[test]
fn global_units_follow_machines_metadata_and_desired_state() {
    let fleet = "Global=true\nMachineMetadata=role=web";
    let cases: &[(&str, Cluster, &[&str])] = &[
        (
            "every alive machine that matches",
            Cluster::new(&["m1 role=web", "m2 role=db", "m3 role=web", "m4 role=web"])
                .down("m4")
                .unit("g.service", fleet),
            &["+g.service m1", "+g.service m3"],
        ),
        (
            "metadata changed both ways",
            Cluster::new(&["m1 role=web", "m2 role=db", "m3 role=web"])
                .unit("g.service", fleet)
                .on("g.service", "m1")
                .on("g.service", "m3")
                .metadata("m3", "role=db")
                .metadata("m2", "role=web"),
            &["-g.service m3", "+g.service m2"],
        ),
        (
            "unloaded",
            Cluster::new(&["m1 role=web", "m2 role=web"])
                .unit("g.service", fleet)
                .on("g.service", "m1")
                .on("g.service", "m2")
                .unit_with("g.service", fleet, DesiredState::Inactive, 2),
            &["-g.service m1", "-g.service m2"],
        ),
        (
            "globals count in the load",
            Cluster::new(&["m1 role=web", "m2"])
                .unit("g.service", fleet)
                .on("g.service", "m1")
                .unit("a.service", ""),
            &["+a.service m2"],
        ),
        (
            "globals conflicting with each other: name order decides",
            Cluster::new(&["m1", "m2"])
                .unit("ga.service", "Global=true\nConflicts=gb.service")
                .unit("gb.service", "Global=true"),
            &["+ga.service m1", "+ga.service m2"],
        ),
    ];
    for (case, cluster, expected) in cases {
        assert_eq!(cluster.decisions(), *expected, "{case}");
    }
}

#[test]
fn replaces_moves_the_replaced_unit_to_another_machine_that_qualifies() {
    let base = Cluster::new(&["m1", "m2", "m3"])
        .unit("p.service", "")
        .unit("q.service", "")
        .unit("r.service", "")
        .on("p.service", "m2")
        .on("q.service", "m2")
        .on("r.service", "m3");
    let forward = base
        .clone()
        .unit("y.service", "")
        .on("y.service", "m1")
        .unit("x.service", "Replaces=y.service");
    assert_eq!(
        forward.decisions(),
        ["+x.service m1", "-y.service m1", "+y.service m3"]
    );
    let reasons: Vec<String> = schedule(&forward.view)
        .decisions
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        reasons[1..],
        [
            "unplace y.service on m1: Replaces: x.service takes this machine",
            "place y.service on m3: moved off m1 for x.service (Replaces)"
        ]
    );

    let backward = base
        .clone()
        .unit("y.service", "Replaces=x.service")
        .on("y.service", "m1")
        .unit("x.service", "");
    assert_eq!(
        backward.decisions(),
        ["+x.service m1", "-y.service m1", "+y.service m3"]
    );

    let circular = Cluster::new(&["m1"])
        .unit("y.service", "Replaces=x.service")
        .on("y.service", "m1")
        .unit("x.service", "Replaces=y.service");
    assert_eq!(
        circular.decisions(),
        ["+x.service m1"],
        "circular Replaces is ignored"
    );

    let moved_unit_checked = base
        .unit("y.service", "MachineMetadata=disk=ssd")
        .on("y.service", "m1")
        .metadata("m1", "disk=ssd")
        .unit("x.service", "Replaces=y.service");
    assert_eq!(
        moved_unit_checked.decisions(),
        ["+x.service m1", "-y.service m1"]
    );
    assert_eq!(
        moved_unit_checked.unplaced(),
        ["y.service: no machine qualifies (machines excluded by MachineMetadata: 2, Replaces: 1)"]
    );
}

#[test]
fn replaces_never_flip_flops_between_passes() {
    // A rolling upgrade on one machine: the new version takes it, the old one has nowhere to go.
    let mut upgrade = Cluster::new(&["m1"])
        .unit("app-v1.service", "")
        .on("app-v1.service", "m1")
        .unit("app-v2.service", "Replaces=app-v1.service");
    assert_eq!(
        upgrade.settle(),
        ["+app-v2.service m1", "-app-v1.service m1"]
    );
    assert!(upgrade.settle().is_empty());
    assert_eq!(
        upgrade.unplaced(),
        ["app-v1.service: no machine qualifies (machines excluded by Replaces: 1)"]
    );
    assert_eq!(
        explained(&upgrade, "app-v1.service"),
        ["machine m1: Replaces: app-v2.service is there and cannot be moved elsewhere"]
    );

    // The unit already there replaces the newcomer and cannot go elsewhere: the newcomer waits.
    let mut stays = Cluster::new(&["m1"])
        .unit("y.service", "Replaces=x.service")
        .on("y.service", "m1")
        .unit("x.service", "");
    assert!(stays.settle().is_empty());

    // Both already on one machine (a content change added Replaces): the replaced one moves.
    let mut together = Cluster::new(&["m1", "m2"])
        .unit("x.service", "Replaces=y.service")
        .unit("y.service", "")
        .on("x.service", "m1")
        .on("y.service", "m1");
    assert_eq!(together.settle(), ["-y.service m1", "+y.service m2"]);
    assert!(together.settle().is_empty());
}

#[test]
fn lost_machines_units_are_placed_elsewhere_in_the_same_pass() {
    let alive_flag_off = Cluster::new(&["m1", "m2", "m3"]).down("m1");
    let lease_gone = Cluster::new(&["m2", "m3"]);
    for cluster in [alive_flag_off, lease_gone] {
        let cluster = cluster
            .unit("a.service", "")
            .unit("b.service", "MachineOf=a.service")
            .unit("x.service", "")
            .on("a.service", "m1")
            .on("b.service", "m1")
            .on("x.service", "m3");
        assert_eq!(
            cluster.decisions(),
            [
                "-a.service m1",
                "-b.service m1",
                "+a.service m2",
                "+b.service m2"
            ]
        );
        assert_eq!(
            schedule(&cluster.view).decisions[0].to_string(),
            "unplace a.service on m1: the machine went away (its lease expired)"
        );
    }
}

#[test]
fn desired_state_and_content_changes() {
    let loaded = DesiredState::Loaded;
    let cases: &[(&str, Cluster, &[&str], &str)] = &[
        (
            "unloaded",
            Cluster::new(&["m1"])
                .unit("a.service", "")
                .on("a.service", "m1")
                .unit_with("a.service", "", DesiredState::Inactive, 2),
            &["-a.service m1"],
            "unplace a.service on m1: desired state is inactive",
        ),
        (
            "started after load: updated in place",
            Cluster::new(&["m1", "m2"])
                .unit_with("a.service", "", loaded, 1)
                .on("a.service", "m1")
                .unit_with("a.service", "", DesiredState::Launched, 2),
            &["~a.service m1"],
            "update a.service on m1: desired state loaded → launched, unit revision 1 → 2",
        ),
        (
            "started again (a new revision): updated in place",
            Cluster::new(&["m1"])
                .unit("a.service", "")
                .on("a.service", "m1")
                .unit_with("a.service", "", DesiredState::Launched, 9),
            &["~a.service m1"],
            "update a.service on m1: unit revision 1 → 9",
        ),
        (
            "loaded units are placed too",
            Cluster::new(&["m1"]).unit_with("a.service", "", loaded, 1),
            &["+a.service m1"],
            "place a.service on m1: least loaded machine that qualifies (0 units)",
        ),
        (
            "a template is never placed",
            Cluster::new(&["m1"])
                .unit_with("web@.service", "", DesiredState::Inactive, 1)
                .on("web@.service", "m1")
                .unit("web@.service", ""),
            &["-web@.service m1"],
            "unplace web@.service on m1: templates are never placed",
        ),
        (
            "a destroyed unit",
            Cluster::new(&["m1"])
                .unit("a.service", "")
                .on("a.service", "m1")
                .destroy("a.service"),
            &["-a.service m1"],
            "unplace a.service on m1: the unit was destroyed",
        ),
        (
            "a unit that stopped being global keeps one machine",
            Cluster::new(&["m1", "m2"])
                .unit("a.service", "Global=true")
                .on("a.service", "m1")
                .on("a.service", "m2")
                .unit("a.service", "Global=false"),
            &["-a.service m2", "~a.service m1"],
            "unplace a.service on m2: the unit is not global and keeps only one machine",
        ),
    ];
    for (case, cluster, expected, first) in cases {
        assert_eq!(cluster.decisions(), *expected, "{case}");
        assert_eq!(
            schedule(&cluster.view).decisions[0].to_string(),
            *first,
            "{case}"
        );
    }
    let template = Cluster::new(&["m1"]).unit("web@.service", "");
    assert!(template.decisions().is_empty() && template.unplaced().is_empty());
}

#[test]
fn new_contents_update_in_place_unless_they_exclude_the_machine() {
    let cluster = Cluster::new(&["m1 disk=hdd", "m2 disk=ssd"])
        .unit("x.service", "")
        .unit("a.service", "")
        .on("x.service", "m1")
        .on("a.service", "m1");
    let same_place = cluster
        .clone()
        .unit("a.service", "MachineMetadata=disk=hdd");
    assert_eq!(same_place.decisions(), ["~a.service m1"]);
    assert!(schedule(&same_place.view).decisions[0]
        .to_string()
        .starts_with("update a.service on m1: hash "));
    let elsewhere = cluster.unit("a.service", "MachineMetadata=disk=ssd");
    assert_eq!(elsewhere.decisions(), ["-a.service m1", "+a.service m2"]);
}

#[test]
fn explain_names_the_first_constraint_that_rules_each_machine_out() {
    let cluster = Cluster::new(&[
        "1a2b3c4d00000000 disk=hdd",
        "2b3c4d5e00000000 disk=ssd",
        "3c4d5e6f00000000 disk=ssd",
        "4d5e6f7a00000000 disk=ssd",
        "5e6f7a8b00000000 disk=ssd",
        "6f7a8b9c00000000",
    ])
    .down("3c4d5e6f00000000")
    .unit("db.service", "Global=true\nMachineMetadata=disk=ssd")
    .unit("web@2.service", "")
    .unit(
        "web@1.service",
        "MachineMetadata=disk=ssd\nMachineOf=db.service\nConflicts=web@*.service",
    )
    .on("db.service", "2b3c4d5e00000000")
    .on("db.service", "5e6f7a8b00000000")
    .on("web@2.service", "2b3c4d5e00000000")
    .unit("pinned.service", "MachineID=5f6e7d8c");
    assert_eq!(
        explained(&cluster, "web@1.service"),
        [
            "machine 1a2b3c4d: MachineMetadata requires disk=ssd, machine has disk=hdd",
            "machine 2b3c4d5e: Conflicts: web@2.service is already there (pattern web@*.service)",
            "machine 3c4d5e6f: the machine is down (its lease expired)",
            "machine 4d5e6f7a: MachineOf: peer db.service is not scheduled here",
            "machine 5e6f7a8b: can run here",
            "machine 6f7a8b9c: MachineMetadata requires disk=ssd, machine has no disk",
        ]
    );
    assert_eq!(
        explained(&cluster, "pinned.service")[0],
        "machine 1a2b3c4d: MachineID: the unit is pinned to 5f6e7d8c"
    );
    assert!(explained(&cluster, "ghost.service").is_empty());
    assert_eq!(
        explained(&cluster, "web@2.service")[1],
        "machine 2b3c4d5e: can run here",
        "a unit never conflicts with itself where it already is"
    );
}

/// A cluster with every kind of constraint, generated from a fixed seed.
fn mixed_cluster() -> Cluster {
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let machines: Vec<String> = (0..7)
        .map(|m| format!("m{m} disk={},zone={}", ["ssd", "hdd"][m % 2], m % 3))
        .collect();
    let machine_refs: Vec<&str> = machines.iter().map(String::as_str).collect();
    let mut cluster = Cluster::new(&machine_refs);
    for n in 0..60 {
        let fleet = match next(7) {
            0 => format!("MachineOf=u{}.service", next(60)),
            1 => format!("Conflicts=u{}?.service", next(6)),
            2 => format!("MachineMetadata=disk=ssd\nMachineMetadata=zone={}", next(3)),
            3 if n % 9 == 0 => "Global=true\nMachineMetadata=disk=hdd".to_owned(),
            4 => format!("X-Conflicts=u{}.service", next(60)),
            _ => String::new(),
        };
        let fleet = if fleet == format!("MachineOf=u{n}.service") {
            String::new()
        } else {
            fleet
        };
        cluster = cluster.unit(&format!("u{n}.service"), &fleet);
    }
    cluster
}

#[test]
fn the_same_view_gives_the_same_decisions_and_one_pass_settles() {
    let mut cluster = mixed_cluster();
    let first = cluster.decisions();
    assert_eq!(cluster.decisions(), first);
    assert!(first.len() > 40, "{first:?}");
    assert_eq!(cluster.settle(), first);
    assert!(cluster.settle().is_empty(), "a second pass changes nothing");
    for (unit, machines) in cluster.placement() {
        for machine in machines {
            let verdicts = explain(&cluster.view, unit);
            let (_, verdict) = verdicts
                .iter()
                .find(|(id, _)| *id == machine)
                .expect("machine");
            assert_eq!(*verdict, Verdict::Eligible, "{unit} on {machine}");
        }
    }

    // Lose a machine: its units move in one pass, and the next pass is quiet again.
    let lost = cluster
        .placement()
        .values()
        .flatten()
        .copied()
        .min()
        .expect("placed")
        .to_owned();
    cluster.view.machines.remove(&lost);
    let moves = cluster.settle();
    assert!(moves.iter().any(|d| d.starts_with('-')), "{moves:?}");
    assert!(cluster.settle().is_empty());
}

#[test]
fn ten_thousand_units_on_a_thousand_machines() {
    let mut view = View::default();
    for m in 0..1_000 {
        view.machines.insert(
            format!("{m:032x}"),
            Machine {
                metadata: BTreeMap::new(),
                alive: true,
            },
        );
    }
    for u in 0..10_000 {
        let spec = UnitSpec {
            hash: format!("{u:040x}"),
            desired: DesiredState::Launched,
            constraints: Constraints::default(),
            unit_revision: 1,
        };
        view.units.insert(format!("unit-{u}.service"), spec);
    }
    let schedule = schedule(&view);
    assert!(schedule.unplaced.is_empty());
    assert_eq!(schedule.decisions.len(), 10_000);
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for decision in &schedule.decisions {
        assert!(matches!(decision, Decision::Place { .. }), "{decision}");
        *load.entry(decision.machine()).or_default() += 1;
    }
    assert_eq!(load.len(), 1_000);
    let (min, max) = (load.values().min(), load.values().max());
    assert_eq!((min, max), (Some(&10), Some(&10)));
}
