//! The cluster end to end: agents on a local cluster of systemd nodes with a real etcd, driven
//! only through `flotctl`, `systemctl` and `journalctl` inside the nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use flotilla_tests::cluster::{Cluster, ClusterConfig};

/// A unit that runs until stopped.
const SLEEPER: &str = "[Service]\nExecStart=/usr/bin/sleep infinity\n";

fn boot(nodes: usize, metadata: &[&[(&str, &str)]]) -> Cluster {
    let mut config = ClusterConfig::new(nodes);
    config.agent_ttl = Duration::from_secs(3);
    config.metadata = metadata
        .iter()
        .map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        })
        .collect();
    let cluster = Cluster::boot(config).expect("boot the cluster");
    cluster.start_agents().expect("start the agents");
    cluster
}

/// Runs `flotctl ARGS` in node `n`; stdout, or a panic with everything it printed.
fn flotctl(cluster: &Cluster, n: usize, args: &[&str]) -> String {
    let mut argv = vec!["flotctl"];
    argv.extend_from_slice(args);
    let output = cluster.node(n).exec(&argv).expect("run flotctl");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(
        output.status.success(),
        "flotctl {args:?} on node{n}: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Writes unit files into node `n`'s `/root/units/`.
fn write_units(cluster: &Cluster, n: usize, units: &[(&str, &str)]) {
    for (name, text) in units {
        cluster
            .node(n)
            .write(&format!("/root/units/{name}"), text)
            .expect("write a unit file");
    }
}

/// `list-units` as unit → set of (hostname) machines running it (active).
fn running(cluster: &Cluster) -> BTreeMap<String, BTreeSet<String>> {
    let by_id: BTreeMap<String, String> = cluster
        .nodes()
        .iter()
        .map(|node| (node.machine_id().to_owned(), node.hostname().to_owned()))
        .collect();
    let listing = flotctl(
        cluster,
        1,
        &[
            "list-units",
            "--no-legend",
            "--full",
            "--fields",
            "unit,machine,active",
        ],
    );
    let mut running: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [unit, machine, active] = fields.as_slice() else {
            panic!("unexpected list-units line {line:?}");
        };
        if *active == "active" {
            let id = machine.split('/').next().unwrap_or_default();
            running
                .entry((*unit).to_owned())
                .or_default()
                .insert(by_id.get(id).cloned().unwrap_or_else(|| id.to_owned()));
        }
    }
    running
}

fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn units_land_where_their_x_fleet_options_say() {
    let cluster = boot(
        3,
        &[
            &[("disk", "ssd")],
            &[("disk", "hdd")],
            &[("disk", "ssd"), ("region", "eu")],
        ],
    );
    let node2 = cluster.node(2).machine_id()[..8].to_owned();
    let pinned = format!("{SLEEPER}[X-Fleet]\nMachineID={node2}\n");
    let legacy_pinned = format!(
        "{SLEEPER}[X-Fleet]\nX-ConditionMachineID={}\n",
        cluster.node(3).machine_id()
    );
    let metadata = format!("{SLEEPER}[X-Fleet]\nMachineMetadata=region=eu\n");
    let legacy_metadata = format!("{SLEEPER}[X-Fleet]\nX-ConditionMachineMetadata=disk=hdd\n");
    let or_metadata = format!("{SLEEPER}[X-Fleet]\nMachineMetadata=\"disk=hdd\" \"disk=nvme\"\n");
    let mongo = format!("[Unit]\nDescription=General MongoDB Service\n{SLEEPER}");
    let employees = format!(
        "[Unit]\nAfter=mongo.service\n{SLEEPER}[X-Fleet]\nX-ConditionMachineOf=mongo.service\n"
    );
    let web = format!("{SLEEPER}[X-Fleet]\nConflicts=web@*.service\n");
    let global = format!("{SLEEPER}[X-Fleet]\nGlobal=true\nMachineMetadata=disk=ssd\n");
    write_units(
        &cluster,
        1,
        &[
            ("pinned.service", &pinned),
            ("legacy-pinned.service", &legacy_pinned),
            ("metadata.service", &metadata),
            ("legacy-metadata.service", &legacy_metadata),
            ("or-metadata.service", &or_metadata),
            ("mongo.service", &mongo),
            ("employees.service", &employees),
            ("web@.service", &web),
            ("global.service", &global),
        ],
    );
    let started = flotctl(
        &cluster,
        1,
        &[
            "start",
            "/root/units/pinned.service",
            "/root/units/legacy-pinned.service",
            "/root/units/metadata.service",
            "/root/units/legacy-metadata.service",
            "/root/units/or-metadata.service",
            "/root/units/employees.service",
            "/root/units/mongo.service",
            "/root/units/web@1.service",
            "/root/units/web@2.service",
            "/root/units/web@3.service",
            "/root/units/global.service",
        ],
    );
    assert!(
        started.contains("Unit pinned.service launched on "),
        "{started}"
    );
    assert!(
        started.contains("Triggered global unit global.service start"),
        "{started}"
    );
    let running = wait_until("every unit active", Duration::from_secs(30), || {
        let running = running(&cluster);
        (running.get("global.service").map(BTreeSet::len) == Some(2) && running.len() == 11)
            .then_some(running)
    });
    assert_eq!(running["pinned.service"], set(&["node2"]));
    assert_eq!(running["legacy-pinned.service"], set(&["node3"]));
    assert_eq!(running["metadata.service"], set(&["node3"]));
    assert_eq!(running["legacy-metadata.service"], set(&["node2"]));
    assert_eq!(running["or-metadata.service"], set(&["node2"]));
    assert_eq!(running["employees.service"], running["mongo.service"]);
    let webs: BTreeSet<String> = ["web@1.service", "web@2.service", "web@3.service"]
        .iter()
        .flat_map(|unit| running[*unit].clone())
        .collect();
    assert_eq!(
        webs,
        set(&["node1", "node2", "node3"]),
        "conflicts spread them"
    );
    assert_eq!(running["global.service"], set(&["node1", "node3"]));
    // systemd on the machine agrees, and the unit file carries no [X-Fleet].
    let witness = cluster
        .node(2)
        .exec_ok(&["systemctl", "is-active", "pinned.service"])
        .expect("systemctl");
    assert_eq!(witness.trim(), "active");
    let file = cluster
        .node(2)
        .exec_ok(&["cat", "/run/flotilla/units/pinned.service"])
        .expect("the unit file");
    assert!(!file.contains("X-Fleet"), "{file}");
}

/// The machine (hostname) running `unit`, once exactly one does.
fn machine_of(cluster: &Cluster, unit: &str) -> String {
    wait_until(
        &format!("{unit} active on one machine"),
        Duration::from_secs(30),
        || {
            let running = running(cluster);
            let machines = running.get(unit)?;
            (machines.len() == 1).then(|| machines.iter().next().cloned().unwrap_or_default())
        },
    )
}

/// systemd's main PID of `unit` on node `n` (it changes when the unit restarts).
fn main_pid(cluster: &Cluster, n: usize, unit: &str) -> String {
    cluster
        .node(n)
        .exec_ok(&["systemctl", "show", "-p", "MainPID", "--value", unit])
        .expect("systemctl show")
        .trim()
        .to_owned()
}

fn node_number(hostname: &str) -> usize {
    hostname
        .trim_start_matches("node")
        .parse()
        .expect("node<n> hostnames")
}

#[test]
fn a_lost_machines_units_move_with_their_followers_and_nothing_else_moves() {
    let cluster = boot(3, &[]);
    let web = format!("{SLEEPER}[X-Fleet]\nConflicts=web@*.service\n");
    let follower = format!("{SLEEPER}[X-Fleet]\nMachineOf=web@1.service\n");
    write_units(
        &cluster,
        1,
        &[("web@.service", &web), ("follower.service", &follower)],
    );
    flotctl(
        &cluster,
        1,
        &[
            "start",
            "/root/units/web@1.service",
            "/root/units/web@2.service",
            "/root/units/follower.service",
        ],
    );
    let lost = machine_of(&cluster, "web@1.service");
    assert_eq!(machine_of(&cluster, "follower.service"), lost);
    let stayer = machine_of(&cluster, "web@2.service");
    let survivor = (1..=3)
        .find(|n| format!("node{n}") != lost)
        .expect("a survivor");
    let stayer_pid = main_pid(&cluster, node_number(&stayer), "web@2.service");
    cluster
        .kill_node(node_number(&lost))
        .expect("kill the node");
    let killed = Instant::now();
    let moved_to = wait_until(
        "web@1 and its follower elsewhere",
        Duration::from_secs(30),
        || {
            let listing = flotctl(
                &cluster,
                survivor,
                &[
                    "list-units",
                    "--no-legend",
                    "--full",
                    "--fields",
                    "unit,machine,active",
                ],
            );
            let by_id: BTreeMap<&str, &str> = cluster
                .nodes()
                .iter()
                .map(|node| (node.machine_id(), node.hostname()))
                .collect();
            let on = |unit: &str| {
                listing.lines().find_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    (fields.first() == Some(&unit) && fields.get(2) == Some(&"active"))
                        .then(|| by_id.get(fields[1].split('/').next()?).copied())
                        .flatten()
                })
            };
            match (on("web@1.service"), on("follower.service")) {
                (Some(a), Some(b)) if a == b && a != lost => Some(a.to_owned()),
                _ => None,
            }
        },
    );
    let took = killed.elapsed();
    eprintln!("units moved {took:?} after the machine was killed (agent TTL 3 s)");
    assert!(
        took <= 2 * cluster.agent_ttl() + Duration::from_secs(3),
        "moving took {took:?}, more than two TTLs"
    );
    assert_ne!(moved_to, lost);
    assert_eq!(
        main_pid(&cluster, node_number(&stayer), "web@2.service"),
        stayer_pid,
        "a unit on a healthy machine was restarted"
    );
}

#[test]
fn killing_the_agent_restarts_no_unit_and_moves_nothing() {
    let cluster = boot(2, &[]);
    write_units(
        &cluster,
        1,
        &[("a.service", SLEEPER), ("b.service", SLEEPER)],
    );
    flotctl(
        &cluster,
        1,
        &["start", "/root/units/a.service", "/root/units/b.service"],
    );
    let before: BTreeMap<String, (String, String)> = ["a.service", "b.service"]
        .iter()
        .map(|unit| {
            let machine = machine_of(&cluster, unit);
            let pid = main_pid(&cluster, node_number(&machine), unit);
            ((*unit).to_owned(), (machine, pid))
        })
        .collect();
    for n in 1..=2 {
        let agent = main_pid(&cluster, n, "flotilla.service");
        cluster
            .node(n)
            .exec_ok(&["kill", "-9", &agent])
            .expect("kill -9 the agent");
    }
    // systemd restarts the agents (Restart=always); wait past two TTLs, which would have moved
    // the units if a lease had been lost.
    std::thread::sleep(2 * cluster.agent_ttl() + Duration::from_secs(1));
    for n in 1..=2 {
        wait_until("the agent back", Duration::from_secs(20), || {
            (cluster
                .node(n)
                .exec_ok(&["systemctl", "is-active", "flotilla.service"])
                .ok()?
                .trim()
                == "active")
                .then_some(())
        });
    }
    cluster.wait_for_machines(2).expect("both machines listed");
    for (unit, (machine, pid)) in &before {
        assert_eq!(&machine_of(&cluster, unit), machine, "{unit} moved");
        assert_eq!(
            &main_pid(&cluster, node_number(machine), unit),
            pid,
            "{unit} was restarted"
        );
    }
    let journal = cluster
        .node(1)
        .journal(&["-u", "flotilla.service", "--no-pager"])
        .expect("journal");
    assert!(
        !journal.contains("node: start a.service: unit revision"),
        "{journal}"
    );
}

#[test]
fn status_and_journal_come_from_the_machine_that_runs_the_unit() {
    let cluster = boot(2, &[&[("disk", "ssd")], &[("disk", "hdd")]]);
    let chatty =
        "[Service]\nExecStart=/bin/sh -c 'echo hello-from-the-unit; exec sleep infinity'\n\
                  [X-Fleet]\nMachineMetadata=disk=hdd\n";
    let nowhere = format!("{SLEEPER}[X-Fleet]\nMachineMetadata=disk=nvme\n");
    write_units(
        &cluster,
        1,
        &[("chatty.service", chatty), ("nowhere.service", &nowhere)],
    );
    flotctl(&cluster, 1, &["start", "/root/units/chatty.service"]);
    assert_eq!(machine_of(&cluster, "chatty.service"), "node2");
    let status = flotctl(&cluster, 1, &["status", "chatty.service"]);
    assert!(status.contains("Active: active (running)"), "{status}");
    let journal = wait_until(
        "the unit's output in its journal",
        Duration::from_secs(10),
        || {
            let journal = flotctl(&cluster, 1, &["journal", "--lines", "20", "chatty.service"]);
            journal.contains("hello-from-the-unit").then_some(journal)
        },
    );
    assert!(
        journal.contains("node2"),
        "journal lines name the machine: {journal}"
    );
    flotctl(
        &cluster,
        1,
        &["start", "--no-block", "/root/units/nowhere.service"],
    );
    let output = cluster
        .node(1)
        .exec(&["flotctl", "status", "nowhere.service"])
        .expect("flotctl status");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Unit nowhere.service is not running on any machine."),
        "{text}"
    );
    for (n, has) in [(1, "ssd"), (2, "hdd")] {
        let line = format!(
            "{}.../{}: MachineMetadata requires disk=nvme, machine has disk={has}",
            &cluster.node(n).machine_id()[..8],
            cluster.node(n).address().expect("address")
        );
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn fifty_units_start_in_one_command() {
    let cluster = boot(3, &[]);
    write_units(&cluster, 1, &[("many@.service", SLEEPER)]);
    let names: Vec<String> = (1..=50)
        .map(|i| format!("/root/units/many@{i}.service"))
        .collect();
    let mut args = vec!["start"];
    args.extend(names.iter().map(String::as_str));
    let started = Instant::now();
    let output = flotctl(&cluster, 1, &args);
    eprintln!(
        "50 units active {:?} after flotctl start",
        started.elapsed()
    );
    assert_eq!(output.matches(" launched on ").count(), 50, "{output}");
    let running = running(&cluster);
    let mut per_machine: BTreeMap<String, usize> = BTreeMap::new();
    for machines in running.values() {
        assert_eq!(machines.len(), 1);
        for machine in machines {
            *per_machine.entry(machine.clone()).or_default() += 1;
        }
    }
    assert_eq!(running.len(), 50);
    assert!(
        per_machine.values().all(|count| (16..=17).contains(count)),
        "least-loaded placement spreads them: {per_machine:?}"
    );
}
